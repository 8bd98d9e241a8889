"""The Train tab: stage, data (with the label-mask preview), hyper-parameters, the method's own fields, and the
run monitor (progress with ETA, log, live loss curve; for GRPO also reward / KL / length curves and the latest
sample completions) that re-attaches after a page refresh."""

from __future__ import annotations

import yaml

from tuneforge.config.loader import read_config_file
from tuneforge.errors import UserError
from tuneforge.train.preview import preview_blocks
from tuneforge.utils.run_folder import config_path
from tuneforge.utils.run_folder import read_config as read_run_config
from tuneforge.webui import form, i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.estimate import estimate_text
from tuneforge.webui.grpo_view import follow_grpo, grpo_panel
from tuneforge.webui.jobs_view import (
    abort_job,
    current_job,
    draw_curves,
    error_text,
    job_choices,
    loss_chart,
    monitor,
    queue_run,
)
from tuneforge.webui.paths import confine_config
from tuneforge.webui.preview_images import preview_blocks_html
from tuneforge.webui.tabs.top import checkpoint_value

FORM_KEYS = form.TRAIN_FORM + [form.REWARD_FILE, "checkpoint_path", "extra_args"]


def values_of(args) -> dict:
    return dict(zip(FORM_KEYS, args, strict=True))


def config_from(ui: UIContext, values: dict) -> dict:
    cfg = form.build_config(
        values, form.TRAIN_FORM, values.get("extra_args") or "", checkpoint_value(values.get("checkpoint_path"))
    )
    if not cfg.get("output_dir"):
        cfg["output_dir"] = ui.new_output_dir(
            values.get("model_name_or_path"), values.get("finetuning_type"), values.get("stage") or "sft"
        )
    return cfg


def fill_form(ui: UIContext, cfg: dict, keep_output_dir: bool = True) -> list:
    """Updates for FORM_KEYS from a config (Load arguments, Clone a run)."""
    import gradio as gr

    values, extra, checkpoint = form.split_config(cfg, form.TRAIN_FORM)
    if keep_output_dir:
        values["output_dir"] = cfg.get("output_dir", "")
    else:
        values["output_dir"] = ui.new_output_dir(
            cfg.get("model_name_or_path"), cfg.get("finetuning_type", "lora"), cfg.get("stage", "sft")
        )
    updates = []
    for key in form.TRAIN_FORM:
        if key == "dataset":
            names, _ = ui.datasets(cfg.get("dataset_dir"), cfg.get("stage", "sft"))  # none from an outside folder
            updates.append(gr.update(choices=sorted(set(names) | set(values[key])), value=values[key]))
        else:
            updates.append(gr.update(value=values[key]))
    updates.append(gr.update(value=values[form.REWARD_FILE]))
    updates.append(gr.update(value=checkpoint, choices=[checkpoint] if checkpoint else []))
    updates.append(gr.update(value=extra))
    return updates


