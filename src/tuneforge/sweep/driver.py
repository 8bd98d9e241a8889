"""`tuneforge sweep cfg.yaml sweep.yaml`: ask Optuna for a trial, train it as a queued job in its own folder, tell
Optuna the metric; until n_trials trials finished (completed or pruned). Everything lives in the sweep folder, so
running the same command again continues: finished trials are kept, a trial whose training still runs is waited
for, a trial cut off (its process gone) is told FAIL and its parameters queued again as a new trial.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tuneforge.config.loader import load_config
from tuneforge.config.run_config import mask_secrets
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError
from tuneforge.jobs import runner
from tuneforge.jobs import scheduler as scheduler_module
from tuneforge.jobs.scheduler import Scheduler
from tuneforge.jobs.store import DONE, QUEUED, RUNNING, Job, JobStore
from tuneforge.sweep import folder
from tuneforge.sweep.metric import read_metric
from tuneforge.sweep.report import format_row, format_table, write_results
from tuneforge.sweep.results import finished_count, row_of, trial_rows
from tuneforge.sweep.spec import SweepSpec, eval_task, load_sweep_spec
from tuneforge.sweep.study import open_study, quiet_optuna, trial_env
from tuneforge.sweep.task_eval import eval_config, read_accuracy
from tuneforge.utils import run_folder

MAX_FAILURES_IN_A_ROW = 3  # then the config (not the parameters) is broken: stop instead of burning n_trials
POLL_S = 0.5
STOP_WAIT_S = 120  # how long an interrupted sweep waits for its trial to save a checkpoint and exit


class SweepInterrupted(Exception):
    """SIGINT / SIGTERM: the running trial was stopped and nothing told; the same command continues the sweep."""


@dataclass
class Sweep:
    sweep_dir: Path
    spec: SweepSpec
    base: dict  # the flat base train config
    study: object
    scheduler: Scheduler
    cwd: Path
    stop_requested: bool = False
    failures_in_a_row: int = 0

    @property
    def store(self) -> JobStore:
        return self.scheduler.store


def run_sweep(
    config_path: str | Path, spec_path: str | Path, overrides: list[str] | None = None, jobs_db: str | None = None
) -> dict | None:
    """Run (or continue) the sweep; print a line per trial and the table; return the best row."""
    cfg = load_config(config_path, overrides or [])
    check_stage(cfg)
    base = cfg.to_dict(masked=False)
    spec = load_sweep_spec(spec_path, base)
    if not spec.output_dir:
        raise UserError(
            "the sweep has no folder", where=f"{spec_path}:output_dir", fix="set output_dir in sweep.yaml or cfg.yaml"
        )
    sweep_dir = Path(spec.output_dir).resolve()
    spec_data = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    _check_same_sweep(sweep_dir, spec_data)
    folder.write_inputs(sweep_dir, base, spec_data)
    store = JobStore(Path(jobs_db).resolve() if jobs_db else folder.jobs_db(sweep_dir))
    logging.getLogger(scheduler_module.__name__).setLevel(logging.WARNING)  # the trial lines say how each job ended
    sweep = Sweep(sweep_dir, spec, base, open_study(sweep_dir, spec), Scheduler(store), Path.cwd())
    with _StopSignals(sweep):
        _recover(sweep)
        while _finished(sweep) < spec.n_trials:
            _run_trial(sweep)
    rows = trial_rows(sweep_dir)
    print(f"\nSweep finished: {finished_count(rows)} trials in {sweep_dir}")
    print(format_table(rows, spec.metric, spec.direction))
    best = write_results(sweep_dir, sweep.study, rows, base, spec.direction)
    if best is not None:
        print(
            f"Best: trial {best['number']} ({spec.metric} {best['value']:.4g}); train it with: tuneforge train "
            f"{sweep_dir / folder.BEST_FILE}"
        )
    return best


def _check_same_sweep(sweep_dir: Path, spec_data: dict) -> None:
    """Continuing a sweep with another space or metric would mix two searches in one study."""
    stored_path = sweep_dir / folder.SPEC_FILE
    if not folder.study_path(sweep_dir).is_file() or not stored_path.is_file():
        return
    stored = yaml.safe_load(stored_path.read_text(encoding="utf-8")) or {}
    for key in ("params", "metric", "direction", "sampler"):
        if stored.get(key) != spec_data.get(key):
            raise UserError(
                f"the sweep folder holds a sweep with another {key}",
                where=str(stored_path),
                fix="choose a new output_dir for this sweep, or run it with the sweep.yaml stored there",
            )


# ---- trials -----------------------------------------------------------------------------------------------------
def _suggest(trial, spec: SweepSpec) -> dict:
    params = {}
    for key, space in spec.params.items():
        if "choices" in space:
            params[key] = trial.suggest_categorical(key, space["choices"])
        elif spec.kinds[key] == "int":
            params[key] = trial.suggest_int(
                key, space["low"], space["high"], step=space.get("step", 1), log=space.get("log", False)
            )
        else:
            params[key] = trial.suggest_float(
                key, space["low"], space["high"], step=space.get("step"), log=space.get("log", False)
            )
    return params


def _finished(sweep: Sweep) -> int:
    states = quiet_optuna().trial.TrialState
    return len(sweep.study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))


def _run_trial(sweep: Sweep) -> None:
    if sweep.stop_requested:  # between trials: nothing runs, nothing to tell
        raise SweepInterrupted(f"sweep stopped. Run the same command to continue it ({sweep.sweep_dir})")
    if sweep.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
        raise UserError(
            f"{MAX_FAILURES_IN_A_ROW} trials in a row failed, so the config is broken, not the parameters",
            where=str(sweep.sweep_dir / folder.TRIALS_DIR),
            fix="read the last trial's train.log, or run `tuneforge train` on its config.yaml, and fix the config",
        )
    trial = sweep.study.ask()
    params = _suggest(trial, sweep.spec)
    run_dir = folder.trial_dir(sweep.sweep_dir, trial.number)
    trial.set_user_attr("run_dir", str(run_dir))
    config = {**sweep.base, **params, "output_dir": str(run_dir)}
    try:
        load_config(None, config)  # a combination the checks refuse fails here, without starting a process
    except UserError as exc:
        _tell_failed(sweep, trial.number, exc.one_line())
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_folder.write_config(run_dir, mask_secrets(config))
    meta = {
        "sweep": str(sweep.sweep_dir),
        "trial": trial.number,
        "env": trial_env(sweep.sweep_dir, sweep.spec, trial.number),
        **{k: config[k] for k in ("stage", "finetuning_type", "dataset", "model_name_or_path") if k in config},
    }
    job = sweep.scheduler.submit(
        "train", run_dir, config_path, run_folder.job_log_path(run_dir, "train"), sweep.cwd, meta
    )
    trial.set_user_attr("job_id", job.id)
    _settle(sweep, trial.number, _wait(sweep, job))


def _wait(sweep: Sweep, job: Job) -> Job:
    while True:
        if sweep.stop_requested:
            _stop(sweep, job)
        sweep.scheduler.tick()
        job = sweep.store.get(job.id)
        if not job.active:
            return job
        time.sleep(POLL_S)


def _settle(sweep: Sweep, number: int, job: Job) -> None:
    """Tell Optuna how the trial's job ended: COMPLETE with the metric, PRUNED, or FAIL."""
    optuna = quiet_optuna()
    run_dir = folder.trial_dir(sweep.sweep_dir, number)
    if job.status != DONE:
        _tell_failed(sweep, number, f"its training {job.status} (exit {job.returncode}); see {job.log_path}")
        return
    task = eval_task(sweep.spec.metric)
    if run_folder.read_pruned(run_dir) is not None:
        sweep.study.tell(number, state=optuna.trial.TrialState.PRUNED)
    else:
        value = _task_accuracy(sweep, number, task) if task else read_metric(run_dir, sweep.spec.metric)
        if value is None:
            _tell_failed(sweep, number, f"no {sweep.spec.metric} in its run folder (see its train.log / eval.log)")
            return
        sweep.study.tell(number, value)
    sweep.failures_in_a_row = 0
    _print_trial(sweep, number)


