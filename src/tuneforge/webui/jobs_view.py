"""Glue between the forms and the job queue: write a run's config, queue it, follow it, list runs."""

from __future__ import annotations

import threading
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.jobs import runner
from tuneforge.jobs.progress import find_run_dirs, format_seconds, progress, read_run_config
from tuneforge.jobs.store import ACTIVE, Job
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.paths import confine_config
from tuneforge.webui.render import curve_frame, progress_html

CONFIG_NAME = "config.yaml"
LOG_NAMES = {"train": "train.log", "eval": "eval.log", "export": "export.log"}
_QUEUEING = threading.Lock()  # the busy-folder check and the submit, as one step for the page's concurrent sessions


def error_text(exc: UserError) -> str:
    return f"⚠ {exc.one_line()}"


def queue_run(ui: UIContext, kind: str, cfg: dict, run_dir: str | Path, stage_check: bool = True) -> Job:
    """Validate like the CLI would, write run_dir/config.yaml, and queue `python -m tuneforge <kind> config.yaml`.
    Every path in the config must lie in the folders the page may touch (webui/paths.py), checked first."""
    confine_config(cfg, ui.policy)
    ui.policy.confine_write(str(run_dir), "output_dir" if kind == "train" else "run folder")
    run_dir = Path(run_dir)
    form.validate(cfg, stage_check=stage_check)
    with _QUEUEING:
        return _queue_checked(ui, kind, cfg, run_dir)


def _queue_checked(ui: UIContext, kind: str, cfg: dict, run_dir: Path) -> Job:
    busy = [j for j in ui.store.list(ACTIVE) if Path(j.run_dir).resolve() == run_dir.resolve()]
    if busy:
        raise UserError(
            f"run #{busy[0].id} is already {busy[0].status} in this folder",
            where=str(run_dir),
            fix="choose another output dir, or wait for it",
        )
    if kind == "train":
        from tuneforge.train.output_dir import plan_output_dir

        plan_output_dir(str(run_dir), cfg, cfg.get("resume_from_checkpoint"))  # refuses a finished run's folder
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / (CONFIG_NAME if kind == "train" else f"{kind}_config.yaml")
    config_path.write_text(form.to_yaml(cfg), encoding="utf-8")
    meta = {k: cfg.get(k) for k in ("stage", "finetuning_type", "dataset", "model_name_or_path") if k in cfg}
    return ui.scheduler.submit(
        kind, run_dir.resolve(), config_path.resolve(), (run_dir / LOG_NAMES[kind]).resolve(), ui.cwd, meta
    )


def resume_run(ui: UIContext, run_dir: str) -> Job:
    """Queue an unfinished run again with its own config: same output_dir → it continues from its last checkpoint."""
    ui.policy.confine_write(run_dir, "run")
    cfg = read_run_config(run_dir)
    if not cfg:
        raise UserError("no config.yaml in the run folder", where=run_dir, fix="pick a run started by TuneForge")
    cfg["output_dir"] = str(run_dir)
    return queue_run(ui, "train", cfg, run_dir)


def job_label(job: Job, lang: str) -> str:
    return f"#{job.id} {Path(job.run_dir).name}"  # the status is on the progress bar, which stays current


def job_choices(ui: UIContext, lang: str, kind: str = "train") -> list[tuple[str, int]]:
    return [(job_label(j, lang), j.id) for j in reversed(ui.store.list(kind=kind))]


def current_job(ui: UIContext, kind: str = "train") -> Job | None:
    """The job a freshly opened page follows: the running one, else the next queued, else the newest."""
    jobs = ui.store.list(kind=kind)
    for status in ("running", "queued"):
        for job in jobs:
            if job.status == status:
                return job
    return jobs[-1] if jobs else None


def abort_job(ui: UIContext, job_id, lang: str) -> str:
    """Abort a running job (it saves a checkpoint at the next step) or cancel a queued one; the status line."""
    if job_id in (None, ""):
        return i18n.label("msg_no_run", lang)
    result = ui.scheduler.abort(int(job_id))
    if result in ("cancelled", "stopping"):
        return i18n.text(f"msg_{result}", lang, id=job_id)  # msg_cancelled / msg_stopping
    return result  # the job had already ended (done / failed) or is unknown


def follow_job(ui: UIContext, job_state, lang_in, progress_out, log_out, every: float = 2.0) -> None:
    """Refresh a tab's progress bar and log tail for the job in `job_state` while the page is open."""
    import gradio as gr

    def tick(job_id, lang):
        if job_id is None:
            return gr.update(), gr.update()
        html, log, _ = monitor(ui, job_id, lang)
        return html, log

    gr.Timer(every).tick(tick, [job_state, lang_in], [progress_out, log_out], show_progress="hidden")


