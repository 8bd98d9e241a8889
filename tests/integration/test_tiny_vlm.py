"""Tiny vision-language models built offline load with plain transformers Auto classes, see the picture, train
(finite loss) and generate; `tuneforge create-tiny-model --arch <family>` builds them."""

from __future__ import annotations

import hashlib
import math

import pytest
from PIL import Image

from tuneforge.cli import main
from tuneforge.model.tiny_vlm import QWEN_VL_ARCHS, VLM_ARCHS, create_tiny_vlm
from tuneforge.model.vlm_processor import load_processor

CHAT = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the shape?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
]
# per 64x64 picture (LLaVA-NeXT: the 28x28 base crop 2x2 + its 56x56 tiling 4x4 + a newline per row of 4)
IMAGE_TOKENS = {"qwen2_vl": 4, "qwen2_5_vl": 4, "qwen3_vl": 4, "llava": 4, "gemma3": 4, "llava_next": 24, "glm4v": 4}
MODEL_CLASS = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "llava": "LlavaForConditionalGeneration",
    "gemma3": "Gemma3ForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "glm4v": "Glm4vForConditionalGeneration",
}


def _picture(colour):
    picture = Image.new("RGB", (64, 64), (255, 255, 255))
    picture.paste(Image.new("RGB", (30, 30), colour), (17, 17))
    return picture


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("arch", VLM_ARCHS)
def test_loads_with_auto_classes_trains_and_generates(arch, tiny_vlm_dir):
    import torch
    from transformers import AutoModelForImageTextToText

    folder = tiny_vlm_dir(arch)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 4_000_000
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = load_processor(folder)
    assert type(model).__name__ == MODEL_CLASS[arch]
    tokenizer = processor.tokenizer
    config = model.config
    assert config.image_token_id == tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    saved = {"processor_config.json"} if arch in ("llava", "gemma3", "llava_next") else {"preprocessor_config.json"}
    assert saved | {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in folder.iterdir()
    }
    assert config.get_text_config().vocab_size == len(tokenizer)
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id

    text = processor.apply_chat_template(CHAT, tokenize=False)
    batch = processor(text=[text], images=[_picture((220, 40, 40))], return_tensors="pt")
    ids = batch["input_ids"][0].tolist()
    assert ids.count(config.image_token_id) == IMAGE_TOKENS[arch]
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, -3:] = batch["input_ids"][0, -3:]  # the reply's end only (as a response mask would leave)
    model.eval()
    with torch.no_grad():
        out = model(**batch, labels=labels)
        other = model(**{**batch, **processor(text=[text], images=[_picture((40, 80, 220))], return_tensors="pt")})
    assert math.isfinite(out.loss.item()) and 0 < out.loss.item() < math.log(len(tokenizer)) + 3
    # the picture reaches the text: another colour, other logits after the image tokens
    assert not torch.allclose(out.logits[0, -1], other.logits[0, -1])

    prompt = processor.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[_picture((220, 40, 40))], return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    width = inputs["input_ids"].shape[1]
    assert torch.equal(generated[0, :width], inputs["input_ids"][0]) and 0 < generated.shape[1] - width <= 3


@pytest.mark.parametrize("arch", QWEN_VL_ARCHS)
def test_qwen_families_need_the_image_only_processor_without_torchvision(arch, tiny_vlm_dir):
    from transformers import AutoProcessor
    from transformers.utils import is_torchvision_available

    folder = tiny_vlm_dir(arch)
    if not is_torchvision_available():  # transformers 5.25: AutoProcessor builds the video processor too
        with pytest.raises(ImportError, match="Torchvision"):
            AutoProcessor.from_pretrained(folder)
    processor = load_processor(folder)
    assert processor.video_processor is None
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    with pytest.raises(Exception):  # noqa: B017 (videos have no processor here, whatever transformers raises)
        processor(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[[_picture((0, 0, 0))] * 2])


def test_same_arguments_give_byte_identical_files(tmp_path, tiny_vlm_dir):
    first = _hashes(create_tiny_vlm(tmp_path / "a", "qwen2_vl"))
    assert first == _hashes(tiny_vlm_dir("qwen2_vl"))
    assert (
        first["model.safetensors"] != _hashes(create_tiny_vlm(tmp_path / "b", "qwen2_vl", seed=1))["model.safetensors"]
    )


def test_cli_builds_a_family_and_refuses_text_shape_flags(tmp_path, capsys, tiny_vlm_dir):
    assert main(["create-tiny-model", str(tmp_path / "llava"), "--arch", "llava"]) == 0
    assert "Tiny llava vision-language model saved to" in capsys.readouterr().out
    assert _hashes(tmp_path / "llava") == _hashes(tiny_vlm_dir("llava"))

    assert main(["create-tiny-model", str(tmp_path / "x"), "--arch", "gemma3", "--layers", "3"]) == 2
    err = capsys.readouterr().err
    assert "--layers shape the text archs only" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