def build(ui: UIContext) -> None:
    import gradio as gr

    with gr.Row():
        ui.field("stage", scale=1)
        ui.field("dataset_dir", value=ui.data_dir, scale=1)
        ui.field("dataset", scale=4)
        ui.control("preview_btn", gr.Button, how="value", scale=1)
    with gr.Row():
        for key in ("learning_rate", "num_train_epochs", "max_grad_norm", "max_samples", "compute_type"):
            ui.field(key)
    with gr.Row():
        for key in (
            "cutoff_len",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "val_size",
            "lr_scheduler_type",
        ):
            ui.field(key)
    with ui.control("acc_method", gr.Accordion, open=True):
        with gr.Group(visible=True) as lora_box, gr.Row():
            for key in form.LORA:
                ui.field(key, min_width=120)
        with gr.Group(visible=False) as freeze_box, gr.Row():
            for key in form.FREEZE:
                ui.field(key)
        with gr.Group(visible=False) as oft_box, gr.Row():
            for key in form.OFT:
                ui.field(key)
    # the stage box: every stage's own fields, each shown for the stages whose record lists it (config/stages.py)
    box_shown, fields_shown = form.stage_box("sft")
    stage_box = ui.control("acc_pref", gr.Accordion, open=True, visible=box_shown)
    with stage_box, gr.Row():
        for key in form.STAGE_FIELDS:
            ui.field(key, visible=fields_shown[key], **({"scale": 2} if key == form.REWARD_KEY else {}))
            if key == form.REWARD_KEY:  # the reward picker's second box: user functions from files
                ui.control(form.REWARD_FILE, gr.Textbox, how="field", visible=fields_shown[key], scale=2)
    with ui.control("acc_other", gr.Accordion, open=False):
        with gr.Row():
            for key in form.OTHER:
                ui.field(key)
        with gr.Row():
            for key in form.SWITCHES:
                ui.field(key)
        ui.control("extra_args", gr.Textbox, how="field", lines=3)
    with ui.control("acc_optim", gr.Accordion, open=False), gr.Row():
        for key in form.OPTIM:
            ui.field(key)
    with ui.control("acc_mm", gr.Accordion, open=False), gr.Row():
        for key in form.MULTIMODAL:
            ui.field(key)
    with ui.control("acc_swanlab", gr.Accordion, open=False), gr.Row():
        for key in form.SWANLAB:
            ui.field(key, **({"type": "password"} if key == "swanlab_api_key" else {}))
    ui.control("preview_box", gr.HTML, show_label=True, container=True, visible=False)
    with gr.Row():
        ui.field("output_dir", scale=3)
        ui.control("args_file", gr.Textbox, how="field", value=str(ui.saves_dir / "train_args.yaml"), scale=2)
    with gr.Row():
        for key, variant in (
            ("cmd_btn", "secondary"),
            ("save_btn", "secondary"),
            ("load_btn", "secondary"),
            ("start_btn", "primary"),
            ("abort_btn", "stop"),
        ):
            ui.control(key, gr.Button, how="value", variant=variant)
    with gr.Row():
        ui.control("status_box", gr.Textbox, interactive=False, scale=3)
        ui.control("memory_box", gr.Textbox, interactive=False, scale=2)
    ui.control("command_box", gr.Code, language="yaml", visible=False)
    with gr.Row():
        with gr.Column(scale=3):
            ui.control("job_select", gr.Dropdown, how="field", choices=[], value=None)
            ui.control("progress", gr.HTML, how="none")
            ui.control("log_box", gr.Textbox, lines=10, max_lines=10, autoscroll=True, interactive=False)
        with gr.Column(scale=2):
            loss_chart(ui, "loss_plot")
    grpo_panel(ui)  # reward, KL, completion length and sample completions: shown for a GRPO run
    _wire(ui, (lora_box, freeze_box, oft_box), stage_box)


