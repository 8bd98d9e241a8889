"""`tuneforge env`: versions, devices and what the hardware supports, for bug reports."""

from __future__ import annotations

import importlib.metadata
import os
import platform

from tuneforge import __version__
from tuneforge.utils.devices import auto_compute_type, cpu_bf16_features

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "tokenizers",
    "safetensors",
    "bitsandbytes",
    "hqq",
    "deepspeed",
    "gradio",
    "fastapi",
    "vllm",
    "flash-attn",
    "liger-kernel",
)


def collect() -> dict[str, str]:
    info = {"tuneforge": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    info["cpu cores"] = str(os.cpu_count())
    features = cpu_bf16_features()
    info["cpu native bf16"] = f"yes ({', '.join(features)})" if features else "no (bf16 is emulated: use fp32)"
    import torch  # heavy: only `tuneforge env` reports it

    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info[f"cuda:{i}"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
        info["cuda bf16"] = "yes" if torch.cuda.is_bf16_supported() else "no"
    else:
        info["cuda"] = "not available (training runs on the CPU)"
    chosen, why = auto_compute_type()
    info["compute_type auto"] = f"{chosen} ({why})"
    return info


def format_env() -> str:
    info = collect()
    width = max(map(len, info))
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in info.items())
