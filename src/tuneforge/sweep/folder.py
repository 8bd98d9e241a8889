"""The on-disk layout of a sweep folder: the one module that names its files.

```
<sweep output_dir>/
  config.yaml               the base train config (CLI overrides applied)       write_inputs
  sweep.yaml                the sweep spec                                     write_inputs
  study.sqlite              Optuna's RDB storage, study "tuneforge"            storage_url
  .study.sqlite.<pid>       a new study's tables before they move in whole      study_path_aside
  trials/000/ ...           each trial's own train run folder                  trial_dir
  trials.csv, best.yaml, importances.json   the results (sweep/report.py)
  sweep.log                 a queued sweep's output (the driver's)
  tuneforge_jobs.sqlite     the CLI's job store (unless --jobs-db)
```
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tuneforge.config.run_config import mask_secrets
from tuneforge.jobs.store import DB_FILE

STUDY_NAME = "tuneforge"
CONFIG_FILE = "config.yaml"
SPEC_FILE = "sweep.yaml"
STUDY_FILE = "study.sqlite"
TRIALS_DIR = "trials"
TRIALS_CSV = "trials.csv"
BEST_FILE = "best.yaml"
BEST_RUN_DIR = "best"  # where `tuneforge train best.yaml` trains
IMPORTANCES_FILE = "importances.json"
LOG_FILE = "sweep.log"


def study_path(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / STUDY_FILE


def study_path_aside(sweep_dir: str | Path, pid: int) -> Path:
    """Where process `pid` writes a new study file's tables before moving it to `study_path` (study.py)."""
    return Path(sweep_dir) / f".{STUDY_FILE}.{pid}"


def storage_url(sweep_dir: str | Path) -> str:
    return f"sqlite:///{study_path(sweep_dir).resolve()}"


def trial_dir(sweep_dir: str | Path, number: int) -> Path:
    return Path(sweep_dir) / TRIALS_DIR / f"{number:03d}"


def jobs_db(sweep_dir: str | Path) -> Path:
    """The CLI's job store when no --jobs-db is given."""
    return Path(sweep_dir) / DB_FILE


def write_yaml(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def write_inputs(sweep_dir: str | Path, config: dict, spec: dict) -> tuple[Path, Path]:
    """config.yaml (secrets masked, as a run folder keeps them) and sweep.yaml, in the sweep folder."""
    sweep_dir = Path(sweep_dir)
    return (
        write_yaml(sweep_dir / CONFIG_FILE, mask_secrets(config)),
        write_yaml(sweep_dir / SPEC_FILE, spec),
    )
