"""Model group: where the weights come from and how they are loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

PENDING = ("not implemented in this version", "remove the key")

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
    resize_vocab: bool = opt(
        False,
        "Grow the embeddings (and LM head) to the tokenizer's length, rounded up to 64, new rows initialised by"
        " init_special_tokens; with LoRA they are trained and saved too. On by itself when tokens are added.",
    )
    low_cpu_mem_usage: bool = opt(True, "Load weights lazily to lower peak memory.")
    disable_gradient_checkpointing: bool = opt(
        False, "Never checkpoint activations (LLaMA-Factory's switch; overrides gradient_checkpointing: auto)."
    )
    use_reentrant_gc: bool = opt(
        True,
        "With activation checkpointing: true = torch's reentrant variant, false = the non-reentrant one (unset:"
        " transformers' default).",
    )
    pure_bf16: bool = opt(
        False, "Train purely in bf16, without autocast (LLaMA-Factory's switch; same as compute_type: pure_bf16)."
    )
    upcast_layernorm: bool = opt(
        False,
        "Training: keep the norm layers' weights in fp32 when the model loads in 16 bits (their output keeps the"
        " input's dtype).",
    )
    upcast_lmhead_output: bool = opt(False, "Training: cast the logits (lm_head output) to fp32.")
    add_tokens: str | None = opt(
        None, "Plain tokens to add to the tokenizer (comma separated); the embeddings grow to fit (resize_vocab)."
    )
    add_special_tokens: str | None = opt(
        None, "Special tokens to add to the tokenizer (comma separated); the embeddings grow to fit (resize_vocab)."
    )
    new_special_tokens_config: str | None = opt(
        None,
        "YAML file mapping each new special token to a description, used to initialise its embedding (takes"
        " instead of add_special_tokens).",
    )
    init_special_tokens: Literal["noise_init", "desc_init", "desc_init_w_noise"] = opt(
        "noise_init",
        "How new tokens' embeddings start: noise_init (mean + noise), desc_init (mean of the description's tokens),"
        " desc_init_w_noise (both; the desc_* ones need new_special_tokens_config).",
    )
    model_max_length: int | None = opt(
        None,
        "The tokenizer's model_max_length (saved with the model). Unset: training raises it to cutoff_len, as LF"
        " derives it.",
    )
    moe_aux_loss_coef: float | None = opt(
        None,
        "Mixture-of-experts training: weight of the router's load-balancing loss (router_aux_loss_coef, added to the"
        " loss).",
    )
    use_kv_cache: bool = opt(True, "Use the KV cache when generating (chat, API, predict); training never does.")
    offload_folder: str = opt(
        "offload", "With quantization_device_map: auto, where weights that fit neither GPU nor CPU memory go."
    )
    adapter_folder: str | None = opt(None, "Sub-folder of each adapter_name_or_path that holds the adapter.")
    quantization_device_map: Literal["auto"] | None = opt(
        None,
        "Inference with a bnb 4-bit model: auto spreads it over the CUDA GPUs (refused on a machine without one).",
    )
    shift_attn: bool = opt(
        False,
        "LongLoRA's shift short attention (S^2-Attn).",
        refused=(
            "S^2-Attn patches the Llama attention of transformers 4.45-4.47 only (LLaMA-Factory 0.9.5 refuses it on"
            " newer transformers too)",
            "extend the context with rope_scaling: linear / dynamic / yarn and a longer cutoff_len",
        ),
    )
    mixture_of_depths: Literal["convert", "load"] | None = opt(
        None,
        "Convert the model to mixture-of-depths (MoD), or load a MoD model.",
        refused=(
            "mixture-of-depths needs the MoD package (mixture-of-depth 1.2, 2024), which patches transformers 4.x"
            " model classes and does not import with transformers 5",
            "remove mixture_of_depths",
        ),
    )
    use_unsloth_gc: bool = opt(
        False,
        "Unsloth's gradient checkpointing (activations offloaded to CPU memory).",
        refused=(
            "Unsloth's gradient checkpointing offloads GPU activations to CPU memory: it needs a CUDA GPU and the"
            " unsloth package",
            "use gradient_checkpointing: true",
        ),
    )
    ms_hub_token: str | None = opt(
        None, "ModelScope token for private models (with USE_MODELSCOPE_HUB=1; masked in saved configs)."
    )
    om_hub_token: str | None = opt(
        None,
        "Modelers (openMind) hub token (USE_OPENMIND_HUB=1; masked in saved configs).",
        refused=(
            "the Modelers (openMind) hub is not supported",
            "download the model with the openmind client and set model_name_or_path to its folder",
        ),
    )
    compute_dtype: str | None = opt(
        None,
        "LF's derived compute dtype (LF: do not specify it).",
        refused=("compute_dtype is derived from the precision, not set", "set compute_type: bf16 / fp16 / fp32"),
    )
    device_map: str | dict | None = opt(
        None,
        "LF's derived device map (LF: do not specify it).",
        refused=(
            "device_map is derived: training puts one copy of the model on each process's device",
            "remove it; use torchrun / deepspeed / fsdp to spread a model, quantization_device_map: auto for inference",
        ),
    )
    block_diag_attn: bool = opt(False, "LF's derived switch for attention within each packed sample: neat_packing.")
    compute_type: Dtype = opt(
        "auto",
        "Training precision. auto: bf16 on GPUs that support it, fp16 (with loss scaling) on older GPUs; on a CPU"
        " with native bf16 (AMX / AVX512-BF16: `tuneforge env` says) bf16 autocast (~1.6-1.8x faster; BAdam stays"
        " fp32); fp32 on other CPUs. bf16 / fp16 keep trained weights in fp32 (master weights, as LLaMA-Factory;"
        " pure_bf16: all bf16). The first line of training says what auto chose; TUNEFORGE_CPU_BF16=0 keeps a CPU"
        " on fp32.",
    )
    infer_dtype: Dtype = opt("auto", "Precision for chat, API and evaluation.")
    flash_attn: Literal["auto", "sdpa", "eager", "fa2", "disabled"] = opt(
        "auto",
        "Attention implementation: auto (sdpa; SFT on a CPU: padding-free batches, sdpa per sample), sdpa, eager, fa2.",
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
    infer_batch_size: int = opt(
        32,
        "Replies the huggingface engine decodes together in one batch (the API's concurrent requests, n > 1"
        " choices); 1: one reply at a time, each through generate.",
    )
    print_param_status: bool = opt(
        False,
        "Print every parameter's name, dtype, device and trainable flag once the model is loaded (training: after"
        " the method set what trains; also eval / predict).",
    )
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
    export_quantization_method: Literal["gptq"] = opt(
        "gptq",
        "How export_quantization_bit quantizes the export: gptq (the one backend, as in LLaMA-Factory); a quantized"
        " GGUF is export_format: gguf with export_gguf_type: q8_0.",
    )
    export_quantization_nsamples: int = opt(128, "Calibration samples for export quantization.")
    export_quantization_maxlen: int = opt(1024, "Longest calibration sample, in tokens, for export quantization.")
    export_hub_model_id: str | None = opt(
        None,
        "Hugging Face Hub repo (user/name) that `tuneforge export` pushes the finished export to (created when"
        " missing; token: hf_hub_token, HF_TOKEN or `hf auth login`).",
    )
