"""Training a vision-language model through `tuneforge train`: the freeze switches decide which parts change, LoRA
goes on the language model (and an unfrozen tower / projector), DPO pairs carry their pictures, and what cannot
train on pictures stops in one line. The tiny Qwen2-VL on our shapes demo (data/shapes_demo*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tuneforge.cli import main
from tuneforge.data.vision_collate import VisionCollator
from tuneforge.model.vision_parts import vision_parts
from tuneforge.model.vlm_processor import load_processor

ROOT = Path(__file__).resolve().parents[2]


def overrides(model_dir, out: Path, **extra) -> list[str]:
    cfg = {
        "model_name_or_path": model_dir,
        "template": "qwen2_vl",
        "dataset": "shapes_demo",
        "dataset_dir": ROOT / "data",
        "max_samples": 16,
        "cutoff_len": 256,
        "per_device_train_batch_size": 4,
        "max_steps": 2,
        "learning_rate": 1e-2,
        "output_dir": out,
        "save_steps": 100,
        "seed": 0,
        "disable_tqdm": True,
        "report_to": "none",
        **extra,
    }
    return [f"{key}={value}" for key, value in cfg.items()]


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed_parts(base: dict, trained: dict, model_type: str) -> dict[str, bool]:
    """Whether any weight of each part (vision tower, projector, language model) moved."""
    parts = vision_parts(model_type)
    out = {}
    for part in ("vision", "projector", "language"):
        names = [n for n in base if n.startswith(getattr(parts, part))]
        assert names, part
        out[part] = any(not torch.equal(base[n], trained[n]) for n in names)
    return out


@pytest.mark.parametrize(
    "switches, trained",
    [
        ({}, {"vision": False, "projector": False, "language": True}),  # LF's defaults
        (
            {"freeze_vision_tower": False, "freeze_multi_modal_projector": False, "freeze_language_model": True},
            {"vision": True, "projector": True, "language": False},
        ),
    ],
)
def test_freeze_switches_decide_which_parts_full_tuning_changes(tiny_vlm_dir, tmp_path, switches, trained):
    """Full tuning changes exactly the unfrozen parts; the run folder loads in plain transformers as the same class,
    with its processor (the base's processor files are saved beside the weights)."""
    from transformers import AutoModelForImageTextToText

    base_dir = tiny_vlm_dir("qwen2_vl")
    out = tmp_path / "full"
    extra = {f"{k}": str(v).lower() for k, v in switches.items()}
    assert main(["train", *overrides(base_dir, out, finetuning_type="full", learning_rate=1e-3, **extra)]) == 0
    base = AutoModelForImageTextToText.from_pretrained(base_dir)
    run = AutoModelForImageTextToText.from_pretrained(out)
    assert type(run) is type(base)
    assert changed_parts(weights(base), weights(run), "qwen2_vl") == trained
    processor = load_processor(out)
    assert processor.image_processor.to_dict() == load_processor(base_dir).image_processor.to_dict()


def test_lora_goes_on_the_language_model_unless_the_tower_is_unfrozen(tiny_vlm_dir, tmp_path):
    """Default: LoRA on the language model's linear layers only, nothing saved whole. Tower and projector unfrozen:
    the tower's layers get adapters too and the projector trains whole, saved in the adapter (peft's
    modules_to_save); the adapter loads in plain peft on AutoModelForImageTextToText."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base_dir = tiny_vlm_dir("qwen2_vl")
    plain, open_tower = tmp_path / "plain", tmp_path / "open"
    assert main(["train", *overrides(base_dir, plain, finetuning_type="lora", lora_target="all")]) == 0
    config = json.loads((plain / "adapter_config.json").read_text())
    assert config["target_modules"] and all(t.startswith("model.language_model.") for t in config["target_modules"])
    assert not config.get("modules_to_save")

    unfrozen = {"freeze_vision_tower": "false", "freeze_multi_modal_projector": "false"}
    assert main(["train", *overrides(base_dir, open_tower, finetuning_type="lora", **unfrozen)]) == 0
    config = json.loads((open_tower / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["model.visual.merger"]
    saved = load_file(open_tower / "adapter_model.safetensors")
    assert any(".merger.mlp." in name for name in saved)
    trained = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_dir), open_tower)
    adapted = {
        name.removesuffix(".lora_A") for name, _ in trained.get_base_model().named_modules() if name.endswith(".lora_A")
    }
    assert any(name.startswith("model.visual.blocks.") for name in adapted)
    assert any(name.startswith("model.language_model.") for name in adapted)
    assert not any(".merger." in name for name in adapted)  # trained whole, not adapted
    merger = trained.get_base_model().model.visual.merger  # peft's wrapper: the trained copy and the original
    assert not torch.equal(merger.modules_to_save["default"].mlp[0].weight, merger.original_module.mlp[0].weight)


def test_dpo_trains_on_pairs_with_their_pictures(tiny_vlm_dir, tmp_path):
    """Stage dpo on shapes_demo_dpo (the right answer chosen, a wrong one rejected): each pair's picture goes with
    both its chosen and its rejected row, and the run saves an adapter."""
    base_dir = tiny_vlm_dir("qwen2_vl")
    out = tmp_path / "dpo"
    argv = overrides(base_dir, out, stage="dpo", dataset="shapes_demo_dpo", finetuning_type="lora", logging_steps=1)
    assert main(["train", *argv]) == 0
    logged = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in logged if "loss" in row]
    assert len(losses) == 2 and all(0 < loss < 2 for loss in losses)
    assert (out / "adapter_model.safetensors").is_file()


def test_pairs_get_their_pictures_twice_chosen_rows_first(tiny_vlm_dir):
    """The collator for pairs: TRL's rows are all chosen then all rejected, so the pictures repeat in that order."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from tuneforge.config.multimodal_args import MultimodalArguments

    processor = load_processor(tiny_vlm_dir("qwen2_vl"))
    pad = processor.tokenizer.pad_token_id
    pictures = [str(ROOT / "data" / "shapes_demo" / name) for name in ("train_000.png", "train_001.png")]
    rows = [{"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "image_refs": [ref]} for ref in pictures]
    collator = VisionCollator(
        DataCollatorForPreference(pad_token_id=pad), processor, MultimodalArguments(), "qwen2_vl", copies=2
    )
    batch = collator(rows)
    single = VisionCollator(
        lambda r: {"input_ids": torch.zeros(1, 1, dtype=torch.long)}, processor, MultimodalArguments()
    )
    one = [single([{"image_refs": [ref]}])["pixel_values"] for ref in pictures]
    assert batch["input_ids"].shape[0] == 4
    assert torch.equal(batch["pixel_values"], torch.cat([*one, *one]))


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"packing": "true"}, "packing puts several rows in one sequence"),
        ({"stage": "rm", "dataset": "shapes_demo_dpo"}, "stage rm does not train on images"),
    ],
)
def test_what_cannot_train_on_pictures_stops_in_one_line(tiny_vlm_dir, tmp_path, capsys, extra, message):
    argv = overrides(tiny_vlm_dir("qwen2_vl"), tmp_path / "out", finetuning_type="lora", **extra)
    capsys.readouterr()  # the tiny model's build, when this test comes first
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists()


