"""`tuneforge export` of a vision-language model's LoRA adapter: the merged folder loads in plain transformers as the
same class with its processor, renders a picture prompt into the ids training encoded, and answers as base + adapter;
GGUF and GPTQ export refuse a VLM in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.cli import main
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.template import get_template
from tuneforge.data.vision_conversation import with_image_tokens
from tuneforge.model.vlm_processor import load_processor

PICTURE = Path(__file__).resolve().parents[2] / "data" / "shapes_demo" / "eval_000.png"
QUESTION = "What shape is this?"
TEMPLATES = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_vl",
    "qwen3_vl": "qwen3_vl",
    "llava": "llava",
    "gemma3": "gemma3",
    "llava_next": "llava_next",
    "glm4v": "glm4v",
}


def make_vlm_adapter(base_dir, out_dir):
    """LoRA on the language model's q_proj / v_proj only, A and B random (merging it changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(base_dir)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj)", init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


def export(capsys, **keys) -> tuple[int, str]:
    code = main(["export", *[f"{k}={v}" for k, v in keys.items()]])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("arch", TEMPLATES)
def test_merged_vlm_loads_with_its_processor_and_matches_base_plus_adapter(arch, tiny_vlm_dir, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    base_dir = tiny_vlm_dir(arch)
    adapter = make_vlm_adapter(base_dir, tmp_path / "lora")
    out = tmp_path / "merged"
    code, err = export(
        capsys, model_name_or_path=base_dir, adapter_name_or_path=adapter, template=TEMPLATES[arch], export_dir=out
    )
    assert code == 0, err
    files = {p.name for p in out.iterdir()}
    assert not files & {"adapter_config.json", "adapter_model.safetensors"}
    assert "model.safetensors" in files and (files & {"preprocessor_config.json", "processor_config.json"})

    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    base = AutoModelForImageTextToText.from_pretrained(base_dir).eval()
    assert type(merged) is type(base)
    reference = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_dir), adapter).eval()

    # the export's processor carries the training template, and a picture prompt in OpenAI content parts becomes
    # exactly the ids the training encoders make of the same turn (<image> placeholder + the image file)
    processor = load_processor(out)
    template = get_template(TEMPLATES[arch], processor.tokenizer)
    assert processor.chat_template == processor.tokenizer.chat_template
    assert processor.chat_template.endswith(template.to_jinja())
    picture = Image.open(PICTURE).convert("RGB")
    parts = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    text = processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True)
    inputs = processor(text=[text], images=[picture], return_tensors="pt")
    conv = Conversation([Message("user", "<image>" + QUESTION)], images=[str(PICTURE)])
    conv, _ = with_image_tokens(conv, template, processor, MultimodalArguments())
    assert inputs["input_ids"][0].tolist() == template.encode_prompt(processor.tokenizer, conv)

    with torch.no_grad():
        got, want, plain = (m(**inputs).logits for m in (merged, reference, base))
    # float32 round-off of the merged weights: relative to the logits' scale (the Qwen models' final norm is 2)
    assert (got - want).abs().max().item() < 1e-5 * max(1.0, want.abs().max().item())
    assert (got - plain).abs().max().item() > 1e-3  # the adapter matters: the check above is not trivially true
    greedy = {"max_new_tokens": 8, "do_sample": False, "eos_token_id": None}
    with torch.no_grad():
        assert merged.generate(**inputs, **greedy).tolist() == reference.generate(**inputs, **greedy).tolist()


def test_vlm_chat_template_renders_text_turns_as_training(tiny_vlm_dir, tmp_path, capsys):
    """Text-only turns render through the training template unchanged (the prelude only joins content parts)."""
    base_dir = tiny_vlm_dir("qwen2_vl")
    code, err = export(capsys, model_name_or_path=base_dir, template="qwen2_vl", export_dir=tmp_path / "full")
    assert code == 0, err
    processor = load_processor(tmp_path / "full")
    tokenizer = processor.tokenizer
    template = get_template("qwen2_vl", tokenizer)
    messages = [{"role": "user", "content": QUESTION}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    conv = Conversation([Message("user", QUESTION)])
    assert tokenizer.encode(rendered, add_special_tokens=False) == template.encode_prompt(tokenizer, conv)


@pytest.mark.parametrize(
    ("keys", "fragments"),
    [
        ({"export_format": "gguf"}, ("export_format", "cannot be exported as GGUF (nor to Ollama)", "mmproj")),
        ({"export_quantization_bit": 4}, ("export_quantization_bit", "cannot quantize a vision-language model")),
    ],
)
def test_gguf_and_gptq_refuse_a_vlm_in_one_line(tiny_vlm_dir, tmp_path, capsys, keys, fragments):
    out = tmp_path / "x"
    code, err = export(capsys, model_name_or_path=tiny_vlm_dir("qwen2_vl"), export_dir=out, **keys)
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists()


def test_vlm_without_image_processor_is_refused(tiny_vlm_dir, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(tiny_vlm_dir("qwen2_vl"), tmp_path / "no-processor")
    (folder / "preprocessor_config.json").unlink()
    code, err = export(capsys, model_name_or_path=folder, template="qwen2_vl", export_dir=tmp_path / "x")
    assert code == 2 and "has no image processor" in err and err.count("\n") == 0, err
    assert not (tmp_path / "x").exists()


def test_a_trained_adapter_with_its_whole_projector_merges_into_the_base(tiny_vlm_dir, tmp_path, capsys):
    """The user's path: `tuneforge train` (LoRA, freeze_multi_modal_projector: false, so the projector trains whole)
    then `tuneforge export` of the run folder: the merged model carries the trained projector and answers a picture
    question as base + adapter."""
    import torch
    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    base_dir = tiny_vlm_dir("qwen2_vl")
    run = tmp_path / "run"
    data = Path(__file__).resolve().parents[2] / "data"
    train = {"model_name_or_path": base_dir, "template": "qwen2_vl", "dataset": "shapes_demo", "dataset_dir": data}
    train |= {"max_samples": 8, "max_steps": 2, "learning_rate": 1e-2, "output_dir": run, "lora_target": "all"}
    train |= {"freeze_multi_modal_projector": "false", "report_to": "none", "disable_tqdm": "true"}
    assert main(["train", *[f"{k}={v}" for k, v in train.items()]]) == 0
    out = tmp_path / "merged"
    code, err = export(capsys, model_name_or_path=base_dir, adapter_name_or_path=run, export_dir=out)
    assert code == 0, err
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    base = AutoModelForImageTextToText.from_pretrained(base_dir).eval()
    reference = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_dir), run).eval()
    trained = reference.get_base_model().model.visual.merger.modules_to_save["default"].mlp[0].weight
    assert torch.equal(merged.model.visual.merger.mlp[0].weight, trained)
    assert not torch.equal(trained, base.model.visual.merger.mlp[0].weight)
    processor = load_processor(out)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
        add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[Image.open(PICTURE).convert("RGB")], return_tensors="pt")
    with torch.no_grad():
        got, want = merged(**inputs).logits, reference(**inputs).logits
    assert (got - want).abs().max().item() < 1e-5 * max(1.0, want.abs().max().item())
