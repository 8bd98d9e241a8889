"""Peak memory of a training run, predicted before any weight loads: `tuneforge estimate cfg.yaml`.

Everything comes from the model's config.json and the run config. Parameter counts from the shapes (hidden,
intermediate, layers, heads, vocab); quantised weights at their bits per parameter; LoRA parameters from the rank
and the target shapes; gradients and AdamW states for what is trained; activations from batch x seq x
(hidden x layers x a per-layer factor + vocab x a logits factor, or one slice of logits where the loss is sliced),
with and without gradient checkpointing; plus
the framework (Python, torch, transformers, peft: measured on a CPU with `benchmarks/harness.py`). A vision-language
model adds its vision tower and projector, and each sample's image tokens (model/vlm_estimate.py).
Where `gradient_checkpointing: auto` resolves off, SFT still checkpoints its steps of over twice a typical step's
tokens (model/long_step_checkpointing.py); which those are is the data's, so the estimate stays that of the
longest batch uncheckpointed: an upper bound there.

The factors were calibrated on a 2-core CPU with fp32 and sdpa attention (see docs/benchmarks.md); on CUDA the
same counts hold, with the CUDA context in place of the Python framework.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneforge.config.stages import stage_record
from tuneforge.data.collate import needs_whole_logits
from tuneforge.errors import UserError
from tuneforge.model.boosters import booster_name
from tuneforge.model.lean_activations import LEAN_MODEL_TYPES, SAVED_FEWER_HIDDEN, SAVED_FEWER_INTERMEDIATE
from tuneforge.model.logit_head import head_kept_whole, plain_logit_head
from tuneforge.model.swiglu_down import SAVED_FEWER_FUSED
from tuneforge.model.upcast import keeps_fp32_master_weights
from tuneforge.model.vlm_estimate import VisionEstimate, estimate_vision, is_vision_folder, text_config
from tuneforge.utils.devices import auto_compute_type, has_cuda

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

MIB = 1024**2
# Per token and layer, activations kept for the backward pass, in units of hidden (h) and intermediate (i) values:
# norms, q/k/v/o inputs and outputs, the residual stream (~ACT_H h) and the MLP's gate/up/act/product (~ACT_I i).
ACT_H = 16.0
ACT_I = 6.0
# With gradient checkpointing only each layer's input is kept, plus one layer's activations during recompute.
ACT_H_CHECKPOINTED = 2.0
# Logits per token: the logits, their float copy / log-softmax in the loss, and the gradient.
LOGIT_COPIES = 3.0
# SFT keeps logits only where a token is trained (data/collate.py::keep_trained_logits): a long chat row is about half
# prompt, which then has none (measured: the 100m benchmark model, 32k vocabulary, LoRA / full / freeze).
TRAINED_SHARE = 0.5
# Sliced heads keep no logits per token, only one slice at a time: SFT's cross-entropy (train/trained_token_loss.py)
# and, on a CPU, TRL's fused head (train/cpu_logprob.py): a slice's logits, log-softmax, exp and gradient of 16 MiB.
LOGIT_SLICE_MIB = 4 * 16.0
# TRL's fused head on a GPU (preference stages): a tile of 4,096 tokens x up to 32,768 of the vocabulary, and its
# gradient, in the compute dtype.
TRL_TILE_TOKENS, TRL_TILE_VOCAB = 4096, 32768
FRAMEWORK_MIB_CPU = 560.0  # python + torch + transformers + peft + datasets + the trainer, before any weight
FRAMEWORK_MIB_CUDA = 600.0  # CUDA context and allocator reserve
TRL_MIB = 90.0  # trl's imports (preference stages)
# Bytes per parameter of a quantised linear weight: the packed values plus one fp32 scale per block of 64.
QUANT_BYTES = {4: 0.5 + 4 / 64, 8: 1.0 + 4 / 64}
OPTIM_STATE_BYTES = {"adamw": 8.0, "adam": 8.0, "adafactor": 0.5, "sgd": 0.0, "8bit": 2.0, "lion": 4.0}
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_model_config(path: str | None) -> dict[str, Any]:
    if not path:
        raise UserError("no model to estimate", where="model_name_or_path", fix="set model_name_or_path")
    file = Path(path) / "config.json"
    if not file.is_file():
        raise UserError(
            "estimate reads the model's config.json from a local folder; none found",
            where=str(file),
            fix="download the model first (its config.json is enough) or point model_name_or_path at the folder",
        )
    config = json.loads(file.read_text(encoding="utf-8"))
    if isinstance(config.get("vision_config"), dict):  # a VLM: its language model, with the defaults filled in
        config = text_config(path)
    else:
        config = config.get("text_config", config)  # other multimodal wrappers keep the language model here
    for key in ("hidden_size", "num_hidden_layers", "vocab_size"):
        if not isinstance(config.get(key), int):
            raise UserError(f"config.json has no {key}", where=str(file), fix="use a decoder-only causal LM")
    return config


def layer_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear layer in one decoder block."""
    h = config["hidden_size"]
    heads = config.get("num_attention_heads") or 1
    kv = config.get("num_key_value_heads") or heads
    hd = config.get("head_dim") or h // heads
    i = config.get("intermediate_size") or 4 * h
    return {
        "q_proj": (h, heads * hd),
        "k_proj": (h, kv * hd),
        "v_proj": (h, kv * hd),
        "o_proj": (heads * hd, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def param_counts(config: dict[str, Any]) -> dict[str, int]:
    """Parameters by part: linear (in the layers), other layer params (norms, biases), embedding, head."""
    h, n_layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    shapes = layer_shapes(config)
    linear = sum(a * b for a, b in shapes.values())
    bias = config.get("attention_bias", config.get("model_type") == "qwen2")
    attn_bias = sum(shapes[k][1] for k in ("q_proj", "k_proj", "v_proj")) if bias else 0
    tied = bool(config.get("tie_word_embeddings", False))
    return {
        "linear": linear * n_layers,
        "layer_other": (2 * h + attn_bias) * n_layers,
        "embedding": vocab * h,
        "head": 0 if tied else vocab * h,
        "final_norm": h,
    }


def lora_targets(target: str) -> list[str]:
    names = [t.strip() for t in (target or "all").split(",") if t.strip()]
    if "all" in names:
        return list(LINEAR_NAMES)
    return [n for n in names if n in LINEAR_NAMES]


def trainable_params(config: dict[str, Any], ft, counts: dict[str, int]) -> int:
    n_layers = config["num_hidden_layers"]
    if ft.finetuning_type == "full":
        return sum(counts.values())
    if ft.finetuning_type == "freeze":
        per_layer = (counts["linear"] + counts["layer_other"]) // n_layers
        return per_layer * min(abs(int(ft.freeze_trainable_layers)), n_layers)
    shapes = layer_shapes(config)
    layers = int(ft.freeze_trainable_layers) if ft.use_llama_pro else n_layers  # LLaMA Pro: the expanded blocks
    if ft.finetuning_type == "oft":  # per layer: in/b blocks of b(b-1)/2 (skew-symmetric) = in * (b - 1) / 2
        return sum(_oft_params(shapes[n][0], ft) for n in lora_targets(ft.oft_target)) * layers
    rank = int(ft.lora_rank)
    return sum(rank * (shapes[n][0] + shapes[n][1]) for n in lora_targets(ft.lora_target)) * layers


def _oft_params(in_features: int, ft) -> int:
    block = int(ft.oft_block_size) or max(1, in_features // max(1, int(ft.oft_rank)))
    return in_features * (block - 1) // 2


def _compute_bytes(cfg: RunConfig, cuda: bool) -> int:
    tr = cfg.training
    if tr.get("bf16") or tr.get("fp16") or cfg.model.compute_type in ("bf16", "pure_bf16", "fp16"):
        return 2
    if cfg.model.compute_type == "auto" and (cuda or auto_compute_type(not cfg.finetuning.use_badam)[0] != "fp32"):
        return 2
    return 4


def _optim_bytes(optim: str) -> float:
    optim = (optim or "adamw_torch").lower()
    for key in ("8bit", "adafactor", "sgd", "lion", "adamw", "adam"):
        if key in optim:
            return OPTIM_STATE_BYTES[key]
    return OPTIM_STATE_BYTES["adamw"]


def _batch_tokens(cfg: RunConfig) -> tuple[int, int]:
    """(rows, tokens per row) of the largest batch: packed rows are cutoff_len long; otherwise the longest
    sample may be cutoff_len. Preference stages run chosen and rejected together (two rows per sample); a stage that
    generates its rows (grpo) makes them as long as the sum of its `row_length_keys` (a key left unset: cutoff_len)."""
    batch = int(cfg.training.get("per_device_train_batch_size", 2))
    record = stage_record(cfg.finetuning.stage)
    rows = batch * record.rows_per_sample
    if record.row_length_keys:
        lengths = (getattr(cfg.finetuning, key) for key in record.row_length_keys)
        return rows, sum(int(cfg.data.cutoff_len if n is None else n) for n in lengths)
    return rows, int(cfg.data.cutoff_len)


def _lora_input_copies(cfg: RunConfig, config: dict[str, Any], wb: int, checkpointed: bool) -> float:
    """Bytes per token that LoRA in a 16-bit run adds: peft keeps the adapters in fp32 and casts each adapted
    layer's input to fp32 for them, and backward keeps that copy (with checkpointing, one layer's at a time)."""
    ft = cfg.finetuning
    if not ft.uses_adapter or wb >= 4:  # OFT too: peft rotates the input in the adapter's fp32
        return 0.0
    shapes = layer_shapes(config)
    target = ft.oft_target if ft.finetuning_type == "oft" else ft.lora_target
    per_layer = sum(shapes[name][0] for name in lora_targets(target)) * 4.0
    return per_layer * (1 if checkpointed else config["num_hidden_layers"])


def _lean_activations(cfg: RunConfig, config: dict, cuda: bool) -> bool:
    """Whether SFT's RMSNorm / SwiGLU keep only their inputs (model/lean_activations.py; as train/sft.py decides)."""
    on_cpu = not cuda and booster_name(cfg.model) == "auto"
    return on_cpu and cfg.finetuning.stage == "sft" and config.get("model_type") in LEAN_MODEL_TYPES


def _fused_swiglu_down(cfg: RunConfig) -> bool:
    """Whether the lean SwiGLU runs with its down_proj (model/swiglu_down.py): a plain Linear (full, freeze) or
    vanilla LoRA over one (no dropout, no DoRA, not quantized)."""
    ft = cfg.finetuning
    if ft.finetuning_type in ("full", "freeze"):
        return True
    return ft.finetuning_type == "lora" and not (ft.lora_dropout or ft.use_dora or cfg.model.quantization_bit)


def _trained_logits_only(cfg: RunConfig) -> bool:
    """Whether SFT's collator drops the logits of untrained tokens (as train/sft.py decides)."""
    return cfg.finetuning.stage == "sft" and not cfg.data.train_on_prompt and not needs_whole_logits(cfg)


def _sliced_sft_loss(cfg: RunConfig, config: dict, vision) -> bool:
    """Whether SFT's cross-entropy runs a slice of logits at a time (as train/sft.py decides): the plain loss, a text
    model whose logits are its head's matmul, a head neither sharded (DeepSpeed, FSDP) nor compiled."""
    ft = cfg.finetuning
    if ft.use_dft_loss or ft.use_asft_loss or ft.use_eaft_loss or vision is not None:
        return False
    whole = head_kept_whole(*(cfg.training.get(key) for key in ("deepspeed", "fsdp", "torch_compile")))
    return plain_logit_head(config) and whole


def estimate_memory(cfg: RunConfig, gradient_checkpointing: bool | None = None, cuda: bool | None = None) -> dict:
    """Predicted peak memory of training `cfg`, in MiB, by part. `gradient_checkpointing` None: as configured
    (auto: on only where the run would not fit without it). Reads config.json only; loads no weights.
    Keys: weights, gradients, optimizer, activations, framework, total (all MiB), params, trainable_params,
    batch_rows, seq_len, gradient_checkpointing, device."""
    if cuda is None:
        cuda = has_cuda()
    config = read_model_config(cfg.model.model_name_or_path)
    vision = estimate_vision(cfg) if is_vision_folder(cfg.model.model_name_or_path) else None
    ft = cfg.finetuning
    if vision is None:
        counts = param_counts(config)
    else:  # exact counts by part; "linear" is what QLoRA quantises
        counts = {"linear": vision.linear, "other": sum(vision.parts.values()) - vision.linear}
    total_params = sum(counts.values())
    wb = _compute_bytes(cfg, cuda)
    bits = cfg.model.quantization_bit
    if bits and ft.uses_adapter:
        weights = counts["linear"] * QUANT_BYTES[int(bits)] + (total_params - counts["linear"]) * wb
    else:
        weights = total_params * wb
    trainable = trainable_params(config, ft, counts) if vision is None else vision.trainable
    master = not ft.uses_adapter and keeps_fp32_master_weights(cfg, wb == 2)
    if master:  # full / freeze in 16 bits: the trained weights in fp32, and autocast's 16-bit copy of each
        weights += trainable * (4 - wb + 2)
    grad_bytes = 4 if ft.uses_adapter or master else wb  # peft keeps adapters in fp32
    adapter_weights = trainable * 4 if ft.uses_adapter else 0
    gradients = trainable * grad_bytes
    optimizer = trainable * _optim_bytes(cfg.training.get("optim"))
    stage = stage_record(ft.stage)
    if stage.uses_reference(ft) and not ft.uses_adapter and not ft.ref_model:
        weights += total_params * wb  # a frozen copy of the base as the reference model (ASFT: its anchor)

    if gradient_checkpointing is None:  # as configured; auto (the default) as train/arguments.py resolves it
        value = cfg.training.get("gradient_checkpointing", "auto")
        gradient_checkpointing = needs_checkpointing(cfg, cuda) if value == "auto" else bool(value)
    rows, seq = _batch_tokens(cfg)
    if vision is not None:
        seq += vision.image_tokens  # one image per sample, its tokens on top of the text
    h, i = config["hidden_size"], config.get("intermediate_size") or 4 * config["hidden_size"]
    act_h, act_i = ACT_H, ACT_I
    if _lean_activations(cfg, config, cuda):
        act_h, act_i = ACT_H - SAVED_FEWER_HIDDEN, ACT_I - SAVED_FEWER_INTERMEDIATE
        if _fused_swiglu_down(cfg):
            act_i -= SAVED_FEWER_FUSED
    per_layer = ACT_H_CHECKPOINTED * h if gradient_checkpointing else act_h * h + act_i * i
    n_layers = config["num_hidden_layers"]
    k = int(ft.freeze_trainable_layers)
    # frozen layers below the first trained one need no gradient, so autograd keeps nothing for them
    saved_layers = min(k, n_layers) if ft.finetuning_type == "freeze" and k > 0 else n_layers
    if ft.use_llama_pro and ft.finetuning_type == "freeze" and 0 < k <= n_layers:
        saved_layers = n_layers - (n_layers // k - 1)  # the first expanded block is layer n_layers // k - 1
    layers_act = per_layer * saved_layers
    if gradient_checkpointing:
        layers_act += act_h * h + act_i * i  # one layer's activations, recomputed during backward
    logits, logit_slice = LOGIT_COPIES * config["vocab_size"], 0.0  # per token; one slice (bytes)
    trained_only = _trained_logits_only(cfg)
    if trained_only:
        logits *= TRAINED_SHARE
    if stage.preference_logits or (trained_only and _sliced_sft_loss(cfg, config, vision)):
        logits, logit_slice = 0.0, LOGIT_SLICE_MIB * MIB
        if stage.preference_logits and cuda:
            logit_slice = 2 * TRL_TILE_TOKENS * min(config["vocab_size"], TRL_TILE_VOCAB) * wb
    activations = logit_slice + (
        rows * seq * ((layers_act + logits) * wb + _lora_input_copies(cfg, config, wb, gradient_checkpointing))
    )
    if vision is not None:
        activations += rows * _tower_activations(vision, gradient_checkpointing) * wb
    framework = (FRAMEWORK_MIB_CUDA if cuda else FRAMEWORK_MIB_CPU) * MIB
    if stage.trl_overhead:
        framework += TRL_MIB * MIB
    parts = {
        "weights": weights + adapter_weights,
        "gradients": gradients,
        "optimizer": optimizer,
        "activations": activations,
        "framework": framework,
    }
    out: dict[str, Any] = {k: round(v / MIB, 1) for k, v in parts.items()}
    out["total"] = round(sum(parts.values()) / MIB, 1)
    out.update(
        params=total_params,
        trainable_params=trainable,
        batch_rows=rows,
        seq_len=seq,
        gradient_checkpointing=bool(gradient_checkpointing),
        device="cuda" if cuda else "cpu",
    )
    if vision is not None:
        out.update(
            {f"{part}_params": n for part, n in vision.parts.items()},
            image_tokens=vision.image_tokens,
            images=vision.assumption,
        )
    return out


def _tower_activations(vision: VisionEstimate, checkpointed: bool) -> float:
    """Values per image the vision tower keeps for backward: none while it is frozen (nothing before it needs a
    gradient), else as the language layers, per patch."""
    if not vision.tower_trained:
        return 0.0
    h, i, layers = vision.tower["hidden"], vision.tower["intermediate"], vision.tower["layers"]
    full = ACT_H * h + ACT_I * i
    per_patch = (ACT_H_CHECKPOINTED * h * layers + full) if checkpointed else full * layers
    return vision.patches * per_patch


def available_memory_mib(cuda: bool) -> float | None:
    """Memory a run may use: the GPU's total memory, or MemAvailable on a CPU (None when unknown)."""
    if cuda:
        import torch  # heavy: the estimate reads config.json only, torch only for the GPU's memory

        return torch.cuda.get_device_properties(0).total_memory / MIB
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def needs_checkpointing(cfg: RunConfig, cuda: bool) -> bool:
    """`gradient_checkpointing: auto`: on only when the run would not fit without it (90% of the memory)."""
    available = available_memory_mib(cuda)
    if available is None:
        return False
    return estimate_memory(cfg, gradient_checkpointing=False, cuda=cuda)["total"] > 0.9 * available


def format_estimate(est: dict) -> str:
    rows = [
        ("weights", "model weights (quantised where set) and adapters"),
        ("gradients", "gradients of the trained parameters"),
        ("optimizer", "optimizer states"),
        (
            "activations",
            f"activations, {est['batch_rows']} rows x {est['seq_len']} tokens"
            + (" (checkpointed)" if est["gradient_checkpointing"] else ""),
        ),
        ("framework", "python, torch, transformers" if est["device"] == "cpu" else "CUDA context"),
    ]
    lines = [f"Estimated peak memory ({est['device']}): {est['total']:,.0f} MiB"]
    lines += [f"  {key:<12}{est[key]:>10,.1f} MiB  {text}" for key, text in rows]
    lines.append(f"  parameters {est['params']:,}, trained {est['trainable_params']:,}")
    if "images" in est:
        lines.append(
            f"  vision tower {est['vision_params']:,}, projector {est['projector_params']:,}, "
            f"language model {est['language_params']:,} parameters; images: {est['images']}"
        )
    return "\n".join(lines)
