"""Keep optional backends that a run does not use out of the process.

peft imports bitsandbytes when it is installed (peft/helpers.py), transformers imports hqq (cache_utils.py) and
accelerate imports DeepSpeed while building any Trainer (`extract_model_from_parallel`). Each costs seconds and
prints its own lines ("kernels-community ...", "Setting accelerator to CPU"). None of those libraries offers a
switch, but all of them ask Python first (`import x` in a try, or `importlib.util.find_spec(x)`), and Python's
import system has one documented answer for "this module is not here": `sys.modules[name] = None` makes `import
name` raise ModuleNotFoundError and `find_spec(name)` return None. The libraries then take their own not-installed
path. It holds for the whole process and cannot be undone once a library has looked, so only a process that runs
one known job (the CLI) calls this, before the libraries are imported.
"""

from __future__ import annotations

import sys

# Import names of the optional backends that other libraries import just because they are installed.
OPTIONAL_BACKENDS = ("bitsandbytes", "deepspeed", "hqq")
# Imported by transformers at start-up for its object-detection losses alone (transformers/loss/loss_for_object_
# detection.py and kin, behind is_scipy_available()): ~0.6 s and ~35 MiB of a training process. Held back while the
# training libraries import, then released (utils.imports.release), so that a reward function may still import it.
WHILE_LIBRARIES_IMPORT = ("scipy",)


def hold_back(names) -> list[str]:
    """Make `names` unimportable in this process; a module already imported stays. Returns those held back."""
    held = []
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = None
            held.append(name)
        elif sys.modules[name] is None:
            held.append(name)
    return held


def release(names) -> list[str]:
    """Make held-back `names` importable again. A library that looked while they were held back keeps its answer
    (transformers caches is_scipy_available()). Returns those released."""
    released = [name for name in names if held_back(name)]
    for name in released:
        del sys.modules[name]
    return released


def held_back(name: str) -> bool:
    return name in sys.modules and sys.modules[name] is None
