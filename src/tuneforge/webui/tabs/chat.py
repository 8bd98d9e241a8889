"""The Chat tab: load / unload the base model with the chosen adapter, then a streaming chat. A reasoning model's
thinking is shown above its answer in a fold (open while it thinks), as LLaMA-Factory's chat does; a checkbox
switches thinking per message. A picture uploaded beside the message goes with it (webui/chat_messages.py) and shows
as a thumbnail in the history; a text-only model answers that with the engine's one-line error in the status box."""

from __future__ import annotations

import gc
import html

from tuneforge.chat.engines import get_engine
from tuneforge.config import load_config
from tuneforge.config.finetuning_args import ADAPTER_METHODS
from tuneforge.errors import UserError
from tuneforge.webui import form, i18n
from tuneforge.webui.chat_messages import engine_messages, user_turn
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import error_text
from tuneforge.webui.paths import confine_config
from tuneforge.webui.tabs.top import checkpoint_value

MODEL_KEYS = [*form.TOP, "infer_backend", "infer_dtype"]  # the top bar's model settings + how to run it


def chat_config(values: dict, checkpoint) -> dict:
    cfg = {}
    for key in MODEL_KEYS:
        value = form.from_widget(key, values.get(key))
        if value is not None and (value != form.default(key) or key == "model_name_or_path"):
            cfg[key] = value
    checkpoint = checkpoint_value(checkpoint)
    if checkpoint:
        if values.get("finetuning_type") in ADAPTER_METHODS:
            cfg["adapter_name_or_path"] = checkpoint
        else:
            cfg["model_name_or_path"] = checkpoint
    cfg.pop("finetuning_type", None)
    return cfg


def build(ui: UIContext) -> None:
    import gradio as gr  # gradio: only the Web UI loads it

    with gr.Row():
        ui.field("infer_backend")
        ui.field("infer_dtype")
    with gr.Row():
        ui.control("load_model_btn", gr.Button, how="value", variant="primary")
        ui.control("unload_model_btn", gr.Button, how="value")
    ui.control("chat_status", gr.Textbox, value=ui.t("msg_model_unloaded"), interactive=False)
    with gr.Row():
        with gr.Column(scale=4):
            ui.control("chatbot", gr.Chatbot, height=420)
            with gr.Row():
                ui.control("query", gr.Textbox, how="field", lines=2, scale=5)
                # image_mode=None: the file as uploaded (no re-encoding); the engine loads and resizes it
                ui.control(
                    "chat_image",
                    gr.Image,
                    type="filepath",
                    image_mode=None,
                    sources=["upload"],
                    height=150,
                    scale=2,
                    min_width=240,
                )
                ui.control("submit_btn", gr.Button, how="value", variant="primary", scale=1)
            ui.control("clear_btn", gr.Button, how="value")
        with gr.Column(scale=2):
            ui.field("default_system", lines=3)
            ui.field("max_new_tokens")
            for key, top in (("top_p", 1.0), ("temperature", 1.5)):
                ui.control(key, gr.Slider, how="field", minimum=0.01, maximum=top, step=0.01, value=form.default(key))
            ui.field("do_sample")
            ui.control("chat_thinking", gr.Checkbox, how="field", value=True)
    _wire(ui)


def render_reply(reasoning: str | None, answer: str, lang: str, done: bool = False) -> str:
    """The chat bubble: the thinking in a <details> fold above the answer, open until the answer begins. A blank
    line ends the fold's HTML block, so the answer is Markdown as a reply without thinking is (glued to </details>,
    its first paragraph would stay raw text, ** and ``` as typed)."""
    if reasoning is None:
        return answer
    done = done or bool(answer)
    summary = html.escape(i18n.label("chat_thought" if done else "chat_thinking_now", lang))
    return (
        f"<details{'' if done else ' open'}><summary class='tf-thinking-summary'>{summary}</summary>\n\n"
        f"<div class='tf-thinking'>\n{html.escape(reasoning, quote=False)}\n</div>\n</details>\n\n{answer}"
    )


def _wire(ui: UIContext) -> None:
    import gradio as gr

    e = ui.elems
    lang_in = e["ui_lang"]
    model_inputs = [e[k] for k in MODEL_KEYS] + [e["checkpoint_path"]]

    def load(lang, *args):
        values = dict(zip(MODEL_KEYS, args[:-1], strict=True))
        try:
            cfg = chat_config(values, args[-1])
            if not cfg.get("model_name_or_path"):
                raise UserError("model_name_or_path is required", fix="fill in the model path")
            confine_config(cfg, ui.policy)  # the model and adapter folders: read paths, or hub ids
            unload()
            ui.engine = get_engine(load_config(None, cfg))
            ui.engine_path = cfg.get("adapter_name_or_path") or cfg["model_name_or_path"]
        except UserError as exc:
            return error_text(exc)
        return i18n.text("msg_model_loaded", lang, path=ui.engine_path)

    def unload(lang=None):
        ui.engine, ui.engine_path = None, None

        gc.collect()
        return i18n.label("msg_model_unloaded", lang) if lang else None

    e["load_model_btn"].click(load, [lang_in, *model_inputs], e["chat_status"])
    e["unload_model_btn"].click(unload, lang_in, e["chat_status"])

    def respond(lang, query, history, system, max_new_tokens, top_p, temperature, do_sample, thinking, image=None):
        history = list(history or [])
        if ui.engine is None:
            yield history, query, i18n.label("msg_load_first", lang), gr.update()
            return
        asked, shown = user_turn(query, image)
        messages = [*engine_messages(history), asked]
        history = history + [shown, {"role": "assistant", "content": ""}]
        gen = {
            "max_new_tokens": int(max_new_tokens or 0) or None,
            "top_p": top_p,
            "temperature": temperature,
            "do_sample": bool(do_sample),
        }
        parts: dict[str, list[str]] = {"reasoning": [], "content": []}
        try:
            for kind, text in ui.engine.stream_parts(
                messages, system=system or None, enable_thinking=bool(thinking), **gen
            ):
                parts[kind].append(text)
                reasoning = "".join(parts["reasoning"]) if parts["reasoning"] else None
                history[-1]["content"] = render_reply(reasoning, "".join(parts["content"]), lang)
                yield history, "", gr.update(), None  # the picture went with this message
            if parts["reasoning"]:  # the fold closes once the reply is complete
                history[-1]["content"] = render_reply(
                    "".join(parts["reasoning"]), "".join(parts["content"]), lang, True
                )
                yield history, "", gr.update(), None
            if not parts["content"] and not parts["reasoning"]:  # an empty reply: the question is still asked
                yield history, "", gr.update(), None
        except UserError as exc:  # e.g. a picture for a text-only model: the message and picture stay to edit
            yield history[:-2], query, error_text(exc), gr.update()

    chat_inputs = [
        lang_in,
        e["query"],
        e["chatbot"],
        e["default_system"],
        e["max_new_tokens"],
        e["top_p"],
        e["temperature"],
        e["do_sample"],
        e["chat_thinking"],
        e["chat_image"],
    ]
    for trigger in (e["submit_btn"].click, e["query"].submit):
        trigger(respond, chat_inputs, [e["chatbot"], e["query"], e["chat_status"], e["chat_image"]])
    e["clear_btn"].click(lambda: [], None, e["chatbot"])
