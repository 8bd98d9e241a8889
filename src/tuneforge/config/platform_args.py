"""Platform group: LLaMA-Factory's cluster and vendor back-ends (Ray, Megatron-Core, HyperParallel, FP8,
KTransformers, its v1 kernels) and the vLLM / SGLang engine keys. Each key names what it needs; those that cannot run
here are refused in one line when set away from their default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

MCA = (
    "Megatron-Core training (LLaMA-Factory's mcore_adapter) needs CUDA GPUs and the mcore_adapter package; TuneForge"
    " does not ship a Megatron back-end",
    "use deepspeed or fsdp for large models",
)
HYPER = (
    "HyperParallel is LLaMA-Factory's own FSDP/TP back-end (Ascend NPUs and CUDA); TuneForge does not ship it",
    "use fsdp (fsdp: full_shard) or deepspeed",
)
FP8 = (
    "FP8 training needs a CUDA GPU of compute capability 8.9 or newer (Ada / Hopper) with torchao or"
    " transformer-engine; this version trains in bf16 / fp16 / fp32",
    "remove the fp8 keys, or set compute_type: bf16",
)
KT = (
    "KTransformers MoE training needs a CUDA GPU, an AMX CPU and the ktransformers package; TuneForge does not ship it",
    "remove the kt keys; train MoE models with LoRA on the transformers back-end",
)
V1 = (
    "use_v1_kernels are LLaMA-Factory v1's fused NPU / CUDA kernels, which TuneForge does not ship",
    "use booster: liger_kernel or flashattn2 on a CUDA GPU",
)
VLLM = (
    "the vLLM engine is not wired in yet (infer_backend: vllm is refused)",
    "remove the vllm keys; chat and the API use the transformers engine",
)
SGLANG = (
    "the SGLang engine is not wired in yet (infer_backend: sglang is refused)",
    "remove the sglang keys; chat and the API use the transformers engine",
)


@dataclass
class PlatformArguments:
    ray_num_workers: int = opt(
        1,
        "Ray: number of workers (one process each, one GPU each when the Ray cluster has GPUs, else one CPU). Above 1,"
        " or with USE_RAY=1, `tuneforge train` runs on Ray workers instead of one process.",
    )
    ray_init_kwargs: dict | str | None = opt(
        None,
        "Ray: keyword arguments of ray.init (mapping or JSON), e.g. address, num_cpus, runtime_env. Default: a local"
        " Ray instance (or the cluster RAY_ADDRESS names).",
    )
    master_addr: str | None = opt(
        None,
        "Ray: address of the process-group master, a node of the Ray cluster (rank 0 runs there). Default: the"
        " head node.",
    )
    master_port: str | None = opt(None, "Ray: port of the process-group master. Default: a free port.")
    use_mca: bool = opt(False, "Train through Megatron-Core (LF: mcore_adapter).", refused=MCA)
    use_hyper_parallel: bool = opt(False, "Train through LF's HyperParallel FSDP / TP back-end.", refused=HYPER)
    hyper_parallel_args: str | None = opt(None, "JSON file of HyperParallel strategy arguments.", refused=HYPER)
    fp8: bool = opt(False, "FP8 mixed precision through accelerate (Hopper-class GPUs).", refused=FP8)
    fp8_backend: str = opt("auto", "FP8 back-end: auto, torchao, te, msamp.", refused=FP8)
    fp8_enable_fsdp_float8_all_gather: bool = opt(False, "FP8 all-gather in FSDP2.", refused=FP8)
    use_kt: bool = opt(False, "KTransformers AMX MoE back-end for SFT.", refused=KT)
    kt_weight_path: str | None = opt(None, "KTransformers: pre-quantized INT8 expert weights (.kt).", refused=KT)
    kt_expert_checkpoint_path: str | None = opt(None, "KTransformers: expert checkpoint for conversion.", refused=KT)
    kt_use_lora_experts: bool | None = opt(None, "KTransformers: GPU-side LoRA experts.", refused=KT)
    kt_lora_expert_num: int | None = opt(None, "KTransformers: number of GPU-side LoRA experts.", refused=KT)
    kt_lora_expert_intermediate_size: int | None = opt(
        None, "KTransformers: intermediate size of the LoRA experts.", refused=KT
    )
    use_v1_kernels: bool | None = opt(False, "LLaMA-Factory v1's high-performance kernels.", refused=V1)
    vllm_maxlen: int = opt(4096, "vLLM: longest prompt + response.", refused=VLLM)
    vllm_gpu_util: float = opt(0.7, "vLLM: fraction of GPU memory to use.", refused=VLLM)
    vllm_enforce_eager: bool = opt(False, "vLLM: no CUDA graphs.", refused=VLLM)
    vllm_max_lora_rank: int = opt(32, "vLLM: largest LoRA rank served.", refused=VLLM)
    vllm_config: dict | str | None = opt(None, "vLLM: engine arguments (mapping or JSON).", refused=VLLM)
    sglang_maxlen: int = opt(4096, "SGLang: longest prompt + response.", refused=SGLANG)
    sglang_mem_fraction: float = opt(0.7, "SGLang: fraction of GPU memory to use.", refused=SGLANG)
    sglang_tp_size: int = opt(-1, "SGLang: tensor-parallel size.", refused=SGLANG)
    sglang_config: dict | str | None = opt(None, "SGLang: engine arguments (mapping or JSON).", refused=SGLANG)
    sglang_lora_backend: Literal["triton", "flashinfer"] = opt(
        "triton", "SGLang: kernels of the LoRA modules.", refused=SGLANG
    )
