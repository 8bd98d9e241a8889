"""Write a merged llama / qwen2 model as one GGUF file that llama.cpp (and Ollama) load.

Follows llama.cpp's convert_hf_to_gguf.py: llama.cpp's tensor names (gguf.TensorNameMap), LLaMA's q/k rows permuted
for llama.cpp's rotary layout (Qwen2 uses the NeoX layout and is written as is), 1-D tensors in f32, and a byte-level
BPE vocabulary (tokens, types, merges, special ids, pre-tokenizer, chat template).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from tuneforge.config.model_args import GgufType
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.export.merge import Exportable

logger = get_logger(__name__)
ARCHS = ("llama", "qwen2")
GGUF_TYPES = get_args(GgufType)
# The Split regex of a byte-level BPE tokenizer → llama.cpp's pre-tokenizer name (llama-vocab.cpp).
_HEAD = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRE_TOKENIZERS = {_HEAD + r"\p{N}" + _TAIL: "qwen2", _HEAD + r"\p{N}{1,3}" + _TAIL: "llama-bpe"}


def check_gguf_arch(config, where: str = "export_format") -> str:
    arch = getattr(config, "model_type", None)
    if arch not in ARCHS:
        raise UserError(
            f"GGUF export supports the {' and '.join(ARCHS)} architectures, not {arch!r}",
            where=where,
            fix="use export_format: safetensors and convert with llama.cpp's convert_hf_to_gguf.py",
        )
    return arch


def _permute(w, n_head: int):
    """HF's rotary layout (halves) → llama.cpp's (interleaved pairs), rows of q_proj / k_proj (LLaMA only)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta") or getattr(config, "rope_theta", None) or 10000.0
    kind = params.get("rope_type", "default")
    if kind not in ("default", None):
        raise UserError(
            f"GGUF export does not write RoPE scaling '{kind}' yet",
            where="export_format",
            fix="export as safetensors and convert with llama.cpp's convert_hf_to_gguf.py",
        )
    return float(theta)


def _pre_tokenizer(backend: dict) -> str:
    pre = backend.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split":
            pattern = (step.get("pattern") or {}).get("Regex")
            if pattern in PRE_TOKENIZERS:
                return PRE_TOKENIZERS[pattern]
            break
        if step.get("type") == "ByteLevel" and step.get("use_regex", True):
            return "gpt-2"
    raise UserError(
        "GGUF export does not know this tokenizer's pre-tokenizer, so llama.cpp could split text differently",
        where="export_format",
        fix="export as safetensors and convert with llama.cpp's convert_hf_to_gguf.py",
    )


def _add_vocab(writer, tokenizer, template, vocab_size: int) -> None:
    import gguf  # gguf (and numpy): only a GGUF export needs them

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    model = backend.get("model") or {}
    if model.get("type") != "BPE" or not model.get("merges"):
        raise UserError("GGUF export needs a byte-level BPE tokenizer", where="export_format")
    vocab = tokenizer.get_vocab()
    if len(vocab) > vocab_size:
        raise UserError(
            f"the tokenizer has {len(vocab)} tokens but the model only {vocab_size} embeddings", where="export_format"
        )
    added = tokenizer.added_tokens_decoder
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, i in vocab.items():
        tokens[i] = text
        if i in added:
            types[i] = gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED
        else:
            types[i] = gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(backend))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    if tokenizer.bos_token_id is not None:
        writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    stops = [i for i in template.stop_token_ids(tokenizer) if i != tokenizer.eos_token_id]
    if stops:
        writer.add_eot_token_id(stops[0])
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(tokenizer.pad_token_id)
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(bool(probe) and probe[-1] == tokenizer.eos_token_id and len(probe) > 1)
    writer.add_chat_template(tokenizer.chat_template)


def _add_hparams(writer, config, gguf_type: str) -> None:
    import gguf

    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[gguf_type]
    writer.add_file_type(file_type)
    if gguf_type == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _tensor_plan(model, arch: str, gguf_type: str) -> list[tuple[str, str, tuple, object]]:
    """(llama.cpp name, HF name, shape, GGML type) for every tensor written, in the model's order."""
    import gguf

    config = model.config
    kind = gguf.MODEL_ARCH.QWEN2 if arch == "qwen2" else gguf.MODEL_ARCH.LLAMA
    names = gguf.get_tensor_name_map(kind, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    q8_block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]
    plan = []
    for hf_name, tensor in model.state_dict().items():
        if (tied and hf_name == "lm_head.weight") or hf_name.endswith("rotary_emb.inv_freq"):
            continue  # llama.cpp reuses token_embd when output.weight is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UserError(f"GGUF export cannot map tensor {hf_name!r}", where="export_format")
        shape = tuple(tensor.shape)
        if len(shape) <= 1 or gguf_type == "f32":
            qtype = gguf.GGMLQuantizationType.F32
        elif gguf_type == "q8_0" and shape[-1] % q8_block == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
        else:
            qtype = gguf.GGMLQuantizationType.F16
        plan.append((name, hf_name, shape, qtype))
    return plan


def _convert(tensor, hf_name: str, arch: str, config, qtype):
    """One tensor as the bytes GGUF stores: f32 / f16 / q8_0, LLaMA's q/k rows in llama.cpp's order."""
    import gguf
    import numpy as np

    data = tensor.detach().float().cpu().numpy()
    if arch == "llama" and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        data = _permute(data, config.num_attention_heads)
    elif arch == "llama" and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        data = _permute(data, getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    data = np.ascontiguousarray(data)
    if qtype == gguf.GGMLQuantizationType.Q8_0:
        return gguf.quants.quantize(data, qtype)
    return data.astype(np.float16 if qtype == gguf.GGMLQuantizationType.F16 else np.float32)


def write_gguf(item: Exportable, path: Path, gguf_type: str = "f16", name: str | None = None) -> Path:
    """Streams the tensors: header and tensor table first, then each tensor converted on its own, so peak memory is
    the model plus one tensor."""
    import gguf
    import numpy as np

    if gguf_type not in GGUF_TYPES:
        raise UserError(
            f"unknown GGUF type {gguf_type!r}", where="export_gguf_type", fix=f"use {', '.join(GGUF_TYPES)}"
        )
    config = item.model.config
    arch = check_gguf_arch(config)
    kind = gguf.MODEL_ARCH.QWEN2 if arch == "qwen2" else gguf.MODEL_ARCH.LLAMA
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[kind])
    writer.add_name(name or Path(path).parent.name)
    _add_hparams(writer, config, gguf_type)
    _add_vocab(writer, item.tokenizer, item.template, config.vocab_size)
    plan = _tensor_plan(item.model, arch, gguf_type)
    for tensor_name, _, shape, qtype in plan:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        writer.add_tensor_info(tensor_name, shape, np.dtype(np.float32), int(np.prod(shape)) // block * size, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    state = item.model.state_dict()
    for _, hf_name, _, qtype in plan:
        writer.write_tensor_data(_convert(state[hf_name], hf_name, arch, config, qtype))
    writer.close()
    logger.info("wrote %s (%s)", path, gguf_type)
    return Path(path)
