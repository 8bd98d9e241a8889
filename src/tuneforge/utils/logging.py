"""One logger for the package, other libraries' output routed through it, and rank-0-only output.

What a run prints is ours: `[12:00:00] INFO tuneforge.x: ...` lines, the progress bar and our results. Other
libraries' warnings (their loggers and Python warnings) go through our logger at DEBUG, so `--debug` shows them;
their errors show as they are, in our format. `configure_output` sets that up (the CLI calls it first),
`quiet_libraries` adds the libraries that keep their own handlers once they are imported.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

_FMT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"
PACKAGE = "tuneforge"
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # src/tuneforge: a warning raised here is ours
# Libraries that install their own stderr handler: their records come to the root logger, and so to us, instead.
OWN_HANDLERS = ("datasets", "huggingface_hub")


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    root = logging.getLogger(PACKAGE)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FMT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO if is_main_process() else logging.WARNING)
        root.propagate = False
    return logger


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class LibraryRecords(logging.Handler):
    """On the root logger: other libraries' records, re-emitted by ours. Errors keep their level; warnings and
    below become DEBUG. The record keeps its logger's name, so a line says where it came from."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:
            record = logging.makeLogRecord({**record.__dict__, "levelno": logging.DEBUG, "levelname": "DEBUG"})
        ours = logging.getLogger(PACKAGE)
        if ours.isEnabledFor(record.levelno):
            ours.handle(record)


def configure_output(debug: bool = False) -> None:
    """Our level (DEBUG with --debug), other libraries' records and Python warnings through our logger."""
    ours = get_logger(PACKAGE)
    ours.setLevel(logging.DEBUG if debug else logging.INFO if is_main_process() else logging.WARNING)
    root = logging.getLogger()
    if not any(isinstance(h, LibraryRecords) for h in root.handlers):
        root.addHandler(LibraryRecords())
    warnings.showwarning = _log_warning  # the documented hook (logging.captureWarnings uses it too)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning as one log line: ours (raised from our code) at WARNING, any other library's at DEBUG."""
    if file is not None:  # someone asked for a stream: as Python would
        file.write(warnings.formatwarning(message, category, filename, lineno, line))
        return
    if str(filename).startswith(_PACKAGE_DIR):
        logging.getLogger(f"{PACKAGE}.warnings").warning("%s", message)
    else:
        logging.getLogger("py.warnings").warning("%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def quiet_libraries() -> None:
    """Library verbosity at warnings (which reach us at DEBUG), no library progress bars, no telemetry."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import transformers  # heavy: quieted only when the process will load them

        transformers.logging.set_verbosity_warning()
        transformers.logging.disable_progress_bar()
        transformers.logging.disable_default_handler()  # its records reach the root logger, and so us, instead
        transformers.logging.enable_propagation()
    except ImportError:
        pass
    try:
        import datasets

        datasets.logging.set_verbosity_warning()
        datasets.disable_progress_bars()
    except ImportError:
        pass
    for name in OWN_HANDLERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)  # it propagates to the root logger: shown once, by us
