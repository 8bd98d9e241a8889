"""A rough memory estimate before Start, read from the model folder's safetensors headers (no weights loaded).

weights (at the load precision or quantized) + gradients and AdamW state of the trained parameters + activations
(batch × length × hidden × layers, without gradient checkpointing) + logits. Good to a factor, not a byte: it says
whether a run fits before it is queued, which LLaMA Board does not.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from tuneforge.webui import i18n

GB = 1024**3
_LAYER = re.compile(r"\.layers\.(\d+)\.")


def read_shapes(model_dir: str | Path) -> dict[str, list[int]]:
    """name → shape of every tensor in the folder's *.safetensors files, from their headers only."""
    shapes: dict[str, list[int]] = {}
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with file.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def trained_params(shapes: dict[str, list[int]], cfg: dict) -> int:
    method = cfg.get("finetuning_type", "lora")
    total = sum(_numel(s) for s in shapes.values())
    if method == "full":
        return total
    if method == "freeze":
        layers = sorted({int(m.group(1)) for k in shapes if (m := _LAYER.search(k))})
        n = int(cfg.get("freeze_trainable_layers", 2))
        chosen = set(layers[-n:] if n > 0 else layers[:-n])
        return sum(_numel(s) for k, s in shapes.items() if (m := _LAYER.search(k)) and int(m.group(1)) in chosen)
    rank = int(cfg.get("lora_rank", 8))
    target = str(cfg.get("oft_target" if method == "oft" else "lora_target", "all"))
    wanted = None if target == "all" else [t.strip() for t in target.split(",")]
    count = 0
    for name, shape in shapes.items():
        if len(shape) != 2 or not name.endswith(".weight") or not _LAYER.search(name):
            continue
        module = name[: -len(".weight")].rsplit(".", 1)[-1]
        if wanted is None or module in wanted:
            count += _oft_params(shape[1], cfg) if method == "oft" else rank * (shape[0] + shape[1])
    return count


def _oft_params(in_features: int, cfg: dict) -> int:
    """OFT: in / b skew-symmetric blocks of b (b - 1) / 2 parameters (b = oft_block_size, or in / oft_rank)."""
    block = int(cfg.get("oft_block_size", 32)) or max(1, in_features // max(1, int(cfg.get("oft_rank", 0))))
    return in_features * (block - 1) // 2


def estimate(cfg: dict) -> dict | None:
    """Bytes by part, or None when the model is not a local folder with safetensors files."""
    path = cfg.get("model_name_or_path")
    if not path or not Path(path).is_dir():
        return None
    shapes = read_shapes(path)
    conf_file = Path(path) / "config.json"
    if not shapes or not conf_file.is_file():
        return None
    conf = json.loads(conf_file.read_text(encoding="utf-8"))
    params = sum(_numel(s) for s in shapes.values())
    trained = trained_params(shapes, cfg)
    bits = cfg.get("quantization_bit")
    compute = str(cfg.get("compute_type", "auto"))
    half = compute in ("bf16", "fp16", "pure_bf16") or (compute == "auto" and _gpu())
    width = bits / 8 if bits else (2 if half else 4)
    weights = params * width
    optim = trained * (4 + 8 + (4 if half else 0))  # gradient + AdamW m, v (+ fp32 master copy)
    batch = int(cfg.get("per_device_train_batch_size", 2))
    length = int(cfg.get("cutoff_len", 2048))
    hidden = int(conf.get("hidden_size", 0))
    layers = int(conf.get("num_hidden_layers", 0))
    vocab = int(conf.get("vocab_size", 0))
    act_width = 2 if half else 4
    activations = batch * length * (hidden * layers * 18 * act_width + vocab * 4 * 2)
    return {
        "weights": weights,
        "optim": optim,
        "act": activations,
        "total": weights + optim + activations,
        "params": params,
        "trainable": trained,
    }


def _gpu() -> bool:
    try:
        import torch  # torch: only to tell whether a GPU is there

        return torch.cuda.is_available()
    except ImportError:
        return False


def _human(n: float) -> str:
    if n >= GB:
        return f"{n / GB:.2f} GB"
    return f"{n / 1024**2:.1f} MB"


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def estimate_text(cfg: dict, lang: str) -> str:
    try:
        est = estimate(cfg)
    except (OSError, ValueError, KeyError, struct.error):
        return ""
    if est is None:
        return ""
    return i18n.text(
        "msg_memory",
        lang,
        total=f"{est['total'] / GB:.2f}",
        weights=_human(est["weights"]),
        optim=_human(est["optim"]),
        act=_human(est["act"]),
        params=_count(est["params"]),
        trainable=_count(est["trainable"]),
    )