def _task_accuracy(sweep: Sweep, number: int, task: str) -> float | None:
    """eval:<task>: `tuneforge eval` on what the trial trained, as a second job in its folder (re-attached when an
    earlier driver started it); the average accuracy, or None when it failed."""
    run_dir = folder.trial_dir(sweep.sweep_dir, number)
    job = _trial_job(sweep, number, kind="eval")
    if job is None or job.status not in (DONE, RUNNING, QUEUED):
        config_path = run_folder.job_config_path(run_dir, "eval")
        folder.write_yaml(config_path, eval_config(run_folder.read_config(run_dir), run_dir, task))
        meta = {"sweep": str(sweep.sweep_dir), "trial": number}
        log_path = run_folder.job_log_path(run_dir, "eval")
        job = sweep.scheduler.submit("eval", run_dir, config_path, log_path, sweep.cwd, meta)
    job = _wait(sweep, job)
    return read_accuracy(run_dir, task) if job.status == DONE else None


def _tell_failed(sweep: Sweep, number: int, why: str) -> None:
    sweep.study.tell(number, state=quiet_optuna().trial.TrialState.FAIL)
    sweep.failures_in_a_row += 1
    _print_trial(sweep, number, note=f"  ({why})")


def _print_trial(sweep: Sweep, number: int, note: str = "") -> None:
    trial = sweep.study.get_trials(deepcopy=False)[number]
    print(format_row(row_of(trial, sweep.sweep_dir), sweep.spec.metric) + note, flush=True)


