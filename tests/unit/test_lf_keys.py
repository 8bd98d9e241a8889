"""LLaMA-Factory 0.9.5 parity of the schema: every field of its argument dataclasses (lf_0_9_5_fields.txt) is a key
we know and document, and each either takes effect (a named test shows the effect) or is refused in one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing
from pathlib import Path

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.config.aliases import apply_aliases
from tuneforge.config.fields import choices
from tuneforge.config.loader import GROUPS, known_keys
from tuneforge.config.multimodal_args import VIDEO_KEYS
from tuneforge.config.refusals import field_default
from tuneforge.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
LF_FIELDS = [
    line.split()[1]
    for line in (Path(__file__).parent / "lf_0_9_5_fields.txt").read_text().splitlines()
    if line and not line.startswith("#")
]

# LF keys that were unknown before issue 15 and now take effect -> the test that shows the effect.
CHECKPOINTING = "tests/integration/test_checkpointing_keys.py"
HERE = "tests/unit/test_lf_keys.py"
LOADING = "tests/integration/test_model_loading_keys.py"
NEW_TOKENS = "tests/integration/test_new_tokens.py"
OFT = "tests/integration/test_oft.py"
LLAMA_PRO = "tests/integration/test_llama_pro.py"
SFT_LOSSES = "tests/integration/test_sft_losses.py"
RAY = "tests/integration/test_ray.py"
RAY_KEYS = "tests/unit/test_ray_keys.py"
DPO_TERMS = "tests/integration/test_dpo_lf_terms.py"
RL_KEYS = "tests/integration/test_rl_lf_keys.py"
SWANLAB = "tests/integration/test_swanlab_keys.py"
PROFILER = "tests/integration/test_profiler_keys.py"
MODELSCOPE = "tests/integration/test_modelscope_hub.py"
HUB_PUSH = "tests/integration/test_export_hub_push.py"
OPTIMIZERS = "tests/integration/test_optimizer_keys.py"
TRAINER_KEYS = "tests/integration/test_trainer_callback_keys.py"
HONEST_DATA = "tests/integration/test_honest_data_keys.py"
TEMPLATE_OPTIONS = "tests/unit/test_template_options.py"
MEDIA_DATA = "tests/unit/test_media_data.py"
MEDIA_LOAD = "tests/unit/test_media_load.py"
VISION_TRAIN = "tests/integration/test_vision_train.py"
EFFECT_TESTS = {
    # optimizers and trainer callbacks (tests/integration/test_optimizer_keys.py, test_trainer_callback_keys.py)
    "use_muon": (OPTIMIZERS, "test_muon_trains_the_hidden_matrices_and_adamw_the_rest"),
    "use_adam_mini": (OPTIMIZERS, "test_adam_mini_trains"),
    **dict.fromkeys(
        ("apollo_proj_type", "apollo_scale_front"),
        (OPTIMIZERS, "test_apollo_proj_type_and_scale_front_reach_the_apollo_group"),
    ),
    "early_stopping_steps": (TRAINER_KEYS, "test_early_stopping_stops_when_the_metric_stops_improving"),
    "include_effective_tokens_per_second": (
        TRAINER_KEYS,
        "test_effective_tokens_per_second_is_tokens_times_epochs_over_runtime",
    ),
    "eval_num_beams": (TRAINER_KEYS, "test_eval_num_beams_sets_the_beams_of_predict"),
    # tracking and hubs (tests/integration/test_swanlab_keys.py, test_profiler_keys.py, test_modelscope_hub.py,
    # test_export_hub_push.py)
    **dict.fromkeys(
        ("use_swanlab", "swanlab_project", "swanlab_workspace", "swanlab_run_name", "swanlab_logdir")
        + ("swanlab_lark_webhook_url", "swanlab_lark_secret"),
        (SWANLAB, "test_swanlab_offline_run_logs_the_loss_and_notifies_lark"),
    ),
    "swanlab_mode": (SWANLAB, "test_swanlab_offline_run_logs_the_loss_and_notifies_lark"),
    "swanlab_api_key": (SWANLAB, "test_swanlab_api_key_logs_in_for_cloud_mode_only"),
    "enable_torch_profiler": (PROFILER, "test_profiler_traces_the_active_steps_of_a_training_run"),
    "profiler_output_dir": (PROFILER, "test_profiler_traces_the_active_steps_of_a_training_run"),
    **dict.fromkeys(
        ("profiler_wait_steps", "profiler_warmup_steps", "profiler_active_steps", "profiler_repeat")
        + ("profiler_record_shapes", "profiler_profile_memory", "profiler_with_stack"),
        (PROFILER, "test_profiler_schedule_repeats_and_flags_reach_the_trace"),
    ),
    "profile_modules": (PROFILER, "test_profile_modules_times_forward_and_backward_of_matching_modules"),
    "ms_hub_token": (MODELSCOPE, "test_ms_hub_token_and_revision_reach_snapshot_download"),
    "export_hub_model_id": (HUB_PUSH, "test_push_uploads_the_export_files_with_the_token"),
    # preference / RL (tests/integration/test_dpo_lf_terms.py, test_rl_lf_keys.py)
    "pref_bco_weight": (DPO_TERMS, "test_pref_bco_weight_mixes_lf_bco_loss"),
    "ld_alpha": (DPO_TERMS, "test_ld_alpha_weights_the_policy_tail"),
    "ref_model_quantization_bit": (RL_KEYS, "test_ref_model_quantization_bit_loads_a_4bit_reference_and_dpo_trains"),
    "reward_model_quantization_bit": (RL_KEYS, "test_reward_model_quantization_bit_loads_an_8bit_reward_model"),
    "reward_model_type": (RL_KEYS, "test_ppo_with_lora_reward_uses_the_adapter_scores"),
    # Ray (tests/integration/test_ray.py: 2 Ray workers vs 2 torchrun processes; tests/unit/test_ray_keys.py)
    "ray_num_workers": (RAY, "test_two_ray_workers_match_two_torchrun_processes_and_leave_nothing_running"),
    "ray_init_kwargs": (RAY, "test_two_ray_workers_match_two_torchrun_processes_and_leave_nothing_running"),
    "master_addr": (RAY_KEYS, "test_rank_zero_runs_on_master_addr_and_ranks_count_per_node"),
    "master_port": (RAY, "test_two_ray_workers_match_two_torchrun_processes_and_leave_nothing_running"),
    "disable_gradient_checkpointing": (CHECKPOINTING, "test_disable_gradient_checkpointing_turns_it_off"),
    "use_reentrant_gc": (CHECKPOINTING, "test_use_reentrant_gc_reaches_the_trainer_and_trains"),
    "pure_bf16": (HERE, "test_lf_aliases_take_effect"),
    "block_diag_attn": (HERE, "test_lf_aliases_take_effect"),
    # model loading (tests/integration/test_model_loading_keys.py, test_new_tokens.py)
    "upcast_layernorm": (LOADING, "test_upcast_layernorm_keeps_norms_fp32_and_trains"),
    "upcast_lmhead_output": (LOADING, "test_upcast_lmhead_output_gives_fp32_logits"),
    "moe_aux_loss_coef": (LOADING, "test_moe_aux_loss_coef_adds_the_router_loss"),
    "use_kv_cache": (LOADING, "test_use_kv_cache_switches_generation_cache"),
    "model_max_length": (LOADING, "test_model_max_length_is_saved_with_the_run"),
    "adapter_folder": (LOADING, "test_adapter_folder_loads_the_adapter_from_its_sub_folder"),
    "quantization_device_map": (LOADING, "test_quantization_device_map_and_offload_folder"),
    "offload_folder": (LOADING, "test_quantization_device_map_and_offload_folder"),
    "add_tokens": (NEW_TOKENS, "test_new_tokens_encode_to_single_ids_and_grow_the_embeddings"),
    "add_special_tokens": (NEW_TOKENS, "test_new_tokens_encode_to_single_ids_and_grow_the_embeddings"),
    "new_special_tokens_config": (NEW_TOKENS, "test_lora_run_trains_new_tokens_and_loads_back_in_plain_peft"),
    "init_special_tokens": (NEW_TOKENS, "test_desc_init_is_the_mean_of_the_description_tokens"),
    "resize_vocab": (NEW_TOKENS, "test_resize_vocab_alone_trains_the_embeddings_with_lora"),
    # OFT and LLaMA Pro (tests/integration/test_oft.py, test_llama_pro.py)
    "oft_rank": (OFT, "test_oft_keys_shape_the_adapter"),
    "oft_block_size": (OFT, "test_oft_keys_shape_the_adapter"),
    "oft_target": (OFT, "test_oft_keys_shape_the_adapter"),
    "module_dropout": (OFT, "test_module_dropout_sets_random_blocks_to_identity_while_training"),
    "use_llama_pro": (LLAMA_PRO, "test_use_llama_pro_trains_exactly_the_expanded_blocks"),
    # SFT loss variants (tests/integration/test_sft_losses.py)
    "use_dft_loss": (SFT_LOSSES, "test_dft_loss_matches_hand_computation"),
    "use_asft_loss": (SFT_LOSSES, "test_trainer_runs_asft_with_the_lora_base_as_anchor_on_slim_batches"),
    "asft_alpha": (SFT_LOSSES, "test_asft_loss_matches_hand_computation"),
    "use_eaft_loss": (SFT_LOSSES, "test_training_with_each_loss_makes_it_fall"),
    "eaft_alpha": (SFT_LOSSES, "test_eaft_loss_matches_hand_computation"),
    # issue 16's template options (tests/unit/test_template_options.py)
    "enable_thinking": (TEMPLATE_OPTIONS, "test_enable_thinking_false_drops_thinking_and_prompts_the_empty_thought"),
    "preserve_thinking": (TEMPLATE_OPTIONS, "test_preserve_thinking_keeps_earlier_thoughts"),
    "tool_format": (TEMPLATE_OPTIONS, "test_tool_format_overrides_the_templates"),
    # issue 16's honest config (tests/integration/test_honest_data_keys.py)
    "eval_on_each_dataset": (HONEST_DATA, "test_eval_on_each_dataset_logs_each_sets_loss"),
    "ignore_pad_token_for_loss": (HONEST_DATA, "test_ignore_pad_token_for_loss_false_counts_the_padding_in_the_loss"),
    "print_param_status": (HONEST_DATA, "test_print_param_status_prints_every_parameter_at_load"),
    # issue 18's images in the data (data/media.py) and the vision-language models' switches (model/vision_parts.py)
    "media_dir": (MEDIA_DATA, "test_media_dir_is_where_relative_paths_are_read_from"),
    "image_max_pixels": (MEDIA_LOAD, "test_load_images_applies_image_max_and_min_pixels_from_the_config"),
    "image_min_pixels": (MEDIA_LOAD, "test_load_images_applies_image_max_and_min_pixels_from_the_config"),
    **dict.fromkeys(
        ("freeze_vision_tower", "freeze_multi_modal_projector", "freeze_language_model"),
        (VISION_TRAIN, "test_freeze_switches_decide_which_parts_full_tuning_changes"),
    ),
    **dict.fromkeys(VIDEO_KEYS, (VISION_TRAIN, "test_video_keys_warn_and_video_rows_stop_in_one_line")),
}


def schema_fields() -> dict[str, dataclasses.Field]:
    """key -> field for every key of our own argument groups."""
    return {f.name: f for cls in GROUPS.values() for f in dataclasses.fields(cls)}


def refused(key: str):
    f = schema_fields().get(key)
    return f.metadata.get("refused") if f is not None else None


def test_the_list_is_lf_0_9_5():
    assert len(LF_FIELDS) == 241 and len(set(LF_FIELDS)) == 241


@pytest.mark.parametrize("key", LF_FIELDS)
def test_every_lf_key_is_known_and_documented(key):
    group, _ = known_keys()[key]
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    # the training group (Hugging Face's TrainingArguments, e.g. LF's `seed`) is described in the intro by name
    assert f"| `{key}` |" in docs or (group == "training" and f"`{key}`" in docs), f"{key} not in docs/config.md"


def test_docs_config_is_generated_from_the_schema():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == module.render(), (
        "run scripts/gen_config_docs.py"
    )


def other_value(key: str) -> typing.Any:
    """A value of the key's type that differs from its default: what a user who means it would write."""
    f = schema_fields()[key]
    owner = next(cls for cls in GROUPS.values() if key in {x.name for x in dataclasses.fields(cls)})
    tp, default = typing.get_type_hints(owner)[key], field_default(f)
    options = choices(tp)
    if options:
        return next(c for c in options if c != default and c is not None)
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    text = str(tp)
    return True if "bool" in text else 2 if "int" in text else 0.5 if "float" in text else "x"


