"""The Sweep tab: a hyper-parameter search over the Train form. Each searchable field of the form is a row (search
it? low / high / log / step, or choices); the base config is what the Train tab's Start would run. Start submits a
`tuneforge sweep` job; the tab follows it (trials table with the best starred, metric per trial, parameters against
the metric) and fills the Train form with the best trial's config."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.sweep import folder
from tuneforge.sweep.results import best_row, trial_rows
from tuneforge.sweep.spec import load_sweep_spec
from tuneforge.sweep.submit import submit_sweep
from tuneforge.utils.run_folder import read_config as read_run_config
from tuneforge.webui import i18n, sweep_space, sweep_view
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import abort_job, current_job, error_text, job_choices
from tuneforge.webui.paths import confine_config
from tuneforge.webui.sweep_space import CATEGORICAL, Row, groups
from tuneforge.webui.tabs.train import FORM_KEYS, config_from, fill_form, values_of

SETTINGS = ("sweep_metric", "sweep_direction", "sweep_n_trials", "sweep_sampler", "sweep_pruner", "sweep_seed")
_SPECS: dict[tuple[str, float], object] = {}  # sweep.yaml (path, mtime) -> SweepSpec: the timer reads it every tick
_SPECS_LOCK = threading.Lock()
_TRIALS: dict[str, tuple[tuple, float, list[dict]]] = {}  # sweep folder -> (study files' stamp, read at, rows)
REREAD_S = 15.0  # read the study at least this often: a file system with coarse times may hide a change


def row_components(key: str) -> list[str]:
    """The element names of a row, in the order the handlers receive them."""
    if key in CATEGORICAL:
        return [f"sweep_on_{key}", f"sweep_choices_{key}"]
    return [f"sweep_{part}_{key}" for part in ("on", "low", "high", "log", "step", "choices")]


def row_keys() -> list[str]:
    return [k for _, keys in groups() for k in keys]


def row_elems() -> list[str]:
    """Every row's element names: the order the handlers receive the rows' values in."""
    return [name for key in row_keys() for name in row_components(key)]


def rows_of(args) -> dict[str, Row]:
    """The rows' widget values (in row_elems() order) as Rows."""
    values = dict(zip(row_elems(), args, strict=True))
    rows = {}
    for key in row_keys():
        get = {name.removeprefix("sweep_").removesuffix(f"_{key}"): values[name] for name in row_components(key)}
        rows[key] = Row(
            on=bool(get["on"]),
            low=str(get.get("low") or ""),
            high=str(get.get("high") or ""),
            log=bool(get.get("log")),
            step=str(get.get("step") or ""),
            choices=str(get.get("choices") or ""),
        )
    return rows


def _row(ui: UIContext, key: str) -> None:
    import gradio as gr

    with gr.Row(equal_height=True):
        ui.control(f"sweep_on_{key}", gr.Checkbox, text_key=key, scale=3, min_width=180)
        if key in CATEGORICAL:
            ui.control(f"sweep_choices_{key}", gr.Textbox, text_key="sweep_choices", scale=9)
            return
        low, high, log = sweep_space.default_range(key, None)
        ui.control(f"sweep_low_{key}", gr.Textbox, text_key="sweep_low", value=low, scale=2, min_width=90)
        ui.control(f"sweep_high_{key}", gr.Textbox, text_key="sweep_high", value=high, scale=2, min_width=90)
        ui.control(f"sweep_log_{key}", gr.Checkbox, text_key="sweep_log", value=log, scale=1, min_width=70)
        ui.control(f"sweep_step_{key}", gr.Textbox, text_key="sweep_step", scale=1, min_width=70)
        ui.control(f"sweep_choices_{key}", gr.Textbox, text_key="sweep_choices", scale=3, min_width=120)


def _dropdown(ui: UIContext, key: str, values, custom: bool = False, **kw):
    import gradio as gr

    comp = gr.Dropdown(
        choices=i18n.choices(key, list(values), ui.lang),
        value=values[0],
        label=ui.t(key),
        info=i18n.info(key, ui.lang),
        elem_id=f"tf-{key}",
        allow_custom_value=custom,
        **kw,
    )
    return ui.register(key, comp, key, "choices", list(values))


