"""The Export tab: merge the adapter into the base and save (shards, optional quantization) as a queued job."""

from __future__ import annotations

from tuneforge.errors import UserError
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import abort_job, error_text, follow_job, monitor, queue_run
from tuneforge.webui.tabs.chat import chat_config

MODEL_KEYS = [
    "model_name_or_path",
    "finetuning_type",
    "quantization_bit",
    "quantization_method",
    "template",
    "rope_scaling",
    "booster",
]


def build(ui: UIContext) -> None:
    import gradio as gr

    e = ui.elems
    with gr.Row():
        ui.field("export_size")
        ui.field("export_quantization_bit")
        ui.field("export_quantization_dataset")
        ui.field("export_device")
    with gr.Row():
        ui.field("export_dir", scale=4)
        ui.register(
            "export_btn",
            gr.Button(ui.t("export_btn"), variant="primary", elem_id="tf-export_btn", scale=1),
            how="value",
        )
        ui.register(
            "export_abort_btn",
            gr.Button(ui.t("abort_btn"), variant="stop", elem_id="tf-export_abort_btn", scale=1),
            text_key="abort_btn",
            how="value",
        )
    export_job = ui.register("export_job", gr.State(None), how="none")
    export_progress = gr.HTML(elem_id="tf-export_progress")
    ui.register(
        "export_log",
        gr.Textbox(label=ui.t("export_log"), lines=10, max_lines=10, interactive=False, elem_id="tf-export_log"),
        how="label",
    )

    inputs = [e["ui_lang"], *[e[k] for k in MODEL_KEYS], e["checkpoint_path"], *[e[k] for k in form.EXPORT]]

    def start(lang, *args):
        n = len(MODEL_KEYS)
        values = dict(zip(MODEL_KEYS, args[:n], strict=True))
        export_values = dict(zip(form.EXPORT, args[n + 1 :], strict=True))
        try:
            cfg = chat_config(values, args[n])
            cfg.pop("infer_backend", None)
            cfg.update(form.build_config(export_values, form.EXPORT))
            if not cfg.get("export_dir"):
                raise UserError("export_dir is required", where="export_dir", fix="fill in the export dir")
            job = queue_run(ui, "export", cfg, ui.job_dir("export"), stage_check=False)
        except UserError as exc:
            return None, "", error_text(exc)
        return job.id, monitor(ui, job.id, lang)[0], i18n.text("msg_queued", lang, id=job.id, dir=cfg["export_dir"])

    e["export_abort_btn"].click(
        lambda lang, job_id: abort_job(ui, job_id, lang), [e["ui_lang"], export_job], e["export_log"]
    )
    e["export_btn"].click(start, inputs, [export_job, export_progress, e["export_log"]])

    follow_job(ui, export_job, e["ui_lang"], export_progress, e["export_log"])
