"""Queue a sweep as a job (what the Web UI's Sweep tab calls): its driver then queues its trials as train jobs."""

from __future__ import annotations

from pathlib import Path

from tuneforge.config.loader import load_config
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError
from tuneforge.jobs.scheduler import Scheduler
from tuneforge.jobs.store import ACTIVE, Job
from tuneforge.sweep import folder
from tuneforge.sweep.spec import parse_sweep_spec


def submit_sweep(scheduler: Scheduler, config: dict, spec: dict, sweep_dir: str | Path, cwd: str | Path) -> Job:
    """Check the base config and the spec (UserError), write sweep_dir/config.yaml + sweep.yaml and queue
    `tuneforge sweep config.yaml sweep.yaml --jobs-db <this store>`; its trials go into the same store."""
    sweep_dir = Path(sweep_dir).resolve()
    check_stage(load_config(None, config))
    spec = {**spec, "output_dir": str(sweep_dir)}
    parse_sweep_spec(spec, config)
    busy = [j for j in scheduler.store.list(ACTIVE, kind="sweep") if Path(j.run_dir).resolve() == sweep_dir]
    if busy:
        raise UserError(
            f"sweep #{busy[0].id} is already {busy[0].status} in this folder",
            where=str(sweep_dir),
            fix="choose another sweep folder, or wait for it",
        )
    config_path, spec_path = folder.write_inputs(sweep_dir, config, spec)
    meta = {
        "base_config": str(config_path),
        "jobs_db": str(Path(scheduler.store.path).resolve()),
        **{k: config[k] for k in ("stage", "finetuning_type", "dataset", "model_name_or_path") if k in config},
    }
    return scheduler.submit("sweep", sweep_dir, spec_path, sweep_dir / folder.LOG_FILE, Path(cwd).resolve(), meta)