def build(ui: UIContext, tabs, sweep_tab) -> None:
    import gradio as gr

    ui.control("sweep_help", gr.Markdown, how="text")
    with gr.Row():
        _dropdown(ui, "sweep_metric", sweep_space.METRICS, custom=True, scale=2)
        _dropdown(ui, "sweep_direction", sweep_space.DIRECTIONS)
        ui.control("sweep_n_trials", gr.Number, how="field", value=6, precision=0, minimum=1)
        _dropdown(ui, "sweep_sampler", sweep_space.SAMPLERS)
        _dropdown(ui, "sweep_pruner", sweep_space.PRUNERS)
        ui.control("sweep_seed", gr.Number, how="field", value=0, precision=0)
    for title, keys in groups():
        if not keys:
            continue
        with ui.control(f"sweep_{title}", gr.Accordion, text_key=title, open=title == "acc_sweep_train"):
            for key in keys:
                _row(ui, key)
    with gr.Row():
        ui.control("sweep_start_btn", gr.Button, how="value", text_key="start_btn", variant="primary")
        ui.control("sweep_abort_btn", gr.Button, how="value", text_key="abort_btn", variant="stop")
        ui.control("sweep_best_btn", gr.Button, how="value", variant="secondary")
    ui.control("sweep_status", gr.Textbox, text_key="status_box", interactive=False)
    ui.control("sweep_select", gr.Dropdown, how="field", choices=[], value=None)
    ui.control("sweep_progress", gr.HTML, how="none")
    ui.control("sweep_best", gr.Markdown, how="none")
    ui.control("sweep_table", gr.Dataframe, interactive=False, wrap=False)
    with gr.Row():
        ui.control("sweep_metric_plot", gr.Plot, how="none", show_label=False)
        ui.control("sweep_params_plot", gr.Plot, how="none", show_label=False)
    _wire(ui, tabs, sweep_tab)


def sweep_spec(job):
    """The SweepSpec of a sweep job's sweep.yaml, read again only when the file changed."""
    path = Path(job.config_path)
    key = (str(path), path.stat().st_mtime if path.is_file() else 0.0)
    with _SPECS_LOCK:
        if key not in _SPECS:
            _SPECS[key] = load_sweep_spec(path, read_run_config(job.run_dir))  # checked against its base config
        return _SPECS[key]


def study_trials(sweep_dir: str | Path) -> list[dict]:
    """trial_rows, read again only when the study's SQLite files changed: every open page asks every 2 s, and Optuna
    takes ~0.1 s to read 50 trials (benchmarks/webui_sweep_tick.py). A running trial's duration follows the clock."""
    study = folder.study_path(sweep_dir)
    files = (study, study.with_name(study.name + "-wal"), study.with_name(study.name + "-journal"))
    stamp = tuple((s.st_mtime_ns, s.st_size) if (s := _stat(p)) else None for p in files)
    key = str(Path(sweep_dir).resolve())
    cached = _TRIALS.get(key)
    if cached is None or cached[0] != stamp or time.time() - cached[1] > REREAD_S:
        cached = (stamp, time.time(), trial_rows(sweep_dir))
        _TRIALS[key] = cached
    _, read_at, rows = cached
    late = time.time() - read_at
    return [
        {**row, "duration_s": row["duration_s"] + late}
        if row["state"] == "RUNNING" and row.get("duration_s") is not None
        else row
        for row in rows
    ]


def _stat(path: Path):
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def start(ui: UIContext, train_values: dict, rows: dict[str, Row], settings: dict):
    """Submit the sweep: the Train form's config as the base, the ticked rows as the space. The job, or UserError."""
    model, method = train_values.get("model_name_or_path"), train_values.get("finetuning_type")
    spec = sweep_space.build_spec(rows, train_values, **settings)
    sweep_dir = ui.new_output_dir(model, method, "sweep")
    cfg = config_from(ui, {**train_values, "output_dir": sweep_dir})
    confine_config(cfg, ui.policy)
    ui.policy.confine_write(sweep_dir, "output_dir")
    spec["output_dir"] = sweep_dir
    return submit_sweep(ui.scheduler, cfg, spec, sweep_dir, ui.cwd)


def watch(ui: UIContext, job_id, lang: str, drawn: str | None):
    """(bar, table, best line, metric figure, parameters figure, figures' key) of a sweep job; the figures are
    gr.skip() while their trials are what `drawn` says (with no sweep to follow, everything is, once shown)."""
    import gradio as gr
    import pandas as pd

    job = ui.store.get(int(job_id)) if job_id not in (None, "") else None
    if job is None:
        if drawn == f"none:{lang}":
            return (gr.skip(),) * 6
        bar = sweep_view.bar_html("", [], 0, lang, i18n.label("msg_no_run", lang))
        return bar, pd.DataFrame(), "", None, None, f"none:{lang}"
    title = f"#{job.id} {Path(job.run_dir).name}"
    try:
        spec = sweep_spec(job)
    except UserError as exc:
        return sweep_view.bar_html(job.status, [], 0, lang, title), pd.DataFrame(), error_text(exc), None, None, None
    rows = study_trials(job.run_dir)
    best = best_row(rows, spec.direction)
    headers, cells = sweep_view.trial_table(rows, list(spec.params), spec.metric, best, lang)
    key = sweep_view.figure_key(rows, lang)
    figures = (gr.skip(), gr.skip())
    if key != drawn:
        figures = (
            sweep_view.metric_figure(rows, spec.metric, spec.direction, lang),
            sweep_view.params_figure(rows, spec.params, spec.metric, lang),
        )
    return (
        sweep_view.bar_html(job.status, rows, spec.n_trials, lang, title),
        pd.DataFrame(cells, columns=headers),
        sweep_view.best_text(best, spec.metric, lang),
        *figures,
        key,
    )


