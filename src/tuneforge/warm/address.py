"""Where the warm worker of this environment listens: one Unix socket per user, interpreter, code and environment.

A worker is only ever asked to run what a fresh process would run the same way. Its imports fixed the libraries'
code and everything they read from the environment at import time (cache folders, offline switches, thread counts,
the allocator), so the socket's name is a hash of the interpreter, the installed code (TuneForge's sources and the
main libraries, by modification time) and the environment variables of those families. Another environment, or an
upgraded library, finds no worker and starts cold. Variables outside those families (a run's own settings) reach
the child as the caller has them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
import tempfile
from pathlib import Path

# Environment variables read when the libraries import (or that decide what they import): prefixes and names.
IMPORT_TIME_ENV = (
    "ACCELERATE_",
    "ATEN_",
    "CUDA_",
    "DATASETS_",
    "DNNL_",
    "GOMP_",
    "HF_",
    "HOME",
    "HUGGINGFACE_",
    "KMP_",
    "LD_",
    "LRU_CACHE_CAPACITY",
    "MALLOC_",
    "MKL_",
    "OMP_",
    "ONEDNN_",
    "PYTHON",
    "PYTORCH_",
    "TOKENIZERS_",
    "TORCH",
    "TRANSFORMERS_",
    "TUNEFORGE_MALLOC",  # the allocator the worker re-executed itself on; our other variables are read per run
    "USE_",
    "XDG_CACHE_HOME",
)
SWITCH = "TUNEFORGE_WARM"  # 0 / false / no / off: never use a worker; not part of the hash
SOCKET_NAME_BYTES = len("/0123456789abcdef.sock")
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "tokenizers", "huggingface_hub")
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def disabled(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(SWITCH, "").strip().lower() in ("0", "false", "no", "off")


def socket_dir(environ=None) -> Path:
    """<base> / tuneforge-warm-<uid>, the base being $XDG_RUNTIME_DIR (where it is a folder), else the temp folder,
    else /tmp: the first whose socket paths fit in a Unix socket address (108 bytes with its NUL)."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR")
    bases = [runtime] if runtime and os.path.isdir(runtime) else []
    for base in (*bases, tempfile.gettempdir(), "/tmp"):
        folder = Path(base) / f"tuneforge-warm-{os.getuid()}"
        if len(os.fsencode(folder)) + SOCKET_NAME_BYTES < 108:
            return folder
    return folder


def private_dir(environ=None, create: bool = False) -> Path | None:
    """The socket folder (made if missing and `create`); None when there is none or it is not ours alone (another
    user's, or open to others: a socket there could be anyone's, and a caller sends it its environment)."""
    folder = socket_dir(environ)
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def fingerprint(environ=None) -> str:
    """16 hex digits naming this interpreter, this code and the import-time environment."""
    environ = os.environ if environ is None else environ
    digest = hashlib.sha256()
    for part in (sys.executable, sys.version, str(PACKAGE_DIR), *_code_stamps()):
        digest.update(part.encode() + b"\0")
    for key in sorted(environ):
        if key.startswith(IMPORT_TIME_ENV) and not key.startswith(SWITCH):
            digest.update(f"{key}={environ[key]}".encode() + b"\0")
    return digest.hexdigest()[:16]


def socket_path(environ=None) -> Path:
    return socket_dir(environ) / f"{fingerprint(environ)}.sock"


def _code_stamps() -> list[str]:
    """Modification times of TuneForge's sources and the libraries' package files: an edit or an upgrade shows."""
    stamps = [f"{p.relative_to(PACKAGE_DIR)}:{p.stat().st_mtime_ns}" for p in sorted(PACKAGE_DIR.rglob("*.py"))]
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)  # a top-level package: found, not imported
        origin = spec.origin if spec is not None else None
        stamps.append(f"{name}:{os.stat(origin).st_mtime_ns if origin else None}")
    return stamps
