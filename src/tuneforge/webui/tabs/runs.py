"""The Runs tab: every run and the queue, with status, stage, method, dataset, losses and duration; overlaid loss
curves of chosen runs; resume a stopped run, clone one into the Train form, abort or cancel one."""

from __future__ import annotations

from tuneforge.errors import UserError
from tuneforge.utils.run_folder import read_config as read_run_config
from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import (
    RUN_DATATYPES,
    abort_job,
    compare_frame,
    draw_curves,
    error_text,
    job_choices,
    loss_chart,
    resume_run,
    run_rows,
)
from tuneforge.webui.tabs.train import FORM_KEYS, fill_form


def build(ui: UIContext, tabs, train_tab) -> None:
    import gradio as gr

    e = ui.elems
    with gr.Row():
        ui.control("runs_refresh_btn", gr.Button, how="value", scale=0, min_width=120)
    ui.control("runs_table", gr.Dataframe, datatype=RUN_DATATYPES, interactive=False, wrap=False)
    with gr.Row():
        with gr.Column(scale=2):
            ui.control("runs_compare", gr.Dropdown, how="field", choices=[], multiselect=True)
            ui.control("run_selected", gr.Dropdown, choices=[])
            with gr.Row():
                for key, variant in (("resume_btn", "primary"), ("clone_btn", "secondary"), ("runs_abort_btn", "stop")):
                    ui.control(key, gr.Button, how="value", variant=variant)
            runs_status = ui.control("runs_status", gr.Textbox, how="none", show_label=False, interactive=False)
        with gr.Column(scale=3):
            loss_chart(ui, "runs_plot")

    def refresh(lang):
        import pandas as pd  # with gradio, only the Web UI loads it

        headers, rows, choices = run_rows(ui, lang)
        table = pd.DataFrame(rows, columns=headers)
        return table, gr.update(choices=choices), gr.update(choices=choices)

    refresh_outputs = [e["runs_table"], e["runs_compare"], e["run_selected"]]
    e["runs_refresh_btn"].click(refresh, e["ui_lang"], refresh_outputs)
    e["runs_refresh"] = refresh
    draw_curves(
        [e["runs_compare"].change, e["ui_lang"].change],  # the legend names the series in the page's language
        lambda dirs, lang: (compare_frame(dirs, ui, lang),),
        [e["runs_compare"], e["ui_lang"]],
        [e["runs_plot"]],
    )
    gr.Timer(5.0).tick(lambda lang: refresh(lang)[0], e["ui_lang"], e["runs_table"], show_progress="hidden")

    def resume(lang, run_dir):
        if not run_dir:
            return i18n.label("msg_pick_run", lang), gr.update()
        try:
            job = resume_run(ui, run_dir)
        except UserError as exc:
            return error_text(exc), gr.update()
        return (
            i18n.text("msg_resumed", lang, id=job.id, dir=run_dir),
            gr.update(choices=job_choices(ui, lang), value=job.id),
        )

    e["resume_btn"].click(resume, [e["ui_lang"], e["run_selected"]], [runs_status, e["job_select"]])

    def clone(lang, run_dir):
        if not run_dir:
            return [gr.update()] * len(FORM_KEYS) + [i18n.label("msg_pick_run", lang), gr.Tabs()]
        try:
            ui.policy.confine_read(run_dir, "run")
        except UserError as exc:
            return [gr.update()] * len(FORM_KEYS) + [error_text(exc), gr.Tabs()]
        cfg = read_run_config(run_dir)
        cfg.pop("resume_from_checkpoint", None)
        updates = fill_form(ui, cfg, keep_output_dir=False)
        return updates + [i18n.text("msg_cloned", lang, dir=run_dir), gr.Tabs(selected="train")]

    e["clone_btn"].click(clone, [e["ui_lang"], e["run_selected"]], [*[e[k] for k in FORM_KEYS], runs_status, tabs])

    def abort(lang, run_dir):
        jobs = [j for j in ui.store.list(("queued", "running")) if j.run_dir == run_dir]
        if not jobs:
            return i18n.label("msg_pick_run", lang)
        return abort_job(ui, jobs[-1].id, lang)

    e["runs_abort_btn"].click(abort, [e["ui_lang"], e["run_selected"]], runs_status)
