"""Chat with pictures on the tiny vision-language models (Qwen2-VL and Gemma 3): the prompt ids the engine builds are
the model's own chat template + processor's, id for id; the picture reaches the model (another picture, other logits,
exactly those of a direct call on the processor's inputs; the streamed reply is model.generate's); a LoRA adapter on
the language model is loaded and answers as base + adapter; a text-only model or a text template is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.config import load_config
from tuneforge.data.media import load_image
from tuneforge.errors import UserError
from tuneforge.model.vlm_processor import load_processor

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes_demo"
PICTURES = [str(SHAPES / "eval_000.png"), str(SHAPES / "eval_001.png")]
QUESTION = "What shape is this?"
FAMILIES = ["qwen2_vl", "gemma3"]  # arch = template name


def ask(picture: str, question: str = QUESTION) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": picture}}, {"type": "text", "text": question}]
    return [{"role": "user", "content": parts}]


def official(question: str = QUESTION, images: int = 1) -> list[dict]:
    return [{"role": "user", "content": [*[{"type": "image"}] * images, {"type": "text", "text": question}]}]


def make_engine(model_dir, template: str, **extra) -> HuggingFaceEngine:
    cfg = {"model_name_or_path": str(model_dir), "template": template, "do_sample": False, "max_new_tokens": 8}
    return HuggingFaceEngine(load_config(None, {**cfg, **extra}))


@pytest.fixture(scope="module")
def vlm(tiny_vlm_dir):
    """arch → (engine, the model's own processor)."""
    built = {}

    def get(arch: str):
        if arch not in built:
            built[arch] = make_engine(tiny_vlm_dir(arch), arch), load_processor(tiny_vlm_dir(arch))
        return built[arch]

    return get


def processor_inputs(processor, messages: list[dict], pictures: list[str], plugin: str):
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images = [load_image(p, plugin=plugin) for p in pictures]  # resized as training does (LF's rule)
    return processor(text=[text], images=images, return_tensors="pt")


@pytest.mark.parametrize("arch", FAMILIES)
def test_prompt_ids_equal_the_official_template_and_processor(vlm, arch):
    engine, processor = vlm(arch)
    ids = engine.prompt_ids(ask(PICTURES[0]))
    theirs = processor_inputs(processor, official(), PICTURES[:1], arch)["input_ids"][0].tolist()
    assert ids == theirs
    image_token = processor.tokenizer.convert_tokens_to_ids(engine.template.mm_plugin["image_token"])
    assert ids.count(image_token) == (4 if arch == "qwen2_vl" else processor.image_seq_length)  # 64 x 64: 4 tokens


def test_two_pictures_and_a_second_turn_equal_the_official_ids(vlm):
    engine, processor = vlm("qwen2_vl")
    first = [{"type": "image_url", "image_url": {"url": p}} for p in PICTURES] + [{"type": "text", "text": "Same?"}]
    messages = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "No."},
        {"role": "user", "content": "Why?"},
    ]
    turns = [
        *official("Same?", images=2),
        {"role": "assistant", "content": [{"type": "text", "text": "No."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why?"}]},
    ]
    theirs = processor_inputs(processor, turns, PICTURES, "qwen2_vl")["input_ids"][0].tolist()
    assert engine.prompt_ids(messages) == theirs


@pytest.mark.parametrize("arch", FAMILIES)
def test_the_picture_reaches_the_model_as_the_processor_gives_it(vlm, arch):
    engine, processor = vlm(arch)
    logits = []
    for picture in PICTURES:
        ours = engine.model_inputs(ask(picture))
        theirs = processor_inputs(processor, official(), [picture], arch)
        assert sorted(ours) == sorted(theirs)  # pixel_values, image_grid_thw, mm_token_type_ids / token_type_ids
        with torch.no_grad():
            mine = engine.model(**ours).logits[0, -1]
            assert torch.equal(mine, engine.model(**theirs).logits[0, -1])
        logits.append(mine)
    assert (logits[0] - logits[1]).abs().max() > 0.1  # another picture, another next token distribution


def test_the_streamed_reply_is_model_generate_on_the_processor_inputs(vlm):
    engine, processor = vlm("qwen2_vl")
    replies = []
    for picture in PICTURES:
        inputs = processor_inputs(processor, official(), [picture], "qwen2_vl")
        eos = engine.template.stop_token_ids(engine.tokenizer)
        with torch.no_grad():
            out = engine.model.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=eos)
        direct = engine.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        reply = engine.chat(ask(picture))
        assert reply == direct and reply
        replies.append(reply)
    assert replies[0] != replies[1]


def test_base64_data_url_answers_as_the_file(vlm):
    import base64

    engine, _ = vlm("qwen2_vl")
    url = "data:image/png;base64," + base64.b64encode(Path(PICTURES[0]).read_bytes()).decode()
    assert engine.chat(ask(url)) == engine.chat(ask(PICTURES[0]))


def test_a_text_only_model_refuses_pictures_in_one_line(tiny_model_dir):
    engine = make_engine(tiny_model_dir, "qwen")
    with pytest.raises(UserError, match=r"^messages: the messages hold 1 image\(s\), and this model reads text only"):
        engine.chat(ask(PICTURES[0]))
    assert engine.chat([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])  # text parts are fine


def test_a_text_template_with_pictures_is_one_line(tiny_vlm_dir):
    engine = make_engine(tiny_vlm_dir("qwen2_vl"), "qwen")
    with pytest.raises(UserError, match="template 'qwen' is a text template, and this row has images"):
        engine.chat(ask(PICTURES[0]))


def test_lora_adapter_on_the_language_model_answers_as_base_plus_adapter(tiny_vlm_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForImageTextToText

    base_dir = tiny_vlm_dir("qwen2_vl")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj)", init_lora_weights=False)
    torch.manual_seed(0)  # init_lora_weights=False: random B, so the adapter changes the answers
    get_peft_model(AutoModelForImageTextToText.from_pretrained(base_dir), lora).save_pretrained(tmp_path)

    engine = make_engine(base_dir, "qwen2_vl", adapter_name_or_path=str(tmp_path))
    reference = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_dir), tmp_path).eval()
    base = AutoModelForImageTextToText.from_pretrained(base_dir).eval()
    processor = load_processor(base_dir)
    inputs = processor_inputs(processor, official(), PICTURES[:1], "qwen2_vl")
    eos = engine.template.stop_token_ids(engine.tokenizer)
    with torch.no_grad():
        expected_logits = reference(**inputs).logits[0, -1]
        torch.testing.assert_close(engine.model(**engine.model_inputs(ask(PICTURES[0]))).logits[0, -1], expected_logits)
        assert (base(**inputs).logits[0, -1] - expected_logits).abs().max() > 0.1  # the adapter matters
        out = reference.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=eos)
    expected = engine.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert engine.chat(ask(PICTURES[0])) == expected and expected