def best_config(ui: UIContext, job) -> dict:
    """The best trial's config (its run folder's config.yaml: the base with its parameters); UserError when none."""
    spec = sweep_spec(job)
    best = best_row(trial_rows(job.run_dir), spec.direction)
    if best is None:
        raise UserError("no finished trial yet", where=Path(job.run_dir).name, fix="wait for the first trial")
    ui.policy.confine_read(best["run_dir"], "run")
    cfg = read_run_config(best["run_dir"]) or {**read_run_config(job.run_dir), **best["params"]}
    cfg.pop("resume_from_checkpoint", None)
    return cfg


def _wire(ui: UIContext, tabs, sweep_tab) -> None:
    import gradio as gr

    e = ui.elems
    lang_in = e["ui_lang"]
    train_inputs = [e[k] for k in FORM_KEYS]
    row_inputs = [e[name] for name in row_elems()]
    numeric_rows = [k for k in row_keys() if k not in CATEGORICAL]
    settings = [e[k] for k in SETTINGS]
    n_form, n_settings = len(train_inputs), len(settings)

    def from_form(*args):
        """On opening the tab: the rows not ticked take their range from the Train form's current values."""
        values, rows = values_of(args[:n_form]), rows_of(args[n_form:])
        out = []
        for key in numeric_rows:
            if rows[key].on:
                out += [gr.skip()] * 3
            else:
                out += list(sweep_space.default_range(key, values.get(key)))
        return out

    range_outputs = [e[f"sweep_{part}_{key}"] for key in numeric_rows for part in ("low", "high", "log")]
    sweep_tab.select(from_form, [*train_inputs, *row_inputs], range_outputs)

    def on_start(lang, *args):
        metric, direction, n_trials, sampler, pruner, seed = args[:n_settings]
        train_values = values_of(args[n_settings : n_settings + n_form])
        rows = rows_of(args[n_settings + n_form :])
        chosen = dict(metric=metric, direction=direction, n_trials=n_trials, sampler=sampler, pruner=pruner, seed=seed)
        try:
            job = start(ui, train_values, rows, chosen)
        except UserError as exc:
            return gr.update(), error_text(exc)
        key = "msg_sweep_started" if job.status == "running" else "msg_sweep_queued"
        return gr.update(choices=job_choices(ui, lang, "sweep"), value=job.id), i18n.text(
            key, lang, id=job.id, dir=job.run_dir
        )

    e["sweep_start_btn"].click(
        on_start, [lang_in, *settings, *train_inputs, *row_inputs], [e["sweep_select"], e["sweep_status"]]
    )
    e["sweep_abort_btn"].click(
        lambda lang, job_id: abort_job(ui, job_id, lang), [lang_in, e["sweep_select"]], e["sweep_status"]
    )

    def on_best(lang, job_id):
        job = ui.store.get(int(job_id)) if job_id not in (None, "") else None
        if job is None:
            return [gr.update()] * len(FORM_KEYS) + [i18n.label("msg_no_run", lang), gr.Tabs()]
        try:
            cfg = best_config(ui, job)
        except UserError as exc:
            return [gr.update()] * len(FORM_KEYS) + [error_text(exc), gr.Tabs()]
        updates = fill_form(ui, cfg, keep_output_dir=False)
        return updates + [
            i18n.text("msg_cloned", lang, dir=cfg.get("output_dir", job.run_dir)),
            gr.Tabs(selected="train"),
        ]

    e["sweep_best_btn"].click(on_best, [lang_in, e["sweep_select"]], [*train_inputs, e["sweep_status"], tabs])

    drawn = gr.State(None)
    outputs = [
        e["sweep_progress"],
        e["sweep_table"],
        e["sweep_best"],
        e["sweep_metric_plot"],
        e["sweep_params_plot"],
        drawn,
    ]
    timer = gr.Timer(2.0)
    timer.tick(
        lambda job_id, lang, key: watch(ui, job_id, lang, key),
        [e["sweep_select"], lang_in, drawn],
        outputs,
        show_progress="hidden",
        queue=False,
    )
    for trigger in (e["sweep_select"].change, lang_in.change):  # another sweep, another language: draw afresh
        trigger(lambda job_id, lang: watch(ui, job_id, lang, None), [e["sweep_select"], lang_in], outputs)
    e["sweep_timer"] = timer


def on_page_load(ui: UIContext, lang: str):
    """After a refresh: follow the running (or newest) sweep again."""
    import gradio as gr

    job = current_job(ui, "sweep")
    return gr.update(choices=job_choices(ui, lang, "sweep"), value=job.id if job else None)
