"""`tuneforge webui` / `tuneforge webchat`: build the Gradio page and serve it (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import current_job
from tuneforge.webui.paths import PathPolicy
from tuneforge.webui.tabs import chat, evaluate, export, runs, sweep, top, train

CSS = """
.tf-progress {padding: 6px 2px}
#tf-title h2 {margin-bottom: 0}
/* A LinePlot's chart is 100% of its block's height below the label, so the legend fell out of view: fit it. */
#tf-loss_plot, #tf-runs_plot {display: flex; flex-direction: column}
#tf-loss_plot > .vega-embed, #tf-runs_plot > .vega-embed {flex: 1 1 0; min-height: 0}
/* A reasoning model's thinking, folded above its answer in the chat (webui/tabs/chat.py). */
.tf-thinking-summary {cursor: pointer; font-size: 0.9em; opacity: 0.8}
.tf-thinking {border-left: 2px solid #a6a6a6; padding-left: 10px; margin: 4px 0; color: #8a8a8a; white-space: pre-wrap}
"""


def create_app(
    saves_dir: str | Path = "saves",
    data_dir: str = "data",
    lang: str = "en",
    chat_only: bool = False,
    models_dirs: list[str | Path] | tuple[str | Path, ...] = ("models",),
    allow_dirs: list[str | Path] | tuple[str | Path, ...] = (),
):
    """The Blocks page and its context. The scheduler thread starts here: queued runs start without a browser.
    The page writes only under saves_dir (+ allow_dirs) and reads only those + data_dir + models_dirs (webui/paths)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr  # gradio: seconds to import; only the Web UI loads it

    if lang not in i18n.languages():
        raise UserError(f"unknown language '{lang}'", where="--lang", fix=f"use one of {', '.join(i18n.languages())}")
    cwd = Path.cwd()
    policy = PathPolicy.build(saves_dir, data_dir, models_dirs=models_dirs, allow_dirs=allow_dirs, base=cwd)
    ui = UIContext(saves_dir=Path(saves_dir), data_dir=data_dir, lang=lang, cwd=cwd, policy=policy)

    def tab(name: str):  # the tab `tab_<name>`, selected by id `name`, found as #tf-tab-<name>
        return ui.control(f"tab_{name}", gr.Tab, id=name, elem_id=f"tf-tab-{name}")

    with gr.Blocks(title="TuneForge", analytics_enabled=False) as demo:
        ui.control("title", gr.Markdown, how="heading")
        ui.control("subtitle", gr.Markdown, how="text")
        top.build(ui)
        if chat_only:
            chat.build(ui)
        else:
            with ui.control("tabs", gr.Tabs, how="none") as tabs:
                with tab("train") as train_tab:
                    train.build(ui)
                with tab("sweep") as sweep_tab:
                    sweep.build(ui, tabs, sweep_tab)
                with tab("evaluate"):
                    evaluate.build(ui)
                with tab("chat"):
                    chat.build(ui)
                with tab("export"):
                    export.build(ui)
                with tab("runs"):
                    runs.build(ui, tabs, train_tab)
        _wire_page(ui, demo, chat_only)
    ui.scheduler.start()
    return demo, ui


def _wire_page(ui: UIContext, demo, chat_only: bool) -> None:
    import gradio as gr

    e = ui.elems
    translated = [item.component for item in ui.texts]
    e["ui_lang"].change(ui.translate, e["ui_lang"], translated)

    def on_load(lang, path, method, stage, dataset_dir, chosen):
        choices = top.checkpoint_choices(ui, path, method)
        if chat_only:
            return [gr.update(choices=choices)]
        restored = train.on_page_load(ui, lang)  # [job_select, *FORM_KEYS]
        updates = dict(zip(train.FORM_KEYS, restored[1:], strict=True))
        ckpt = updates["checkpoint_path"]
        if isinstance(ckpt, dict) and ckpt.get("value"):  # the restored run's adapter, with its siblings
            choices = sorted(set(choices) | {ckpt["value"]})
        updates["checkpoint_path"] = gr.update(choices=choices, **({"value": ckpt["value"]} if "value" in ckpt else {}))
        if "value" not in updates["dataset"]:  # nothing restored: list the stage's datasets
            names, _ = ui.datasets(dataset_dir, stage or "sft")
            updates["dataset"] = gr.update(choices=sorted(set(names) | set(chosen or [])))
        table, compare, selected = e["runs_refresh"](lang)
        others = [
            gr.update(choices=ui.datasets(dataset_dir, "sft")[0]),  # eval_dataset
            *(getattr(current_job(ui, kind), "id", None) for kind in ("eval", "export")),  # re-attach those too
            sweep.on_page_load(ui, lang),
        ]
        return [table, compare, selected, restored[0], *updates.values(), *others]

    if chat_only:
        outputs = [e["checkpoint_path"]]
        inputs = [
            e["ui_lang"],
            e["model_name_or_path"],
            e["finetuning_type"],
            gr.State("sft"),
            gr.State(ui.data_dir),
            gr.State([]),
        ]
    else:
        outputs = [e["runs_table"], e["runs_compare"], e["run_selected"], e["job_select"]]
        outputs += [*[e[k] for k in train.FORM_KEYS], e["eval_dataset"], e["eval_job"], e["export_job"]]
        outputs += [e["sweep_select"]]
        inputs = [
            e["ui_lang"],
            e["model_name_or_path"],
            e["finetuning_type"],
            e["stage"],
            e["dataset_dir"],
            e["dataset"],
        ]
    demo.load(on_load, inputs, outputs)


def parse_auth(auth: str | None):
    if not auth:
        return None
    if ":" not in auth:
        raise UserError("--auth must be user:password", where="--auth", fix="e.g. --auth admin:secret")
    user, password = auth.split(":", 1)
    return (user, password)


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    share: bool = False,
    saves_dir: str = "saves",
    data_dir: str = "data",
    lang: str = "en",
    chat_only: bool = False,
    models_dirs: list[str] | tuple[str, ...] = ("models",),
    allow_dirs: list[str] | tuple[str, ...] = (),
) -> None:
    demo, _ = create_app(
        saves_dir=saves_dir,
        data_dir=data_dir,
        lang=lang,
        chat_only=chat_only,
        models_dirs=models_dirs,
        allow_dirs=allow_dirs,
    )
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        auth=parse_auth(auth),
        share=share,
        inbrowser=False,
        css=CSS,
        footer_links=[],
        quiet=False,
    )
