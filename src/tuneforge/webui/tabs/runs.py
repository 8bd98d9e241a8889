"""The Runs tab: every run and the queue, with status, stage, method, dataset, losses and duration; overlaid loss
curves of chosen runs; resume a stopped run, clone one into the Train form, abort or cancel one."""

from __future__ import annotations

from tuneforge.errors import UserError
from tuneforge.jobs.progress import read_run_config
from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import abort_job, compare_frame, error_text, job_choices, resume_run, run_rows
from tuneforge.webui.tabs.train import FORM_KEYS, fill_form


def build(ui: UIContext, tabs, train_tab) -> None:
    import gradio as gr

    e, lang = ui.elems, ui.lang
    with gr.Row():
        ui.register(
            "runs_refresh_btn",
            gr.Button(ui.t("runs_refresh_btn"), elem_id="tf-runs_refresh_btn", scale=0, min_width=120),
            how="value",
        )
    ui.register(
        "runs_table",
        gr.Dataframe(label=ui.t("runs_table"), interactive=False, wrap=True, elem_id="tf-runs_table"),
        how="label",
    )
    with gr.Row():
        with gr.Column(scale=2):
            ui.register(
                "runs_compare",
                gr.Dropdown(
                    choices=[],
                    multiselect=True,
                    label=ui.t("runs_compare"),
                    info=i18n.info("runs_compare", lang),
                    elem_id="tf-runs_compare",
                ),
            )
            ui.register(
                "run_selected",
                gr.Dropdown(choices=[], label=ui.t("run_selected"), elem_id="tf-run_selected"),
                how="label",
            )
            with gr.Row():
                for key, variant in (("resume_btn", "primary"), ("clone_btn", "secondary"), ("runs_abort_btn", "stop")):
                    ui.register(key, gr.Button(ui.t(key), variant=variant, elem_id=f"tf-{key}"), how="value")
            runs_status = gr.Textbox(show_label=False, interactive=False, elem_id="tf-runs_status")
        with gr.Column(scale=3):
            ui.register(
                "runs_plot",
                gr.LinePlot(
                    x="step", y="loss", color="series", label=ui.t("runs_plot"), height=360, elem_id="tf-runs_plot"
                ),
                how="label",
            )

    def refresh(lang):
        headers, rows, choices = run_rows(ui, lang)
        import pandas as pd

        table = pd.DataFrame(rows, columns=headers)
        return table, gr.update(choices=choices), gr.update(choices=choices)

    refresh_outputs = [e["runs_table"], e["runs_compare"], e["run_selected"]]
    e["runs_refresh_btn"].click(refresh, e["ui_lang"], refresh_outputs)
    e["runs_refresh"] = refresh
    e["runs_compare"].change(lambda dirs: compare_frame(dirs, ui), e["runs_compare"], e["runs_plot"])
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
