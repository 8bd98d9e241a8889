"""The Optuna study of a sweep: its sampler and pruner from the spec, stored in the sweep folder's SQLite file.

The driver creates (or loads) it; a trial's training process loads it again with the same pruner to report to it
(train/sweep_report.py, told how by the environment: TRIAL_ENV). Optuna is imported inside the functions, so that
`tuneforge --help` stays instant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tuneforge.sweep import folder
from tuneforge.sweep.spec import SweepSpec, grid_space

# What a trial's training process reads from its environment (set by the driver through the job's meta["env"]).
ENV_STORAGE = "TUNEFORGE_SWEEP_STORAGE"  # sqlite:///.../study.sqlite
ENV_STUDY = "TUNEFORGE_SWEEP_STUDY"  # the study name
ENV_TRIAL = "TUNEFORGE_SWEEP_TRIAL"  # the trial number
ENV_METRIC = "TUNEFORGE_SWEEP_METRIC"  # eval_loss | eval_accuracy | train_loss
ENV_PRUNER = "TUNEFORGE_SWEEP_PRUNER"  # JSON: {"pruner", "startup_trials", "warmup_steps"}


def quiet_optuna():
    """Optuna, imported, with its per-trial INFO lines off (the driver prints its own table)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tpe_startup_trials(n_trials: int) -> int:
    """Random trials before TPE models the results: Optuna's 10 would make a short sweep all random."""
    return min(10, max(3, n_trials // 2))


def make_sampler(spec: SweepSpec, trials_so_far: int = 0):
    """The spec's sampler. A continued sweep seeds it with seed + trials so far: the seed alone would replay the
    first trials' random draws (the same parameters again)."""
    optuna = quiet_optuna()
    seed = None if spec.seed is None else spec.seed + trials_so_far
    if spec.sampler == "grid":

        class AskTellGridSampler(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                """Optuna's stops `study.optimize` when the grid is used up, and raises under ask / tell, which the
                sweep uses: it counts its trials itself."""

        return AskTellGridSampler(grid_space(spec), seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup_trials(spec.n_trials))


def pruner_settings(spec: SweepSpec) -> dict:
    return {
        "pruner": spec.pruner,
        "startup_trials": spec.pruner_startup_trials,
        "warmup_steps": spec.pruner_warmup_steps,
    }


def make_pruner(settings: dict):
    optuna = quiet_optuna()
    name = settings["pruner"]
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings["startup_trials"], n_warmup_steps=settings["warmup_steps"]
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, settings["warmup_steps"]))
    return optuna.pruners.NopPruner()


def open_study(sweep_dir: str | Path, spec: SweepSpec):
    """Create the study, or load it when the folder holds one already (a resumed sweep)."""
    optuna = quiet_optuna()
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    if not folder.study_path(sweep_dir).is_file():
        create_study_file(sweep_dir)
    stored = load_stored_study(sweep_dir)
    trials_so_far = len(stored.get_trials(deepcopy=False)) if stored is not None else 0
    return optuna.create_study(
        storage=folder.storage_url(sweep_dir),
        study_name=folder.STUDY_NAME,
        load_if_exists=True,
        sampler=make_sampler(spec, trials_so_far),
        pruner=make_pruner(pruner_settings(spec)),
        direction=spec.direction,
    )


def create_study_file(sweep_dir: str | Path) -> None:
    """Optuna's tables written to a file beside the study's, then moved in: whoever reads the study meanwhile (the
    Web UI's Sweep tab asks every 2 s) finds no file, never one whose schema is half written. Opening such a file
    starts writing the schema a second time, and one of the two processes then fails (sqlite3.IntegrityError:
    UNIQUE constraint failed: alembic_version.version_num), the sweep's driver as often as the reader."""
    optuna = quiet_optuna()
    final = folder.study_path(sweep_dir)
    aside = folder.study_path_aside(sweep_dir, os.getpid())
    aside.unlink(missing_ok=True)  # ours: a driver of this PID that stopped before moving it in
    storage = optuna.storages.RDBStorage(f"sqlite:///{aside.resolve()}")
    storage.engine.dispose()  # closed before it moves
    os.replace(aside, final)


def load_stored_study(sweep_dir: str | Path):
    """The stored study to read (no sampler of its own), or None when the sweep has not created it yet."""
    if not folder.study_path(sweep_dir).is_file():
        return None
    optuna = quiet_optuna()
    try:
        return optuna.load_study(study_name=folder.STUDY_NAME, storage=folder.storage_url(sweep_dir))
    except KeyError:  # the file exists, the study is not in it yet
        return None


def trial_env(sweep_dir: str | Path, spec: SweepSpec, number: int) -> dict[str, str]:
    """The environment of a trial's training process: where its study is, which trial it is, what to report."""
    return {
        ENV_STORAGE: folder.storage_url(sweep_dir),
        ENV_STUDY: folder.STUDY_NAME,
        ENV_TRIAL: str(number),
        ENV_METRIC: spec.metric,
        ENV_PRUNER: json.dumps(pruner_settings(spec)),
    }


def reporting_trial(environ=None) -> tuple[object, str] | None:
    """In a trial's training process: (the running Optuna trial, the metric to report), or None outside a sweep."""
    environ = os.environ if environ is None else environ
    if not environ.get(ENV_STORAGE) or environ.get(ENV_TRIAL) is None:
        return None
    optuna = quiet_optuna()
    storage = optuna.storages.RDBStorage(environ[ENV_STORAGE])
    name = environ.get(ENV_STUDY, folder.STUDY_NAME)
    study = optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(json.loads(environ[ENV_PRUNER])))
    study_id = storage.get_study_id_from_name(name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(environ[ENV_TRIAL]))
    return optuna.trial.Trial(study, trial_id), environ.get(ENV_METRIC, "eval_loss")
