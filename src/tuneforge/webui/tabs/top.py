"""The top bar, shared by every tab: language, model, method, checkpoint, quantization, template, RoPE, booster."""

from __future__ import annotations

from tuneforge.config.finetuning_args import ADAPTER_METHODS
from tuneforge.utils.run_folder import find_run_dirs, read_config
from tuneforge.webui import families, i18n
from tuneforge.webui.context import UIContext


def checkpoint_choices(ui: UIContext, model_path: str | None, method: str | None) -> list[str]:
    """Run folders under the saves dir trained from this model with this method (all runs when none match)."""
    runs = []
    for folder in find_run_dirs(ui.saves_dir):
        cfg = read_config(folder)
        if method and cfg.get("finetuning_type", "lora") != method:
            continue
        adapter = method in ADAPTER_METHODS  # a LoRA / OFT run folder holds an adapter, not a model
        if adapter and not (folder / "adapter_config.json").is_file():
            continue
        if not adapter and not (folder / "config.json").is_file():
            continue
        runs.append((cfg.get("model_name_or_path") == model_path, str(folder)))
    matching = [path for same, path in runs if same]
    return matching or [path for _, path in runs]


def build(ui: UIContext) -> None:
    import gradio as gr  # gradio: only the Web UI loads it

    lang = ui.lang
    with gr.Row():
        langs = i18n.languages()
        ui.control("ui_lang", gr.Dropdown, choices=[(name, code) for code, name in langs.items()], value=lang, scale=1)
        ui.control(
            "model_name", gr.Dropdown, how="field", choices=families.family_names(), value=families.CUSTOM, scale=2
        )
        ui.field("model_name_or_path", scale=3)
    with gr.Row():
        ui.field("finetuning_type", scale=1)
        ui.control(
            "checkpoint_path", gr.Dropdown, how="field", choices=[], value=None, allow_custom_value=True, scale=5
        )
        ui.control("refresh_btn", gr.Button, how="value", scale=0, min_width=50)
    with gr.Row():
        for key in ("quantization_bit", "quantization_method", "template", "rope_scaling", "booster"):
            ui.field(key)

    e = ui.elems

    def on_family(name, path, template):
        spec = families.lookup(name)
        if not spec:
            return gr.update(), gr.update()
        return spec["path"], spec.get("template", template)

    e["model_name"].change(
        on_family, [e["model_name"], e["model_name_or_path"], e["template"]], [e["model_name_or_path"], e["template"]]
    )

    def refresh(path, method):
        choices = checkpoint_choices(ui, path, method)
        return gr.update(choices=choices)

    for trigger in (e["model_name_or_path"].change, e["finetuning_type"].change, e["refresh_btn"].click):
        trigger(refresh, [e["model_name_or_path"], e["finetuning_type"]], [e["checkpoint_path"]])


def checkpoint_value(value) -> str | None:
    if isinstance(value, list):
        value = ",".join(v for v in value if v)
    return value or None