REFUSED = sorted(k for k in set(LF_FIELDS) if refused(k))


@pytest.mark.parametrize("key", REFUSED)
def test_a_refused_key_stops_in_one_line_saying_why(key, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model_name_or_path": "m", key: other_value(key)}, sort_keys=False))
    why, fix = refused(key)
    with pytest.raises(UserError) as caught:
        load_config(cfg)
    assert caught.value.where == f"{cfg}:2 ({key})"
    assert why in str(caught.value) and fix in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("key", REFUSED)
def test_a_refused_key_at_its_default_is_not_refused(key):
    """LF's example configs spell out defaults (freeze_vision_tower: true, ...): those must not stop a run."""
    why, _ = refused(key)
    try:
        load_config(None, {"model_name_or_path": "m", key: field_default(schema_fields()[key])})
    except UserError as exc:  # another rule may still apply (e.g. apollo_* without use_apollo)
        assert why not in str(exc)


@pytest.mark.parametrize("key", sorted(EFFECT_TESTS))
def test_each_implemented_key_names_a_test_of_its_effect(key):
    assert key in LF_FIELDS and not refused(key)
    path, name = EFFECT_TESTS[key]
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), f"{path}::{name}"


def test_every_new_lf_key_is_implemented_or_refused():
    """The keys LF has beyond the Hugging Face fields and those TuneForge had before issue 15: each one is in
    EFFECT_TESTS or refused, never accepted and ignored."""
    text = (Path(__file__).parent / "lf_keys_known_before.txt").read_text()
    before = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    new = [k for k in LF_FIELDS if k not in before]
    assert [k for k in new if not refused(k) and k not in EFFECT_TESTS] == []


def test_lf_aliases_take_effect():
    cfg = load_config(None, {"model_name_or_path": "m", "pure_bf16": True})
    assert cfg.model.compute_type == "pure_bf16"
    cfg = load_config(None, {"model_name_or_path": "m", "block_diag_attn": True})
    assert cfg.data.neat_packing is True
    assert load_config(None, {"model_name_or_path": "m", "pure_bf16": False}).model.compute_type == "auto"
    # transformers 4's FSDP key (LF's fp8 example writes it) moves into fsdp_config
    cfg = load_config(None, {"model_name_or_path": "m", "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer"})
    assert cfg.training["fsdp_config"] == {"transformer_layer_cls_to_wrap": "LlamaDecoderLayer"}
    # LF writes fsdp as a list; transformers 5 reads the options as one spaced string (FSDP itself needs CUDA)
    flat = {"fsdp": ["full_shard", "auto_wrap"]}
    apply_aliases(flat, str)
    assert flat == {"fsdp": "full_shard auto_wrap"}