def test_a_row_whose_pictures_cutoff_len_would_cut_is_dropped_and_counted(tiny_vlm_dir, tmp_path, capsys):
    """A picture's tokens are never cut in half (the model would fail on the rest): the row is dropped, counted."""
    from tuneforge.config.loader import load_config
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.train.common import load_tokenizer_and_template

    base = {"model_name_or_path": str(tiny_vlm_dir("qwen2_vl")), "template": "qwen2_vl", "dataset": "shapes_demo"}
    base |= {"dataset_dir": str(ROOT / "data"), "max_samples": 8, "image_min_pixels": 112 * 112}
    for cutoff, kept in ((256, 8), (12, 0)):
        cfg = load_config(None, {**base, "cutoff_len": cutoff})
        tokenizer, template = load_tokenizer_and_template(cfg)
        if kept:
            train, _ = get_sft_datasets(cfg.data, template, tokenizer)
            assert len(train) == kept and all(len(refs) == 1 for refs in train["image_refs"])
            image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
            assert all(ids.count(image_id) == 16 for ids in train["input_ids"])  # 112x112: 16 tokens each
        else:
            with pytest.raises(Exception, match="cuts through its image tokens"):
                get_sft_datasets(cfg.data, template, tokenizer)


def test_video_keys_warn_and_video_rows_stop_in_one_line(tiny_vlm_dir, tmp_path, capsys, caplog):
    """LF's image configs carry video_max_pixels: it is accepted with a warning (no row here can use it); a row with
    a video stops the run in one line naming it (the video processors need torchvision)."""
    data = tmp_path / "data"
    data.mkdir()
    frames = [str(ROOT / "data" / "shapes_demo" / f"train_00{i}.png") for i in range(2)]
    rows = [{"messages": [{"role": "user", "content": "<video>What moves?"}, {"role": "assistant", "content": "x"}]}]
    rows[0]["videos"] = [frames]
    (data / "clips.json").write_text(json.dumps(rows))
    entry = {
        "file_name": "clips.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "videos": "videos"},
    }
    entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
    (data / "dataset_info.json").write_text(json.dumps({"clips": entry}))
    argv = overrides(tiny_vlm_dir("qwen2_vl"), tmp_path / "out", dataset="clips", dataset_dir=data, video_fps=1.0)
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "video_fps has no effect: video rows are not supported" in caplog.text
    assert err[-1].endswith("the row has 1 video(s): training on videos is not supported yet — remove the videos")


