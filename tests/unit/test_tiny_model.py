"""The offline tiny-model builder: deterministic files that plain transformers loads, a zh/en tokenizer, ChatML."""

from __future__ import annotations

import hashlib
import math

import pytest

from tuneforge.errors import UserError
from tuneforge.model.tiny import DEFAULT_SYSTEM, SPECIAL_TOKENS, build_tokenizer, create_tiny_model

TEXTS = [
    "Hello, world! I am an AI assistant.",
    "我是一个人工智能助手，很高兴认识你。",
    "Mixed 中英文 text: 3.14159, 2025-11-27, 100%!\n\n  indented\tand tabs  ",
    "def f(x):\n    return x * 2  # 注释\n",
    "罕见字：龘靐齉 emoji 😀👍 accents café Zürich",
    "",
]


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_arguments_give_byte_identical_files(tmp_path, tiny_model_dir):
    first = create_tiny_model(tmp_path / "a")
    second = create_tiny_model(tmp_path / "b")
    hashes = _hashes(first)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(hashes)
    assert hashes == _hashes(second)
    assert hashes == _hashes(tiny_model_dir)  # the session fixture, built in another call


def test_seed_changes_weights_only(tmp_path, tiny_model_dir):
    other = _hashes(create_tiny_model(tmp_path / "seed1", seed=1))
    base = _hashes(tiny_model_dir)
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_build_leaves_the_callers_rng_alone(tmp_path):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create_tiny_model(tmp_path / "m", seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("fixture", "model_type"), [("tiny_model_dir", "qwen2"), ("tiny_llama_dir", "llama")])
def test_loads_in_plain_transformers_with_right_shapes(request, fixture, model_type):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = request.getfixturevalue(fixture)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = model.config
    assert config.model_type == model_type
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (2, 128, 4)
    assert (config.num_key_value_heads, config.intermediate_size, config.max_position_embeddings) == (2, 256, 4096)
    assert config.vocab_size == len(tokenizer) == 4096
    assert model.get_input_embeddings().weight.shape == (4096, 128)
    assert model.dtype == torch.float32
    assert not config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    assert config.eos_token_id == model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert config.pad_token_id == model.generation_config.pad_token_id == tokenizer.pad_token_id == 0

    batch = tokenizer(["你好，世界", "Hello there, how are you today?"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"])
    assert out.logits.shape == (2, batch["input_ids"].shape[1], 4096)
    # Random init: an untrained model, so the loss is near ln(vocab) (a bit above: the init is not tiny).
    assert math.log(4096) - 0.5 < out.loss.item() < math.log(4096) + 2


def test_generate_stops_and_pads(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "你是谁？"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)  # fmt: skip
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 1
    assert 1 <= out.shape[1] - prompt["input_ids"].shape[1] <= 4


def test_tied_embeddings_option(tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(create_tiny_model(tmp_path / "tied", tie_embeddings=True))
    assert model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_shape_arguments_are_honoured(tmp_path):
    from transformers import AutoConfig

    folder = create_tiny_model(tmp_path / "m", arch="llama", layers=1, hidden=64, heads=2, kv_heads=1,
                               intermediate=96, vocab_size=1000, max_position=512)  # fmt: skip
    config = AutoConfig.from_pretrained(folder)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (1, 64, 2)
    assert (config.num_key_value_heads, config.intermediate_size) == (1, 96)
    assert (config.vocab_size, config.max_position_embeddings) == (1000, 512)
    assert len(build_tokenizer(1000)) == 1000


@pytest.mark.parametrize("text", TEXTS)
def test_text_round_trips_exactly(tiny_tokenizer, text):
    ids = tiny_tokenizer(text)["input_ids"]
    assert tiny_tokenizer.decode(ids) == text
    assert not set(ids) & set(tiny_tokenizer.all_special_ids)  # no BOS/EOS added, nothing special in plain text


def test_both_archs_load_the_same_tokenizer_as_built(tiny_model_dir, tiny_llama_dir):
    """transformers loads a qwen2 folder with Qwen2Tokenizer (which rebuilds the pipeline) and a llama folder with
    the generic backend; both must behave exactly like the tokenizer we trained."""
    from transformers import AutoTokenizer

    built = build_tokenizer()
    texts = [*TEXTS, "e\u0301 (not NFC)", "<|im_start|>user\n<s>[INST] hi [/INST]<|im_end|>"]
    attrs = ("eos_token", "pad_token", "bos_token", "unk_token")
    for folder in (tiny_model_dir, tiny_llama_dir):
        loaded = AutoTokenizer.from_pretrained(folder)
        assert [loaded.encode(t) for t in texts] == [built.encode(t) for t in texts]
        assert loaded.get_vocab() == built.get_vocab()
        assert [getattr(loaded, a) for a in attrs] == [getattr(built, a) for a in attrs]
        assert loaded.model_max_length == 4096
    assert built.decode(built.encode("e\u0301")) == "\u00e9"  # NFC, as Qwen2's tokenizer


def test_common_chinese_characters_are_single_tokens(tiny_tokenizer):
    common = "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会"
    assert all(len(tiny_tokenizer.encode(ch)) == 1 for ch in common)
    sentence = "今天天气很好，我们一起去公园散步吧。"
    assert len(tiny_tokenizer.encode(sentence)) < len(sentence)  # far below 3 byte tokens per character
    assert len(tiny_tokenizer.tokenize(" assistant")) == 1


def test_special_tokens_are_single_ids_in_declared_order(tiny_tokenizer):
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        assert tiny_tokenizer.encode(token) == [expected_id]
        assert tiny_tokenizer.convert_ids_to_tokens(expected_id) == token
    assert set(SPECIAL_TOKENS) <= set(tiny_tokenizer.all_special_tokens)
    assert (tiny_tokenizer.eos_token, tiny_tokenizer.pad_token, tiny_tokenizer.bos_token) == (
        "<|im_end|>",
        "<|endoftext|>",
        None,
    )
    ids = tiny_tokenizer.encode("<|im_start|>user\nHi<|im_end|>")
    assert ids[0] == SPECIAL_TOKENS.index("<|im_start|>") and ids[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == "user\nHi"


def test_chat_template_renders_chatml(tiny_tokenizer):
    chat = [{"role": "user", "content": "你是谁？"}, {"role": "assistant", "content": "我是一个人工智能助手。"}]
    assert tiny_tokenizer.apply_chat_template(chat, tokenize=False) == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n"
        "<|im_start|>user\n你是谁？<|im_end|>\n"
        "<|im_start|>assistant\n我是一个人工智能助手。<|im_end|>\n"
    )
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who are you?"}]
    assert tiny_tokenizer.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_template_marks_assistant_tokens(tiny_tokenizer):
    chat = [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am an AI assistant."},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
    ]
    out = tiny_tokenizer.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tiny_tokenizer.decode(trained) == "I am an AI assistant.<|im_end|>你好！<|im_end|>"


def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="qwen2.*llama") as info:
        create_tiny_model(tmp_path / "x", arch="gpt2")
    assert "gpt2" in str(info.value)
    with pytest.raises(UserError, match="layers must be at least 1"):
        create_tiny_model(tmp_path / "x", layers=0)
    with pytest.raises(UserError, match="vocab_size"):
        create_tiny_model(tmp_path / "x", vocab_size=100)
    with pytest.raises(UserError, match="kv_heads"):
        create_tiny_model(tmp_path / "x", heads=4, kv_heads=3)
    with pytest.raises(UserError, match="heads"):
        create_tiny_model(tmp_path / "x", hidden=130, heads=4)
    assert not (tmp_path / "x").exists()  # nothing written on a bad argument
