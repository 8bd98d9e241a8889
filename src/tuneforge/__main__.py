"""`tuneforge` and `python -m tuneforge`. A `train` command goes to this environment's warm worker when one
listens (warm/: `tuneforge warm start`), which runs it without the imports. Otherwise it first bounds oneDNN's
primitive cache (utils/onednn_cache.py) and moves its process onto jemalloc where the system has it
(utils/allocator.py: a re-exec, cheapest before the command line's own modules load), and collects no garbage
until its trainer is built (utils/startup_gc.py). Every command reads transformers' import structure from disk once
it has been built (utils/import_structure_cache.py); then tuneforge.cli runs the command. A torchrun rank that ran
it leaves without interpreter shutdown (utils/rank_exit.py)."""

import sys

from tuneforge.errors import UserError
from tuneforge.train.launch import in_distributed_child
from tuneforge.utils import import_structure_cache, startup_gc
from tuneforge.utils.allocator import reexec_with_allocator
from tuneforge.utils.onednn_cache import bound_primitive_cache
from tuneforge.utils.rank_exit import leave_rank
from tuneforge.warm.client import run_in_worker


def main() -> int:
    train = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None) == "train"
    if train:
        startup_gc.defer()  # until the trainer is built (train/common.py settles)
        code = run_in_worker(sys.argv[1:])
        if code is not None:
            return code
        bound_primitive_cache()
        try:
            reexec_with_allocator()
        except UserError as exc:  # TUNEFORGE_MALLOC names no file: one line, as the CLI reports bad input
            print(f"tuneforge: error: {exc.one_line()}", file=sys.stderr)
            return exc.exit_code
    import_structure_cache.install()
    from tuneforge.cli import main as run_command  # ~0.5 s of imports: after the re-exec, not twice

    code = run_command()
    if train and in_distributed_child():
        leave_rank(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
