"""Atomic checkpoints: the trainer writes `tmp-checkpoint-N`, which is renamed to `checkpoint-N` once complete.

transformers 5.24's `Trainer._save_checkpoint` writes `checkpoint-N` in place (model, optimizer, scheduler, RNG
state, then trainer_state.json last) and then deletes old checkpoints past `save_total_limit`. A `kill -9` or a
full disk in the middle leaves a half-written `checkpoint-N`. We wrap the trainer's `_save_checkpoint` so the same
code writes into `tmp-checkpoint-N` (by switching the folder prefix the trainer module formats the name with), then
the process that saves renames the finished folder to `checkpoint-N` in one `os.replace` and only then rotates old
checkpoints. A resume (`utils/run_folder.complete_checkpoints`) only ever sees finished folders; leftover
`tmp-checkpoint-*` folders of a killed run are removed at the next save. Our own PPO loop
(`train/ppo_checkpoint.py`) saves through the same three steps: `run_folder.checkpoint_paths`, `clear_staging`,
then `finish_checkpoint` (rename, then rotate).

`make_resumable` adds what an exact resume also needs: a length-grouped order seeded by (seed, epoch)
(`train/sampling.py`), so every epoch's batches are the same however the run was cut.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tuneforge.train.sampling import seed_length_grouped_order
from tuneforge.utils import run_folder
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


def make_resumable(trainer) -> None:
    """Atomic checkpoints and a data order that does not depend on when the run was interrupted."""
    make_checkpoints_atomic(trainer)
    seed_length_grouped_order(trainer)


def make_checkpoints_atomic(trainer) -> None:
    """Wrap `trainer._save_checkpoint` (whatever subclass defines it: TRL's add a model card first) in place."""
    import transformers.trainer as trainer_module  # heavy: the first checkpoint pays it, not `import`

    original = trainer._save_checkpoint
    if getattr(original, "_tuneforge_atomic", False):
        return

    def save_checkpoint(model, trial=None):
        args = trainer.args
        run_dir = Path(trainer._get_output_dir(trial=trial))
        staging, final = run_folder.checkpoint_paths(run_dir, trainer.state.global_step)
        if args.should_save:
            clear_staging(run_dir)
        _barrier(trainer)
        saved_limit = args.save_total_limit
        trainer_module.PREFIX_CHECKPOINT_DIR = run_folder.STAGING_PREFIX
        args.save_total_limit = None  # rotate only after the rename, so the newest complete one is never deleted
        try:
            original(model, trial)
        finally:
            trainer_module.PREFIX_CHECKPOINT_DIR = run_folder.CHECKPOINT_PREFIX
            args.save_total_limit = saved_limit
        _barrier(trainer)  # every rank has written its part (DeepSpeed / FSDP shards) before the rename
        if args.should_save:
            if trainer.state.best_model_checkpoint == str(staging):  # the trainer recorded the staging path
                trainer.state.best_model_checkpoint = str(final)
                trainer.state.save_to_json(str(run_folder.state_path(staging)))
            finish_checkpoint(staging, final, saved_limit, trainer.state.best_model_checkpoint)
        _barrier(trainer)

    save_checkpoint._tuneforge_atomic = True
    trainer._save_checkpoint = save_checkpoint


def clear_staging(run_dir: Path) -> None:
    """Remove the `tmp-checkpoint-*` folders a killed run left half-written (main process only)."""
    for stale in run_folder.staging_dirs(run_dir):
        shutil.rmtree(stale, ignore_errors=True)


def finish_checkpoint(
    staging: Path, final: Path, save_total_limit: int | None, best_model_checkpoint: str | None = None
) -> None:
    """A fully written staging folder becomes `checkpoint-N` (one rename); only then are checkpoints past
    `save_total_limit` deleted, so the newest complete one always survives (main process only)."""
    commit(staging, final)
    if save_total_limit:
        from transformers.trainer_utils import rotate_checkpoints

        rotate_checkpoints(
            output_dir=str(final.parent),
            save_total_limit=save_total_limit,
            best_model_checkpoint=best_model_checkpoint,
            use_mtime=True,
        )


def commit(staging: Path, final: Path) -> None:
    """Move a finished staging folder to its final name; an older folder of the same name is replaced."""
    if final.exists():  # saved twice at one step (e.g. a stop signal on a save step): keep the newest
        old = final.with_name(f"{run_folder.STAGING_PREFIX}-old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    _fsync_dir(final.parent)
    logger.debug("checkpoint committed: %s", final)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _barrier(trainer) -> None:
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is not None and accelerator.num_processes > 1:
        accelerator.wait_for_everyone()
