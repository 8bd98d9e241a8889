"""Where TuneForge keeps what it can rebuild (transformers' import structure, tokenized datasets): TUNEFORGE_CACHE,
else `$XDG_CACHE_HOME/tuneforge`, else `~/.cache/tuneforge`. Deleting the folder only costs the next run the work."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "TUNEFORGE_CACHE"


def cache_home(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(ENV):
        return Path(environ[ENV])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tuneforge"