def _wire(ui: UIContext, method_boxes, stage_box) -> None:
    import gradio as gr

    e = ui.elems
    inputs = [e[k] for k in FORM_KEYS]
    lang_in = e["ui_lang"]

    def on_method(method):
        return [gr.update(visible=method == shown) for shown in ("lora", "freeze", "oft")]

    e["finetuning_type"].change(on_method, e["finetuning_type"], list(method_boxes))

    def on_stage(stage, dataset_dir, chosen):
        names, why = ui.datasets(dataset_dir, stage)  # an outside folder lists nothing, and the status says why
        kept = [n for n in (chosen or []) if n in names]
        status = why or gr.update()
        box_shown, fields_shown = form.stage_box(stage)
        shown = [gr.update(visible=fields_shown[key]) for key in form.STAGE_FIELDS]
        reward_file = gr.update(visible=fields_shown.get(form.REWARD_KEY, False))
        return gr.update(choices=names, value=kept), gr.update(visible=box_shown), *shown, reward_file, status

    stage_fields = [e[key] for key in form.STAGE_FIELDS]
    stage_outputs = [e["dataset"], stage_box, *stage_fields, e[form.REWARD_FILE], e["status_box"]]
    for trigger in (e["stage"].change, e["dataset_dir"].change):
        trigger(on_stage, [e["stage"], e["dataset_dir"], e["dataset"]], stage_outputs)

    def on_preview(lang, *args):
        try:
            raw = config_from(ui, values_of(args))
            confine_config(raw, ui.policy)  # the preview reads the dataset and the tokenizer
            cfg = form.validate(raw, stage_check=False)
            html = preview_blocks_html(preview_blocks(cfg, count=2, color=False))  # images: thumbnails beside
            return gr.update(value=html, visible=True), ""
        except UserError as exc:
            return gr.update(visible=False), error_text(exc)

    e["preview_btn"].click(on_preview, [lang_in, *inputs], [e["preview_box"], e["status_box"]])

    def on_command(lang, *args):
        try:
            cfg = config_from(ui, values_of(args))
            confine_config(cfg, ui.policy)  # the command shown is one Start would queue
            form.validate(cfg)
        except UserError as exc:
            return gr.update(), error_text(exc), "", gr.update()
        path = config_path(cfg["output_dir"])
        text = f"# {form.command_line('train', path)}\n# {path}:\n{form.to_yaml(cfg)}"
        # the output dir shown is the one Start will use
        return gr.update(value=text, visible=True), "", estimate_text(cfg, lang), cfg["output_dir"]

    e["cmd_btn"].click(
        on_command, [lang_in, *inputs], [e["command_box"], e["status_box"], e["memory_box"], e["output_dir"]]
    )

    def on_save(lang, path, *args):
        try:
            target = ui.policy.confine_write(path, "args_file")
            if target is None or target.suffix not in (".yaml", ".yml"):
                fix = f"name it e.g. {ui.saves_dir / 'train_args.yaml'}"
                raise UserError(f"'{path}' is not a .yaml file", where="args_file", fix=fix)
            cfg = config_from(ui, values_of(args))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(form.to_yaml(cfg), encoding="utf-8")
        except (UserError, OSError) as exc:
            return error_text(exc) if isinstance(exc, UserError) else f"⚠ {exc}"
        return i18n.text("msg_saved", lang, path=path)

    e["save_btn"].click(on_save, [lang_in, e["args_file"], *inputs], e["status_box"])

    def on_load(lang, path):
        try:
            cfg, _ = read_config_file(ui.policy.confine_read(path, "args_file") or "")
        except UserError as exc:
            return [gr.update()] * len(FORM_KEYS) + [error_text(exc)]
        return fill_form(ui, cfg) + [i18n.text("msg_loaded", lang, path=path)]

    e["load_btn"].click(on_load, [lang_in, e["args_file"]], [*inputs, e["status_box"]])

    def on_start(lang, *args):
        try:
            cfg = config_from(ui, values_of(args))
            job = queue_run(ui, "train", cfg, cfg["output_dir"])
        except UserError as exc:
            return gr.update(), error_text(exc), gr.update(), gr.update()
        key = "msg_started" if job.status == "running" else "msg_queued"
        return (
            gr.update(choices=job_choices(ui, lang), value=job.id),
            i18n.text(key, lang, id=job.id, dir=job.run_dir),
            cfg["output_dir"],
            estimate_text(cfg, lang),
        )

    e["start_btn"].click(
        on_start, [lang_in, *inputs], [e["job_select"], e["status_box"], e["output_dir"], e["memory_box"]]
    )

    e["abort_btn"].click(lambda lang, job_id: abort_job(ui, job_id, lang), [lang_in, e["job_select"]], e["status_box"])

    timer = gr.Timer(1.5)
    draw_curves(
        [timer.tick, e["job_select"].change],
        lambda job_id, lang: monitor(ui, job_id, lang),
        [e["job_select"], lang_in],
        [e["progress"], e["log_box"], e["loss_plot"]],
        show_progress="hidden",
        queue=False,
    )
    follow_grpo(ui, [timer.tick, e["job_select"].change], e["job_select"], lang_in, show_progress="hidden", queue=False)
    e["train_timer"] = timer


def on_page_load(ui: UIContext, lang: str) -> list:
    """After a refresh: follow the running (or newest) run again, and fill the form with its settings (a new output
    dir, so Start makes a new run; the Runs tab resumes the old one). Updates for [job_select, *FORM_KEYS]."""
    import gradio as gr

    job = current_job(ui)
    select = gr.update(choices=job_choices(ui, lang), value=job.id if job else None)
    cfg = read_run_config(job.run_dir) if job else {}
    if not cfg:
        return [select] + [gr.update()] * len(FORM_KEYS)
    cfg.pop("resume_from_checkpoint", None)
    return [select] + fill_form(ui, cfg, keep_output_dir=False)


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
