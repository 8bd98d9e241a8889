"""The tiny vision-language tokenizers: our trained vocabulary unchanged, the family's special tokens appended as
single tokens, and the family's official chat template rendering image turns as the real models do."""

from __future__ import annotations

import pytest

from tuneforge.model.tiny import build_tokenizer
from tuneforge.model.tiny_vlm import QWEN_VL_TOKENS, SPECS, VLM_ARCHS, build_vlm_tokenizer

PICTURE_CHAT = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the shape?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
]
QWEN2_VL_TEXT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour is the shape?<|im_end|>\n"
    "<|im_start|>assistant\nred<|im_end|>\n"
)
RENDERED = {
    "qwen2_vl": QWEN2_VL_TEXT,
    "qwen2_5_vl": QWEN2_VL_TEXT,
    # Qwen3-VL-Thinking: no default system prompt, the last reply gets an (empty) think block
    "qwen3_vl": "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour is the shape?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\nred<|im_end|>\n",
    "llava": "USER: <image>\nWhat colour is the shape? ASSISTANT: red ",
    "llava_next": "USER: <image>\nWhat colour is the shape? ASSISTANT: red ",
    # GLM-4.1V's template reads a reply as a string only (a list of parts is printed as it is)
    "glm4v": "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>What colour is the shape?<|assistant|>\n"
    "[{'type': 'text', 'text': 'red'}]",
    "gemma3": "<bos><start_of_turn>user\n<start_of_image>What colour is the shape?<end_of_turn>\n"
    "<start_of_turn>model\nred<end_of_turn>\n",
}
GENERATION_PROMPT = {
    "qwen2_vl": "<|im_start|>assistant\n",
    "qwen2_5_vl": "<|im_start|>assistant\n",
    "qwen3_vl": "<|im_start|>assistant\n<think>\n",
    "llava": "ASSISTANT:",
    "llava_next": "ASSISTANT:",
    "glm4v": "<|assistant|>\n",
    "gemma3": "<start_of_turn>model\n",
}


@pytest.fixture(scope="module")
def base_tokenizer():
    return build_tokenizer(4096)


@pytest.mark.parametrize("arch", VLM_ARCHS)
def test_family_tokens_are_appended_single_tokens(arch, base_tokenizer):
    tokenizer = build_vlm_tokenizer(arch)
    extra = SPECS[arch].extra_tokens
    assert len(tokenizer) == 4096 + len(extra)
    assert tokenizer.convert_tokens_to_ids(list(extra)) == list(range(4096, 4096 + len(extra)))
    for token in extra:
        assert tokenizer.encode(f"a{token}b", add_special_tokens=False)[1:-1] == [
            tokenizer.convert_tokens_to_ids(token)
        ]
    text = "Which digit is drawn? 图中画的是哪个数字？ 3"
    assert tokenizer.encode(text, add_special_tokens=False) == base_tokenizer.encode(text, add_special_tokens=False)
    for name, token in SPECS[arch].named_tokens.items():
        assert getattr(tokenizer, name) == token
    assert tokenizer.eos_token == SPECS[arch].eos


def test_qwen_tokens_keep_the_official_order():
    tokenizer = build_vlm_tokenizer("qwen2_vl")
    # official ids: <|vision_start|> 151652, <|vision_end|> 151653, <|image_pad|> 151655, <|video_pad|> 151656
    offsets = {t: tokenizer.convert_tokens_to_ids(t) - 4096 for t in QWEN_VL_TOKENS}
    assert [offsets[t] + 151646 for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")] == [
        151652,
        151653,
        151655,
        151656,
    ]


@pytest.mark.parametrize("arch", VLM_ARCHS)
def test_official_chat_template_renders_a_picture_turn(arch):
    tokenizer = build_vlm_tokenizer(arch)
    assert tokenizer.apply_chat_template(PICTURE_CHAT, tokenize=False) == RENDERED[arch]
    prompt = tokenizer.apply_chat_template(PICTURE_CHAT[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(GENERATION_PROMPT[arch])
