"""`tuneforge estimate` for vision-language models: the vision tower, projector and language model counted exactly,
trainable parameters as the freeze switches and LoRA targets make them, and each sample's image tokens."""

from __future__ import annotations

import itertools

import pytest

from tuneforge.config import load_config
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.data.image_tokens import image_token_counts
from tuneforge.data.template import get_template
from tuneforge.errors import UserError
from tuneforge.model.adapters import prepare_trainable
from tuneforge.model.estimate import estimate_memory, format_estimate
from tuneforge.model.vision_parts import freeze_parts, lora_module_names, vision_parts
from tuneforge.model.vlm_processor import load_processor

ARCHS = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "gemma3", "llava_next", "glm4v"]
SWITCHES = ("freeze_vision_tower", "freeze_multi_modal_projector", "freeze_language_model")


def run_config(folder, arch: str, switches: dict | None = None, **keys):
    base = {"model_name_or_path": str(folder), "template": arch, "cutoff_len": 128, "finetuning_type": "lora"}
    cfg = load_config(None, {**base, **keys})
    for name, value in (switches or {}).items():  # set on the parsed config: the keys may still be refused there
        setattr(cfg.multimodal, name, value)
    return cfg


def load(folder):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(folder)


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_counts_match_the_loaded_model_by_part(tiny_vlm_dir, arch):
    folder = tiny_vlm_dir(arch)
    model = load(folder)
    est = estimate_memory(run_config(folder, arch), cuda=False)
    assert est["params"] == sum(p.numel() for p in model.parameters())
    parts = vision_parts(model.config.model_type)
    named = dict(model.named_parameters())
    assert est["vision_params"] == sum(p.numel() for n, p in named.items() if n.startswith(parts.vision)) > 0
    assert est["projector_params"] == sum(p.numel() for n, p in named.items() if n.startswith(parts.projector)) > 0
    assert est["language_params"] == sum(p.numel() for n, p in named.items() if n.startswith(parts.language))
    assert "vision tower" in format_estimate(est) and "images: 1 image/sample" in format_estimate(est)


@pytest.mark.parametrize("arch", ["qwen2_vl", "llava"])
def test_full_trainable_follows_the_freeze_switches(tiny_vlm_dir, arch):
    folder = tiny_vlm_dir(arch)
    for values in itertools.product((True, False), repeat=3):
        switches = dict(zip(SWITCHES, values, strict=True))
        model = load(folder)
        try:
            freeze_parts(model, MultimodalArguments(**switches))
            expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        except UserError:  # all three frozen: training refuses; the estimate says 0 trained
            expected = 0
        est = estimate_memory(run_config(folder, arch, switches, finetuning_type="full"), cuda=False)
        assert est["trainable_params"] == expected, switches


@pytest.mark.parametrize("arch", ["qwen2_vl", "llava"])
def test_freeze_tuning_trainable_matches_prepare_trainable(tiny_vlm_dir, arch):
    folder = tiny_vlm_dir(arch)
    for k, switches in ((1, {}), (-1, {"freeze_multi_modal_projector": False}), (2, {"freeze_vision_tower": False})):
        cfg = run_config(folder, arch, switches, finetuning_type="freeze", freeze_trainable_layers=k)
        model = prepare_trainable(load(folder), cfg.finetuning, [], cfg.multimodal)
        expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert estimate_memory(cfg, cuda=False)["trainable_params"] == expected, (k, switches)


@pytest.mark.parametrize("arch", ["qwen2_vl", "gemma3"])
def test_lora_trainable_matches_peft_on_the_unfrozen_parts(tiny_vlm_dir, arch):
    from peft import LoraConfig, get_peft_model

    folder = tiny_vlm_dir(arch)
    for switches in ({}, {"freeze_vision_tower": False}, {"freeze_vision_tower": False, "freeze_language_model": True}):
        mm = MultimodalArguments(**switches)
        model = load(folder)
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=lora_module_names(model, mm)))
        expected = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        est = estimate_memory(run_config(folder, arch, switches, lora_rank=4), cuda=False)
        assert est["trainable_params"] == expected, switches


def test_image_tokens_are_the_processors_and_grow_with_image_max_pixels(tiny_vlm_dir):
    from PIL import Image

    folder = tiny_vlm_dir("qwen2_vl")
    processor = load_processor(folder)
    plugin = get_template("qwen2_vl", processor.tokenizer).mm_plugin
    small, large = (
        estimate_memory(run_config(folder, "qwen2_vl", image_max_pixels=n), cuda=False) for n in (3136, 12544)
    )
    # a 112 x 112 picture (= 12544 pixels) becomes 16 tokens in Qwen2-VL's processor; 56 x 56 becomes 4
    assert [small["image_tokens"], large["image_tokens"]] == image_token_counts(
        plugin, processor, [Image.new("RGB", (56, 56)), Image.new("RGB", (112, 112))]
    )
    assert (small["seq_len"], large["seq_len"]) == (128 + 4, 128 + 16)
    assert small["activations"] < large["activations"]
    # above the processor's own largest picture (50176 pixels here) an image does not grow
    capped = estimate_memory(run_config(folder, "qwen2_vl", image_max_pixels=10**7), cuda=False)
    assert capped["image_tokens"] == 64 and "the processor's max_pixels=50176" in capped["images"]


@pytest.mark.parametrize("arch", ["llava", "gemma3"])
def test_fixed_size_families_count_the_processors_tokens(tiny_vlm_dir, arch):
    from PIL import Image

    folder = tiny_vlm_dir(arch)
    processor = load_processor(folder)
    plugin = get_template(arch, processor.tokenizer).mm_plugin
    est = estimate_memory(run_config(folder, arch, image_max_pixels=10**6), cuda=False)
    assert [est["image_tokens"]] == image_token_counts(plugin, processor, [Image.new("RGB", (300, 200))])
    assert f"a fixed {est['image_tokens']} tokens per image ({arch})" in est["images"]


def test_a_trained_vision_tower_keeps_its_activations(tiny_vlm_dir):
    folder = tiny_vlm_dir("qwen2_vl")
    frozen = estimate_memory(run_config(folder, "qwen2_vl", finetuning_type="full"), cuda=False)
    trained = estimate_memory(
        run_config(folder, "qwen2_vl", {"freeze_vision_tower": False}, finetuning_type="full"), cuda=False
    )
    assert trained["activations"] > frozen["activations"]
    assert trained["trainable_params"] - frozen["trainable_params"] == trained["vision_params"]


def test_glm4v_and_llava_next_count_the_processors_tokens(tiny_vlm_dir):
    """GLM-4.1V: Qwen's grid rule (a 112 x 112 picture at image_max_pixels=12544); LLaVA-NeXT: at most its largest
    tiling, which a square picture fills."""
    from PIL import Image

    for arch, picture, keys in (("glm4v", (112, 112), {"image_max_pixels": 12544}), ("llava_next", (300, 300), {})):
        folder = tiny_vlm_dir(arch)
        processor = load_processor(folder)
        plugin = get_template(arch, processor.tokenizer).mm_plugin
        est = estimate_memory(run_config(folder, arch, **keys), cuda=False)
        assert [est["image_tokens"]] == image_token_counts(plugin, processor, [Image.new("RGB", picture)]), arch
