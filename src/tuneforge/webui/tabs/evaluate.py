"""The Evaluate & Predict tab: a benchmark (task) or generation metrics on a dataset (eval_dataset) of the model with
the chosen adapter, run as a queued `tuneforge eval` job."""

from __future__ import annotations

from tuneforge.errors import UserError
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import error_text, job_buttons, job_panel, monitor, queue_run
from tuneforge.webui.tabs.chat import chat_config
from tuneforge.webui.tabs.export import MODEL_KEYS

EVAL_NAMES = {"max_samples": "eval_max_samples"}  # registry names of keys the Train tab shows too


def build(ui: UIContext) -> None:
    import gradio as gr  # gradio: only the Web UI loads it

    e = ui.elems
    with gr.Row():
        ui.field("task", scale=2)
        ui.field("task_dir", scale=2)
        ui.field("n_shot")
        ui.field("lang", text_key="eval_lang")
        ui.field("batch_size")
    with gr.Row():
        ui.field("eval_dataset", scale=3)
        ui.field("max_samples", name="eval_max_samples", scale=1)
        ui.field("save_dir", scale=3)
        job_buttons(ui, "eval")
    inputs = [
        *[e[k] for k in MODEL_KEYS],
        e["checkpoint_path"],
        *[e[EVAL_NAMES.get(k, k)] for k in form.EVAL],
        e["dataset_dir"],
    ]

    def start(lang, *args):
        n = len(MODEL_KEYS)
        values = dict(zip(MODEL_KEYS, args[:n], strict=True))
        eval_values = dict(zip(form.EVAL, args[n + 1 : -1], strict=True))
        try:
            cfg = chat_config(values, args[n])
            cfg.update(form.build_config(eval_values, form.EVAL))
            if not cfg.get("task") and not cfg.get("eval_dataset"):
                raise UserError(
                    "nothing to evaluate", where="task", fix="name a benchmark (task) or a dataset to predict on"
                )
            name = cfg.get("task") or "predict"
            cfg.setdefault("save_dir", str(ui.saves_dir / "eval" / name.replace(",", "_")))
            if cfg.get("eval_dataset"):
                cfg.update(dataset_dir=args[-1] or ui.data_dir, output_dir=cfg["save_dir"])
            job = queue_run(ui, "eval", cfg, ui.job_dir("eval"), stage_check=False)
        except UserError as exc:
            return None, "", error_text(exc)
        return job.id, monitor(ui, job.id, lang)[0], i18n.text("msg_queued", lang, id=job.id, dir=cfg["save_dir"])

    job_panel(ui, "eval", start, inputs, log_lines=12)