@pytest.mark.parametrize("method", ["bnb", "hqq"])
def test_qlora_quantizes_the_language_model_and_keeps_the_vision_parts_whole(tiny_vlm_dir, tmp_path, method):
    """QLoRA on a VLM (LLaMA-Factory's rule): the language model's linear layers are quantized, the vision tower and
    projector stay in full precision, so an unfrozen projector trains whole; the run saves an adapter."""
    from tuneforge.config.loader import load_config
    from tuneforge.model.loader import load_model

    base_dir = tiny_vlm_dir("qwen2_vl")
    settings = {"quantization_bit": 4, "quantization_method": method, "freeze_multi_modal_projector": "false"}
    out = tmp_path / method
    assert main(["train", *overrides(base_dir, out, finetuning_type="lora", **settings)]) == 0
    assert (out / "adapter_model.safetensors").is_file()
    cfg = load_config(None, {"model_name_or_path": str(base_dir), **settings})
    model = load_model(cfg.model, torch.float32)
    kinds = {name: type(module).__name__ for name, module in model.named_modules()}
    assert kinds["model.visual.blocks.0.attn.qkv"] == kinds["model.visual.merger.mlp.0"] == "Linear"
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] in ("Linear4bit", "HQQLinear")


def test_an_interrupted_vision_run_resumes_to_the_same_curve_and_weights(tiny_vlm_dir, tmp_path, monkeypatch):
    """LoRA with the projector trained whole and pictures in every batch: killed after step 5, the same command picks
    up checkpoint-3 and ends where an uninterrupted run ends (loss per step, adapter and projector weights)."""
    from tuneforge.config import load_config
    from tuneforge.train import callbacks
    from tuneforge.train.run import run_training

    def cfg(out: Path) -> dict:
        argv = overrides(tiny_vlm_dir("qwen2_vl"), out, finetuning_type="lora", max_steps=6, save_steps=3)
        argv += ["freeze_multi_modal_projector=false", "logging_steps=1", "lora_dropout=0.1", "learning_rate=0.005"]
        return dict(arg.split("=", 1) for arg in argv)

    def curve(out: Path) -> list[tuple[int, float]]:
        rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
        return [(row["step"], row["loss"]) for row in rows if row.get("loss") is not None]

    straight = run_training(load_config(None, cfg(tmp_path / "a")))
    original = callbacks.JsonlLogCallback.on_step_end

    def crash_after_step_5(self, args, state, control, **kwargs):
        if state.global_step == 5:
            raise KeyboardInterrupt
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(callbacks.JsonlLogCallback, "on_step_end", crash_after_step_5, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, cfg(tmp_path / "b")))
    monkeypatch.undo()
    resumed = run_training(load_config(None, cfg(tmp_path / "b")))
    assert [s for s, _ in curve(resumed)] == [s for s, _ in curve(straight)] == list(range(1, 7))
    assert [v for _, v in curve(resumed)] == pytest.approx([v for _, v in curve(straight)], rel=1e-5)
    a, b = load_file(straight / "adapter_model.safetensors"), load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(".merger." in key for key in a)
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-6, key


