"""Form ⇄ config: which keys the form shows, their defaults and choices (from the schema), and the YAML it writes.

The form writes only the keys that differ from their defaults (plus the keys that name the run), validated by the
same `load_config` that `tuneforge train` uses. Reading a config back (Load arguments, Clone a run) fills the form
and puts keys the form has no field for into "Extra arguments".
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from tuneforge.config import load_config
from tuneforge.config.fields import describe
from tuneforge.config.finetuning_args import ADAPTER_METHODS
from tuneforge.config.grpo_checks import BUILTIN_REWARDS, split_reward_specs
from tuneforge.config.loader import GROUPS
from tuneforge.config.run_config import mask_secrets
from tuneforge.config.stages import STAGES, ui_stage_fields
from tuneforge.config.training import DEFAULTS, _args_class, training_field_help, training_field_types
from tuneforge.config.validate import FREEZE_KEYS, LORA_KEYS, check_stage
from tuneforge.data.registry import load_registry
from tuneforge.data.stage_sets import dataset_fits_stage
from tuneforge.data.template import TEMPLATE_NAMES
from tuneforge.errors import UserError

TOP = [
    "model_name_or_path",
    "finetuning_type",
    "quantization_bit",
    "quantization_method",
    "template",
    "rope_scaling",
    "booster",
]
TRAIN = [
    "stage",
    "dataset_dir",
    "dataset",
    "learning_rate",
    "num_train_epochs",
    "max_grad_norm",
    "max_samples",
    "compute_type",
    "cutoff_len",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "val_size",
    "lr_scheduler_type",
]
# the LoRA box: every LoRA key but the rarely set details (PiSSA iterations, LoRA+ embedding, stacking: Extra args)
LORA = [k for k in LORA_KEYS if k not in ("pissa_iter", "pissa_convert", "loraplus_lr_embedding", "create_new_adapter")]
FREEZE = [*FREEZE_KEYS, "use_llama_pro"]
OFT = ["oft_block_size", "oft_rank", "oft_target", "module_dropout"]  # the OFT box
STAGE_FIELDS = ui_stage_fields()  # the stage box: each stage shows the fields its record lists (config/stages.py)
# GRPO's reward picker: `reward_funcs` is a multi-select of the built-ins, and REWARD_FILE the box beside it for user
# functions ('my_rewards.py:score', comma separated); together they are the one key, built-ins first
REWARD_KEY, REWARD_FILE = "reward_funcs", "reward_file"
OTHER = ["logging_steps", "save_steps", "warmup_steps", "packing", "train_on_prompt", "enable_thinking", "report_to"]
# memory and precision switches LLaMA-Factory users set (second row of "Other settings")
SWITCHES = [
    "disable_gradient_checkpointing",
    "use_reentrant_gc",
    "upcast_layernorm",
    "upcast_lmhead_output",
    "include_effective_tokens_per_second",
    "early_stopping_steps",
]
OPTIM = ["use_muon", "use_adam_mini", "use_galore", "use_apollo", "use_badam"]  # the optimizer box
SWANLAB = ["use_swanlab", "swanlab_project", "swanlab_run_name", "swanlab_workspace", "swanlab_api_key", "swanlab_mode"]
# the multimodal box: a vision-language model's freeze switches and image sizes (LLaMA-Factory's "Multimodal" box)
MULTIMODAL = [
    "freeze_vision_tower",
    "freeze_multi_modal_projector",
    "freeze_language_model",
    "image_max_pixels",
    "image_min_pixels",
]
TRAIN_FORM = (
    TOP + TRAIN + LORA + FREEZE + OFT + STAGE_FIELDS + OTHER + SWITCHES + OPTIM + MULTIMODAL + SWANLAB + ["output_dir"]
)
EVAL = ["task", "task_dir", "n_shot", "lang", "batch_size", "eval_dataset", "max_samples", "save_dir"]
LIST_KEYS = ("dataset", "eval_dataset")  # comma-separated names, shown as a multi-select
EXPORT = ["export_dir", "export_size", "export_quantization_bit", "export_quantization_dataset", "export_device"]
CHAT = ["infer_backend", "infer_dtype", "default_system", "max_new_tokens", "top_p", "temperature", "do_sample"]

ALWAYS = ("model_name_or_path", "stage", "finetuning_type", "dataset", "template", "output_dir")
NONE_WORD = "none"  # how an unset choice shows in a dropdown
OVERRIDES = {  # choices the form offers where the schema has none (HF fields)
    "lr_scheduler_type": [
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "cosine_with_min_lr",
        "warmup_stable_decay",
    ],
    "report_to": ["none", "tensorboard", "wandb", "mlflow", "swanlab"],
    "template": None,  # filled from the template registry
}
TEXT_NUMBERS = ("learning_rate",)  # shown as text so 5e-5 reads as written


@functools.cache
def schema() -> dict[str, dict]:
    """key -> {type, default, choices, help} for every key a form may show."""
    out: dict[str, dict] = {}
    helps = training_field_help()
    for f in dataclasses.fields(_args_class()):
        if f.init:
            default = f.default if f.default is not dataclasses.MISSING else None
            out[f.name] = {
                "type": training_field_types()[f.name],
                "default": DEFAULTS.get(f.name, default),
                "choices": None,
                "help": helps.get(f.name, ""),
            }
    for cls in GROUPS.values():
        for item in describe(cls):
            out[item["name"]] = item
    for key, values in OVERRIDES.items():
        if key in out:
            out[key] = {**out[key], "choices": values}

    out["template"] = {**out["template"], "choices": [None, *TEMPLATE_NAMES]}
    return out


def default(key: str) -> Any:
    value = schema()[key]["default"]
    if key == "report_to" and value in (None, "none"):
        return "none"
    return value


def kind(key: str) -> str:
    """bool, int, float, choice or text: the widget a key gets."""
    spec = schema()[key]
    if spec.get("choices") is not None:
        return "choice"
    tp = str(spec["type"])
    if is_text_number(key):
        return "text"
    if "bool" in tp:
        return "bool"
    if "float" in tp:
        return "float"
    if "int" in tp:
        return "int"
    return "text"


def is_text_number(key: str) -> bool:
    """Numbers shown as text: those that may be empty (a Number box shows 0 for empty) and learning rates."""
    spec = schema()[key]
    tp = str(spec["type"])
    numeric = ("int" in tp or "float" in tp) and "bool" not in tp and "str" not in tp
    return key in TEXT_NUMBERS or (numeric and spec["default"] is None)


def to_widget(key: str, value: Any) -> Any:
    """A config value as the form shows it."""
    k = kind(key)
    if k == "choice":
        return NONE_WORD if value is None else (str(value) if key.endswith("quantization_bit") else value)
    if key in LIST_KEYS:
        return [n.strip() for n in str(value or "").split(",") if n.strip()]
    if key == REWARD_KEY:
        return (reward_picker(value) or ([], ""))[0]
    if k == "text":
        return "" if value is None else str(value)
    return value


def from_widget(key: str, value: Any) -> Any:
    """A form value as the config holds it (empty → None, '4' → 4, [a, b] → 'a,b')."""
    if isinstance(value, str):
        value = value.strip()
    if value in ("", None) or (value == NONE_WORD and key != "report_to"):
        return None
    if key in LIST_KEYS or key == REWARD_KEY:
        return (",".join(value) or None) if isinstance(value, list) else value
    k = kind(key)
    if k == "choice" and key.endswith("quantization_bit"):
        return int(value)
    if is_text_number(key) and isinstance(value, str):
        try:
            number = float(value)
        except ValueError as exc:
            raise UserError(f"'{value}' is not a number", where=key, fix="write a number, e.g. 1e-4") from exc
        return int(number) if "int" in str(schema()[key]["type"]) and number.is_integer() else number
    if k == "float" and key.endswith("_steps") and isinstance(value, float) and value.is_integer():
        return int(value)
    if (
        k in ("int", "float")
        and isinstance(value, float)
        and value.is_integer()
        and "int" in str(schema()[key]["type"])
    ):
        return int(value)
    return value


def reward_picker(value) -> tuple[list[str], str] | None:
    """A reward_funcs value as the picker shows it: (the built-ins picked, the other entries as the file box's text);
    None when the two boxes cannot keep its order (a built-in after a file: reward_weights go by position)."""
    try:
        names = split_reward_specs(value) if isinstance(value, str | list | type(None)) else None
    except UserError:
        names = None
    if names is None:
        return None
    picked = [name for name in names if name in BUILTIN_REWARDS]
    others = [name for name in names if name not in BUILTIN_REWARDS]
    return (picked, ", ".join(others)) if picked + others == names else None


def join_rewards(picked: list[str] | str | None, file_text: str | None) -> str | None:
    """The picker's two boxes as one reward_funcs value: 'accuracy,length,my_rewards.py:score' (None: empty)."""
    names = split_reward_specs(picked) + split_reward_specs(file_text or None)
    return ",".join(names) or None


def stage_fields(stage: str | None) -> tuple[str, ...]:
    """The stage box's fields a stage shows (and keeps): those its record lists."""
    record = STAGES.get(stage or "sft")
    return record.ui_fields if record else ()


def stage_box(stage: str | None) -> tuple[bool, dict[str, bool]]:
    """(whether the stage box shows, {field: whether it shows}) for a stage: exactly its record's fields."""
    shown = stage_fields(stage)
    return bool(shown), {key: key in shown for key in STAGE_FIELDS}


def relevant(key: str, values: dict) -> bool:
    """The method's own fields count only for that method; a stage's fields only for the stages that show them."""
    if key in LORA:
        return values.get("finetuning_type") == "lora"
    if key in FREEZE:
        return values.get("finetuning_type") == "freeze"
    if key in OFT:
        return values.get("finetuning_type") == "oft"
    if key in SWANLAB[1:]:  # the project, mode, ... only mean something when SwanLab is on
        return bool(values.get("use_swanlab"))
    if key in STAGE_FIELDS:
        return key in stage_fields(values.get("stage"))
    return True


def build_config(
    values: dict[str, Any], keys: list[str] = TRAIN_FORM, extra: str = "", checkpoint: str | None = None
) -> dict[str, Any]:
    """The flat config a form describes: the run's naming keys plus every value that differs from its default."""
    out: dict[str, Any] = {}
    if REWARD_FILE in values:  # the reward picker's two boxes are one key
        values = {**values, REWARD_KEY: join_rewards(values.get(REWARD_KEY), values[REWARD_FILE])}
    for key in keys:
        if key not in values or not relevant(key, values):
            continue
        value = from_widget(key, values[key])
        if value is False and default(key) is None:  # an unticked box for an unset (auto) flag: leave it unset
            value = None
        if key in ALWAYS and value is not None or value != default(key):
            out[key] = value
    if checkpoint:
        if values.get("finetuning_type") in ADAPTER_METHODS:
            out["adapter_name_or_path"] = checkpoint
        else:
            out["model_name_or_path"] = checkpoint
    out.update(parse_extra(extra))
    return out


def parse_extra(extra: str | None) -> dict[str, Any]:
    if not extra or not extra.strip():
        return {}
    try:
        data = yaml.safe_load(extra)
    except yaml.YAMLError as exc:
        raise UserError(
            f"extra arguments are not valid YAML: {getattr(exc, 'problem', exc)}",
            where="extra arguments",
            fix="write one key: value per line",
        ) from exc
    if not isinstance(data, dict):
        raise UserError("extra arguments must be key: value lines", where="extra arguments", fix="e.g. max_steps: 100")
    return data


def split_config(cfg: dict[str, Any], keys: list[str] = TRAIN_FORM) -> tuple[dict[str, Any], str, str | None]:
    """A config read back into (form values, extra-arguments YAML, checkpoint path). With the reward picker among
    the keys, the values hold its file box too (REWARD_FILE)."""
    cfg = dict(cfg)
    checkpoint = cfg.pop("adapter_name_or_path", None)
    picked = reward_picker(cfg.get(REWARD_KEY)) if REWARD_KEY in keys else None
    values = {key: to_widget(key, cfg.pop(key, default(key))) for key in keys if key != REWARD_KEY or picked}
    if REWARD_KEY in keys:  # an order the picker cannot show stays as written, in Extra args
        values[REWARD_KEY], values[REWARD_FILE] = picked or ([], "")
    cfg.pop("output_dir", None) if "output_dir" in keys else None
    extra = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True) if cfg else ""
    return values, extra, checkpoint


def validate(cfg: dict[str, Any], stage_check: bool = True):
    """The config as `tuneforge train` will load it; a UserError when it would refuse it."""
    loaded = load_config(None, cfg)
    if stage_check:
        check_stage(loaded)
    return loaded


def to_yaml(cfg: dict[str, Any]) -> str:
    """The YAML a run keeps; secrets masked (runs read the token from HF_TOKEN or the hub login)."""
    return yaml.safe_dump(mask_secrets(cfg), sort_keys=False, allow_unicode=True)


def command_line(kind_: str, config_path: str | Path) -> str:
    return shlex.join([sys.executable, "-m", "tuneforge", kind_, str(config_path)])


def datasets_for_stage(dataset_dir: str, stage: str) -> list[str]:
    """Names in dataset_info.json with the stage's data kind (data/stage_sets.py dataset_fits_stage)."""
    if stage not in STAGES:
        return []
    try:
        registry = load_registry(dataset_dir)
    except UserError:
        return []
    return [name for name, attr in registry.items() if dataset_fits_stage(stage, attr)]
