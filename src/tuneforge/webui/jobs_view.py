"""Glue between the forms and the job queue: write a run's config, queue it, follow it, list runs."""

from __future__ import annotations

import threading
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.jobs import runner
from tuneforge.jobs.progress import format_seconds, progress
from tuneforge.jobs.store import ACTIVE, Job
from tuneforge.train.output_dir import plan_output_dir
from tuneforge.utils import run_folder
from tuneforge.utils.run_folder import find_run_dirs
from tuneforge.utils.run_folder import read_config as read_run_config
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.paths import confine_config
from tuneforge.webui.render import curve_frame, progress_html, run_dir_html, series_colours
from tuneforge.webui.sweep_view import group_sweeps, sweep_cell

_QUEUEING = threading.Lock()  # the busy-folder check and the submit, as one step for the page's concurrent sessions
RUN_COLUMNS = (
    "col_id",
    "col_status",
    "col_kind",
    "col_sweep",
    "col_stage",
    "col_method",
    "col_dataset",
    "col_final",
    "col_best",
    "col_duration",
    "col_dir",
)
RUN_DATATYPES = ["str"] * (len(RUN_COLUMNS) - 1) + ["html"]  # the run folder: short path, full one on hover


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
        plan_output_dir(str(run_dir), cfg, cfg.get("resume_from_checkpoint"))  # refuses a finished run's folder
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_folder.job_config_path(run_dir, kind)
    config_path.write_text(form.to_yaml(cfg), encoding="utf-8")
    meta = {k: cfg.get(k) for k in ("stage", "finetuning_type", "dataset", "model_name_or_path") if k in cfg}
    return ui.scheduler.submit(
        kind, run_dir.resolve(), config_path.resolve(), run_folder.job_log_path(run_dir, kind).resolve(), ui.cwd, meta
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


def loss_chart(ui: UIContext, key: str):
    """A loss chart under `key`: step × loss, a line per series (draw_curves feeds it). Its legend title is blank:
    None would show the column name ("series"), and "" breaks vega's legend layout while the chart is empty."""
    import gradio as gr

    return ui.control(key, gr.LinePlot, x="step", y="loss", color="series", color_title=" ", height=360)


def draw_curves(triggers: list, fn, inputs: list, outputs: list, **kw) -> None:
    """On `triggers`, `fn(*inputs)` -> outputs, the last a loss chart fed a curve frame. Gradio 6 only swaps a drawn
    chart's data and keeps its legend; a new colour map redraws it, so when the series change (another language, more
    runs, an eval curve) a second step sends one — after the data: in one update the chart redraws the old data."""
    import gradio as gr

    series, drawn = gr.State(None), gr.State(None)  # the frame's series; those the legend shows

    def data(*args):
        *rest, frame = fn(*args)
        return *rest, frame, list(dict.fromkeys(frame["series"]))

    def legend(names, shown):
        if not names or names == shown:  # an empty chart has no series to name: keep the last legend
            return gr.skip(), gr.skip()
        return gr.update(color_map=series_colours(names)), names

    gr.on(triggers, data, inputs, [*outputs, series], **kw).then(legend, [series, drawn], [outputs[-1], drawn], **kw)


def job_buttons(ui: UIContext, kind: str) -> None:
    """The Start and Abort buttons of a queued-job tab (`<kind>_btn`, `<kind>_abort_btn`), in the caller's row."""
    import gradio as gr

    ui.control(f"{kind}_btn", gr.Button, how="value", variant="primary", scale=1)
    ui.control(f"{kind}_abort_btn", gr.Button, how="value", text_key="abort_btn", variant="stop", scale=1)


def job_panel(ui: UIContext, kind: str, start_fn, inputs: list, log_lines: int) -> None:
    """Below the buttons: the job's progress bar and log. Start queues through `start_fn(lang, *inputs)` ->
    (job id, progress html, message); Abort stops the job; the panel follows it until it ends."""
    import gradio as gr

    e = ui.elems
    job = ui.register(f"{kind}_job", gr.State(None), how="none")
    bar = ui.control(f"{kind}_progress", gr.HTML, how="none")
    log = ui.control(f"{kind}_log", gr.Textbox, lines=log_lines, max_lines=log_lines, interactive=False)
    e[f"{kind}_abort_btn"].click(lambda lang, job_id: abort_job(ui, job_id, lang), [e["ui_lang"], job], log)
    e[f"{kind}_btn"].click(start_fn, [e["ui_lang"], *inputs], [job, bar, log])
    follow_job(ui, job, e["ui_lang"], bar, log)


def monitor(ui: UIContext, job_id, lang: str, log_lines: int = 60):
    """(progress HTML, log tail, loss frame) of one job."""
    job = ui.store.get(int(job_id)) if job_id not in (None, "") else None
    if job is None:
        return progress_html(None, "", lang, i18n.label("msg_no_run", lang)), "", curve_frame({}, lang)
    p = progress(job.run_dir)
    html = progress_html(p, job.status, lang, f"#{job.id} {Path(job.run_dir).name}", steps=job.kind == "train")
    log = "\n".join(runner.read_tail(job.log_path, 20000).splitlines()[-log_lines:])
    return html, log, curve_frame({"run": p}, lang)


def full_dir(ui: UIContext, run_dir: str | Path) -> Path:
    return Path(ui.cwd, run_dir).resolve()  # a relative folder is the server's cwd's, like the saves dir


def short_dir(ui: UIContext, run_dir: str | Path) -> str:
    """A run folder relative to the saves folder; its full path when it lies outside."""
    full = full_dir(ui, run_dir)
    try:
        return str(full.relative_to(full_dir(ui, ui.saves_dir)))
    except ValueError:
        return str(full)


def run_rows(ui: UIContext, lang: str) -> tuple[list[str], list[list], list[tuple[str, str]]]:
    """The Runs table (headers, rows, dropdown choices): every job in the store (a sweep's trials right after its
    sweep job), then run folders under the saves dir that no job knows. Folders show relative to the saves dir, in
    the table and in the choices."""
    headers = [i18n.label(k, lang) for k in RUN_COLUMNS]
    rows, choices, seen = [], [], set()

    def fmt(v):
        return "" if v is None else f"{v:.4f}"

    def dir_cell(run_dir):
        return run_dir_html(short_dir(ui, run_dir), str(full_dir(ui, run_dir)))

    for job in group_sweeps(list(reversed(ui.store.list())), lambda d: full_dir(ui, d)):
        cfg = read_run_config(job.run_dir) if job.kind in ("train", "sweep") else {}  # a sweep's: its base config
        p = progress(job.run_dir) if job.kind == "train" else None
        rows.append(
            [
                job.id,
                i18n.label("status_" + job.status, lang),
                job.kind,
                sweep_cell(job, lang),
                cfg.get("stage", job.meta.get("stage", "")),
                cfg.get("finetuning_type", ""),
                cfg.get("dataset", job.meta.get("dataset", "")) or "",
                fmt(p.final_loss if p else None),
                fmt(p.best_loss if p else None),
                format_seconds(job.duration),
                dir_cell(job.run_dir),
            ]
        )
        if job.kind == "train" and job.run_dir not in seen:
            choices.append((f"#{job.id} {short_dir(ui, job.run_dir)}", job.run_dir))
        seen.add(str(Path(job.run_dir).resolve()))
    for folder in find_run_dirs(ui.saves_dir):
        if str(folder.resolve()) in seen:
            continue
        cfg, p = read_run_config(folder), progress(folder)
        status = "done" if run_folder.is_complete(folder) else "stopped"
        rows.append(
            [
                "",
                i18n.label("status_" + status, lang),
                "train",
                "",
                cfg.get("stage", ""),
                cfg.get("finetuning_type", ""),
                cfg.get("dataset", ""),
                fmt(p.final_loss),
                fmt(p.best_loss),
                format_seconds(p.elapsed),
                dir_cell(folder),
            ]
        )
        choices.append((short_dir(ui, folder), str(folder)))
    return headers, rows, choices


def compare_frame(run_dirs: list[str], ui: UIContext | None = None, lang: str = i18n.DEFAULT_LANG):
    """Loss curves of the chosen runs (only folders the page may read, when `ui` is given)."""
    dirs = [d for d in run_dirs or [] if ui is None or ui.policy.may_read(d)]
    return curve_frame({Path(d).name: progress(d) for d in dirs}, lang)