@pytest.mark.parametrize("extra", [{"streaming": "true"}, {"preprocessing_num_workers": 2}])
def test_pictures_train_from_a_stream_and_from_worker_processes(tiny_vlm_dir, tmp_path, extra):
    """A stream's batches keep their pixel values whole (accelerate must not slice them by rows); worker processes
    encode with the processor the template carries."""
    out = tmp_path / "out"
    assert main(["train", *overrides(tiny_vlm_dir("qwen2_vl"), out, finetuning_type="lora", **extra)]) == 0
    assert (out / "adapter_model.safetensors").is_file()


def test_a_tokenized_cache_knows_the_image_settings(tiny_vlm_dir, tmp_path, capsys):
    """tokenized_path: the same settings reuse the cache; another image_max_pixels (other image tokens per picture)
    is refused in one line naming what changed."""
    cache = tmp_path / "tokens"
    base = overrides(tiny_vlm_dir("qwen2_vl"), tmp_path / "a", finetuning_type="lora", tokenized_path=cache)
    assert main(["train", *base]) == 0
    assert main(["train", *base, f"output_dir={tmp_path / 'b'}"]) == 0
    capsys.readouterr()
    assert main(["train", *base, f"output_dir={tmp_path / 'c'}", "image_max_pixels=4096"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed: images" in err[0]


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen3_vl", "llava", "gemma3"])
def test_a_training_batch_holds_what_the_processor_gives_the_model(tiny_vlm_dir, arch):
    """Each family's batch holds the inputs its processor names (Qwen's image_grid_thw and mm_token_type_ids, Gemma 3's
    token_type_ids, LLaVA neither; no Gemma num_crops), the token types mark exactly the image tokens, and the model
    trains on it."""
    from tuneforge.config.loader import load_config
    from tuneforge.data.collate import sft_collator
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.vision_collate import with_image_batches
    from tuneforge.model.loader import load_model
    from tuneforge.train.common import load_tokenizer_and_template

    model_dir = tiny_vlm_dir(arch)
    settings = {"model_name_or_path": str(model_dir), "template": arch, "dataset": "shapes_demo"}
    cfg = load_config(None, {**settings, "dataset_dir": str(ROOT / "data"), "max_samples": 2, "cutoff_len": 1024})
    tokenizer, template = load_tokenizer_and_template(cfg)
    train, _ = get_sft_datasets(cfg.data, template, tokenizer)
    collate = with_image_batches(sft_collator(tokenizer, cfg.data, "sdpa", use_cpu=True), template)
    batch = collate([train[0], train[1]])
    processor = load_processor(model_dir)
    assert set(batch) == {*processor.model_input_names, "labels"}
    types = {"mm_token_type_ids", "token_type_ids"} & set(batch)
    image_id = tokenizer.convert_tokens_to_ids(template.mm_plugin["image_token"])
    for key in types:
        assert torch.equal(batch[key] == 1, batch["input_ids"] == image_id), key
    assert len(types) == (arch != "llava")
    model = load_model(cfg.model, torch.float32)
    assert torch.isfinite(model(**batch).loss)


def test_lora_with_nothing_left_to_adapt_stops_in_one_line(tiny_vlm_dir, tmp_path, capsys):
    argv = overrides(tiny_vlm_dir("qwen2_vl"), tmp_path / "out", finetuning_type="lora", freeze_language_model="true")
    capsys.readouterr()  # the tiny model's build, when this test comes first
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "leave lora_target no layer to adapt" in err[0]