# ---- resume -----------------------------------------------------------------------------------------------------
def _trial_job(sweep: Sweep, number: int, kind: str = "train") -> Job | None:
    """The newest job of this kind (train; eval for eval:<task>) of this sweep's trial in the store."""
    jobs = [
        job
        for job in sweep.store.list(kind=kind)
        if job.meta.get("sweep") == str(sweep.sweep_dir) and job.meta.get("trial") == number
    ]
    return jobs[-1] if jobs else None


def _recover(sweep: Sweep) -> None:
    """Trials left RUNNING by an earlier driver: wait for the ones whose training still runs; tell the others FAIL
    (cut off: killed, machine down, interrupted) and queue their parameters again, to run in a fresh folder."""
    optuna = quiet_optuna()
    sweep.scheduler.tick()  # records the end of jobs whose process is gone
    for trial in sweep.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        job = _trial_job(sweep, trial.number)
        if job is not None and job.status in (RUNNING, QUEUED):
            print(f"trial {trial.number}: its training still runs (job {job.id}); waiting for it", flush=True)
            job = _wait(sweep, job)
        if job is not None and job.status == DONE:
            _settle(sweep, trial.number, job)
            continue
        sweep.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        again = len(trial.params) == len(sweep.spec.params)
        if again:
            sweep.study.enqueue_trial(dict(trial.params))
        _print_trial(sweep, trial.number, note="  (cut off" + ("; its parameters run again)" if again else ")"))


# ---- interruption -----------------------------------------------------------------------------------------------
def _stop(sweep: Sweep, job: Job) -> None:
    """Stop the running trial (it saves a checkpoint and exits), tell Optuna nothing, and end the sweep."""
    if job.status == RUNNING:
        sweep.scheduler.abort(job.id)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and sweep.store.get(job.id).active:
            sweep.scheduler.tick()
            time.sleep(POLL_S)
        if sweep.store.get(job.id).active:
            runner.send_stop(sweep.store.get(job.id), force=True)
    elif job.status == QUEUED:
        sweep.scheduler.abort(job.id)
    raise SweepInterrupted(
        f"sweep stopped; its trial (job {job.id}) was aborted and will run again. "
        f"Run the same command to continue: {len(trial_rows(sweep.sweep_dir))} trials so far in {sweep.sweep_dir}"
    )


class _StopSignals:
    """SIGINT / SIGTERM only set `sweep.stop_requested`; the wait loop then stops the trial and ends the sweep."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.previous: dict = {}

    def _request(self, signum, frame) -> None:
        if self.sweep.stop_requested:  # a second signal: stop waiting
            raise KeyboardInterrupt
        self.sweep.stop_requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._request)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
