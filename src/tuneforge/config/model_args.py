"""Model group: where the weights come from and how they are loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

Dtype = Literal["auto", "bf16", "fp16", "fp32", "pure_bf16"]
QuantizationBits = Literal[8, 4]
GgufType = Literal["f32", "f16", "q8_0"]  # what export/gguf_file.py writes


@dataclass
class ModelArguments:
    model_name_or_path: str | None = opt(None, "Local model folder (e.g. models/Qwen2.5-7B-Instruct) or a hub id.")
    adapter_name_or_path: str | None = opt(
        None, "LoRA adapter folder(s), comma separated; loaded on top of the base model in order."
    )
    cache_dir: str | None = opt(None, "Where hub downloads are cached.")
    model_revision: str = opt("main", "Branch, tag or commit of a hub model.")
    hf_hub_token: str | None = opt(None, "Token for private hub models (masked in saved configs).")
    trust_remote_code: bool = opt(False, "Run Python code shipped with the model folder. Off unless set.")
    use_fast_tokenizer: bool = opt(True, "Use the fast (Rust) tokenizer.")
    split_special_tokens: bool = opt(False, "Tokenize special-token strings as plain text.")
    resize_vocab: bool = opt(False, "Resize the embeddings to the tokenizer's vocabulary.")
    low_cpu_mem_usage: bool = opt(True, "Load weights lazily to lower peak memory.")
    compute_type: Dtype = opt(
        "auto",
        "Training precision. auto: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on a CPU. On a CPU with"
        " native bf16 (AMX / AVX512-BF16: `tuneforge env` says) bf16 trains ~1.7x faster in less memory.",
    )
    infer_dtype: Dtype = opt("auto", "Precision for chat, API and evaluation.")
    flash_attn: Literal["auto", "sdpa", "eager", "fa2", "disabled"] = opt(
        "auto", "Attention implementation: auto (sdpa), sdpa, eager, fa2."
    )
    rope_scaling: Literal["linear", "dynamic", "yarn", "llama3"] | None = opt(
        None, "Extend the context: linear or dynamic RoPE scaling (factor from cutoff_len)."
    )
    booster: Literal["auto", "flashattn2", "unsloth", "liger_kernel"] = opt(
        "auto", "Speed-up kernels: auto, flashattn2, unsloth, liger_kernel."
    )
    enable_liger_kernel: bool = opt(False, "Use Liger kernels (LLaMA-Factory key; same as booster: liger_kernel).")
    use_unsloth: bool = opt(False, "Use Unsloth (LLaMA-Factory key; same as booster: unsloth).")
    quantization_bit: QuantizationBits | None = opt(None, "Load the base quantized to this many bits (QLoRA).")
    quantization_method: Literal["bnb", "hqq", "eetq"] = opt("bnb", "Quantization backend.")
    quantization_type: Literal["nf4", "fp4"] = opt("nf4", "4-bit data type for bitsandbytes.")
    double_quantization: bool = opt(True, "Quantize the quantization constants too (bitsandbytes 4-bit).")
    infer_backend: Literal["huggingface", "vllm", "sglang"] = opt("huggingface", "Inference engine for chat and API.")
    print_param_status: bool = opt(False, "Print every parameter's trainable state at load.")
    train_from_scratch: bool = opt(False, "Initialise the weights randomly instead of loading them.")
    export_dir: str | None = opt(None, "Where `tuneforge export` writes the merged model.")
    export_size: float = opt(5, "Largest shard of the exported model, in GB (fractions allowed: 0.5).")
    export_device: Literal["cpu", "auto"] = opt("cpu", "Device used to merge for export.")
    export_quantization_bit: QuantizationBits | None = opt(
        None, "Quantize the exported model to this many bits with GPTQ (needs a CUDA GPU and gptqmodel)."
    )
    export_quantization_dataset: str | None = opt(None, "Calibration data for export quantization.")
    export_legacy_format: bool = opt(False, "Save .bin files instead of safetensors (refused: safetensors only).")
    export_format: Literal["safetensors", "gguf"] = opt(
        "safetensors",
        "What `tuneforge export` writes: a Hugging Face folder (safetensors) or one GGUF file + Ollama Modelfile.",
    )
    export_gguf_type: GgufType = opt("f16", "Weight type of the GGUF file (export_format: gguf).")
    export_overwrite: bool = opt(
        False, "Export into an export_dir that holds other files: they stay (a previous export is replaced)."
    )
    export_quantization_method: Literal["gptq"] = opt("gptq", "Export quantization backend.")
    export_quantization_nsamples: int = opt(128, "Calibration samples for export quantization.")
    export_quantization_maxlen: int = opt(1024, "Longest calibration sample, in tokens, for export quantization.")