def job_buttons(ui: UIContext, kind: str) -> None:
    """The Start and Abort buttons of a queued-job tab (`<kind>_btn`, `<kind>_abort_btn`), in the caller's row."""
    import gradio as gr

    start = gr.Button(ui.t(f"{kind}_btn"), variant="primary", elem_id=f"tf-{kind}_btn", scale=1)
    ui.register(f"{kind}_btn", start, how="value")
    abort = gr.Button(ui.t("abort_btn"), variant="stop", elem_id=f"tf-{kind}_abort_btn", scale=1)
    ui.register(f"{kind}_abort_btn", abort, text_key="abort_btn", how="value")


def job_panel(ui: UIContext, kind: str, start_fn, inputs: list, log_lines: int) -> None:
    """Below the buttons: the job's progress bar and log. Start queues through `start_fn(lang, *inputs)` ->
    (job id, progress html, message); Abort stops the job; the panel follows it until it ends."""
    import gradio as gr

    e = ui.elems
    job = ui.register(f"{kind}_job", gr.State(None), how="none")
    bar = gr.HTML(elem_id=f"tf-{kind}_progress")
    log = gr.Textbox(
        label=ui.t(f"{kind}_log"), lines=log_lines, max_lines=log_lines, interactive=False, elem_id=f"tf-{kind}_log"
    )
    ui.register(f"{kind}_log", log, how="label")
    e[f"{kind}_abort_btn"].click(lambda lang, job_id: abort_job(ui, job_id, lang), [e["ui_lang"], job], log)
    e[f"{kind}_btn"].click(start_fn, [e["ui_lang"], *inputs], [job, bar, log])
    follow_job(ui, job, e["ui_lang"], bar, log)


def monitor(ui: UIContext, job_id, lang: str, log_lines: int = 60):
    """(progress HTML, log tail, loss frame) of one job."""
    job = ui.store.get(int(job_id)) if job_id not in (None, "") else None
    if job is None:
        return progress_html(None, "", lang, i18n.label("msg_no_run", lang)), "", curve_frame({})
    p = progress(job.run_dir)
    html = progress_html(p, job.status, lang, f"#{job.id} {Path(job.run_dir).name}", steps=job.kind == "train")
    log = "\n".join(runner.read_tail(job.log_path, 20000).splitlines()[-log_lines:])
    return html, log, curve_frame({"run": p})


def run_rows(ui: UIContext, lang: str) -> tuple[list[str], list[list], list[tuple[str, str]]]:
    """The Runs table: every job in the store, then run folders under the saves dir that no job knows."""
    headers = [
        i18n.label(k, lang)
        for k in (
            "col_id",
            "col_status",
            "col_kind",
            "col_stage",
            "col_method",
            "col_dataset",
            "col_final",
            "col_best",
            "col_duration",
            "col_dir",
        )
    ]
    rows, choices, seen = [], [], set()

    def fmt(v):
        return "" if v is None else f"{v:.4f}"

    for job in reversed(ui.store.list()):
        cfg = read_run_config(job.run_dir) if job.kind == "train" else {}
        p = progress(job.run_dir) if job.kind == "train" else None
        rows.append(
            [
                job.id,
                i18n.label("status_" + job.status, lang),
                job.kind,
                cfg.get("stage", job.meta.get("stage", "")),
                cfg.get("finetuning_type", ""),
                cfg.get("dataset", job.meta.get("dataset", "")) or "",
                fmt(p.final_loss if p else None),
                fmt(p.best_loss if p else None),
                format_seconds(job.duration),
                job.run_dir,
            ]
        )
        if job.kind == "train" and job.run_dir not in seen:
            choices.append((f"#{job.id} {job.run_dir}", job.run_dir))
        seen.add(str(Path(job.run_dir).resolve()))
    for folder in find_run_dirs(ui.saves_dir):
        if str(folder.resolve()) in seen:
            continue
        cfg, p = read_run_config(folder), progress(folder)
        status = "done" if (folder / "train_results.json").is_file() else "stopped"
        rows.append(
            [
                "",
                i18n.label("status_" + status, lang),
                "train",
                cfg.get("stage", ""),
                cfg.get("finetuning_type", ""),
                cfg.get("dataset", ""),
                fmt(p.final_loss),
                fmt(p.best_loss),
                format_seconds(p.elapsed),
                str(folder),
            ]
        )
        choices.append((str(folder), str(folder)))
    return headers, rows, choices


def compare_frame(run_dirs: list[str], ui: UIContext | None = None):
    """Loss curves of the chosen runs (only folders the page may read, when `ui` is given)."""
    dirs = [d for d in run_dirs or [] if ui is None or ui.policy.may_read(d)]
    return curve_frame({Path(d).name: progress(d) for d in dirs})
