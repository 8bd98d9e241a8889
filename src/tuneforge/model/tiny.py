"""Offline tiny-model builder: a byte-level BPE tokenizer trained on the shipped corpus + a random Qwen2 / Llama model.

Everything is deterministic: the same arguments give byte-identical files. Used by the tests (see tests/conftest.py),
the `tuneforge create-tiny-model` command and demos. No network, a second or two on a CPU.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
# Ids follow this order (0, 1, 2, ...): every chat template we ship renders its markers as single tokens.
SPECIAL_TOKENS = (
    "<|endoftext|>",  # pad (Qwen convention)
    "<|im_start|>",
    "<|im_end|>",  # eos
    "<|begin_of_text|>",  # llama3
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<s>",  # llama2 / mistral
    "</s>",
    "[INST]",
    "[/INST]",
    "<start_of_turn>",  # gemma
    "<end_of_turn>",
)
ARCHS = ("qwen2", "llama")
DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2's pre-tokenizer split: digits one by one, letters in runs (Chinese included), punctuation in runs.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# ChatML as Qwen2.5 renders it (without tools). Assistant replies sit in {% generation %} blocks, so
# `apply_chat_template(..., return_assistant_tokens_mask=True)` marks exactly "reply<|im_end|>".
CHAT_TEMPLATE = """\
{%- if messages and messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {{- '<|im_start|>system\\nDEFAULT_SYSTEM<|im_end|>\\n' }}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message['role'] == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
            {{- message['content'] + '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- else %}
        {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
""".replace("DEFAULT_SYSTEM", DEFAULT_SYSTEM)

_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte + the specials


def _corpus_texts() -> Iterator[str]:
    """The shipped corpus, files in name order. `chars_*.txt` files are character lists, not prose: each character
    is yielded on its own so BPE learns whole characters instead of merging neighbours in the list."""
    folder = resources.files("tuneforge.model") / "corpus"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".txt"):
            continue
        text = entry.read_text(encoding="utf-8")
        if entry.name.startswith("chars_"):
            for line in text.splitlines():
                if not line.startswith("#"):
                    yield from (ch for ch in line if not ch.isspace())
        else:
            yield text


def build_tokenizer(vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """Trains a byte-level BPE tokenizer on the shipped corpus (Chinese + English), deterministic.

    Ids 0..12 are SPECIAL_TOKENS, 13..268 the 256 bytes, then merges. The corpus supports about 8,190 tokens;
    a larger `vocab_size` gives a tokenizer that stops there. Nothing is ever unknown (byte level), no BOS is added.
    Text is NFC-normalised (as Qwen2's), so decode(encode(text)) == text for NFC text: Chinese, English, code.
    """
    # heavy: only building a tiny model needs them
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < _MIN_VOCAB:
        raise UserError(f"vocab_size {vocab_size} is too small", where="vocab_size", fix=f"use at least {_MIN_VOCAB}")
    # The same pipeline transformers' Qwen2Tokenizer rebuilds on load (it does for a qwen2 folder): NFC, then split.
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The trainer's merge order breaks count ties by pair id, so the result does not depend on thread count.
    backend.train_from_iterator(_corpus_texts(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=PAD_TOKEN,  # never produced (byte level); Qwen2Tokenizer's default, so both archs load alike
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in (EOS_TOKEN, PAD_TOKEN)],
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )


def _model_classes(arch: str):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}
    if arch not in classes:
        raise UserError(f"unknown arch {arch!r}", where="arch", fix=f"choose one of: {', '.join(ARCHS)}")
    return classes[arch]


def _check_shape(layers: int, hidden: int, heads: int, kv_heads: int, intermediate: int, max_position: int) -> None:
    sizes = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads, "intermediate": intermediate}
    for name, value in {**sizes, "max_position": max_position}.items():
        if value < 1:
            raise UserError(f"{name} must be at least 1, got {value}", where=name)
    if hidden % heads:
        raise UserError(f"hidden {hidden} is not divisible by heads {heads}", where="hidden")
    if heads % kv_heads:
        raise UserError(f"heads {heads} is not divisible by kv_heads {kv_heads}", where="kv_heads")


def create_tiny_model(
    out_dir,
    arch: str = "qwen2",
    layers: int = 2,
    hidden: int = 128,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 256,
    vocab_size: int = 4096,
    max_position: int = 4096,
    seed: int = 0,
    tie_embeddings: bool = False,
    init_std: float | None = None,
) -> pathlib.Path:
    """Builds tokenizer + randomly initialised model (fixed seed), save_pretrained (safetensors) into out_dir, returns
    out_dir.

    The model's embedding has exactly `vocab_size` rows (>= len(tokenizer), so every token id has a row).
    Weights are float32, drawn with std `init_std` (default 1/sqrt(hidden)): wider than the usual 0.02, so
    a random tiny model has some structure to adapt and LoRA learns in a few steps, as on a real model.
    eos = <|im_end|>, pad = bos = <|endoftext|> in the config (Qwen's convention); the tokenizer adds no BOS.
    """
    import torch
    from transformers import GenerationConfig

    config_cls, model_cls = _model_classes(arch)
    _check_shape(layers, hidden, heads, kv_heads, intermediate, max_position)
    tokenizer = build_tokenizer(vocab_size)
    tokenizer.model_max_length = max_position
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    assert len(tokenizer) <= vocab_size, (len(tokenizer), vocab_size)

    config = config_cls(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        initializer_range=init_std if init_std is not None else hidden**-0.5,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG state
        torch.manual_seed(seed)
        model = model_cls(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id)

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
