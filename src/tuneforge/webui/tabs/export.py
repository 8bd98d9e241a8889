"""The Export tab: merge the adapter into the base and save (shards, optional quantization) as a queued job."""

from __future__ import annotations

from tuneforge.errors import UserError
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import error_text, job_buttons, job_panel, monitor, queue_run
from tuneforge.webui.tabs.chat import chat_config

MODEL_KEYS = form.TOP  # the top bar's model settings: a merge loads the model and runs nothing


def build(ui: UIContext) -> None:
    import gradio as gr  # gradio: only the Web UI loads it

    e = ui.elems
    with gr.Row():
        ui.field("export_size")
        ui.field("export_quantization_bit")
        ui.field("export_quantization_dataset")
        ui.field("export_device")
    with gr.Row():
        ui.field("export_dir", scale=4)
        job_buttons(ui, "export")
    inputs = [*[e[k] for k in MODEL_KEYS], e["checkpoint_path"], *[e[k] for k in form.EXPORT]]

    def start(lang, *args):
        n = len(MODEL_KEYS)
        values = dict(zip(MODEL_KEYS, args[:n], strict=True))
        export_values = dict(zip(form.EXPORT, args[n + 1 :], strict=True))
        try:
            cfg = chat_config(values, args[n])
            cfg.update(form.build_config(export_values, form.EXPORT))
            if not cfg.get("export_dir"):
                raise UserError("export_dir is required", where="export_dir", fix="fill in the export dir")
            job = queue_run(ui, "export", cfg, ui.job_dir("export"), stage_check=False)
        except UserError as exc:
            return None, "", error_text(exc)
        return job.id, monitor(ui, job.id, lang)[0], i18n.text("msg_queued", lang, id=job.id, dir=cfg["export_dir"])

    job_panel(ui, "export", start, inputs, log_lines=10)
