"""Finetuning group: the stage, the method (full / freeze / lora / oft) and their settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt
from tuneforge.config.model_args import QuantizationBits
from tuneforge.config.stages import STAGE_NAMES

PENDING = ("not implemented in this version", "remove the key")
RATIO_BADAM = (
    "belongs to BAdam's ratio mode, which is refused: its sparse gradients break the Trainer's gradient-norm step",
    "use badam_mode: layer (badam_switch_mode / badam_switch_interval)",
)

Stage = Literal[STAGE_NAMES]  # the stage records (config/stages.py); one recipe each: train/<stage>.py
Method = Literal["full", "freeze", "lora", "oft"]
ADAPTER_METHODS = ("lora", "oft")  # peft adapters: saved as adapter folders, loaded with adapter_name_or_path


@dataclass
class FinetuningArguments:
    stage: Stage = opt("sft", "Training stage.")
    finetuning_type: Method = opt("lora", "Which weights are trained.")
    # freeze
    freeze_trainable_layers: int = opt(
        2, "Freeze: train the last n layers (positive) or the first n layers (negative)."
    )
    freeze_trainable_modules: str = opt(
        "all", "Freeze: module names inside those layers to train (comma separated, or all)."
    )
    freeze_extra_modules: str | None = opt(
        None, "Freeze: modules outside the layers to train too (e.g. embed_tokens,lm_head)."
    )
    # lora
    lora_rank: int = opt(8, "LoRA rank.")
    lora_alpha: int | None = opt(None, "LoRA alpha (scale = alpha / rank). Default: rank * 2.")
    lora_dropout: float = opt(0.0, "Dropout on the LoRA input.")
    lora_target: str = opt("all", "Modules that get LoRA, comma separated, or all (every linear layer but the head).")
    additional_target: str | None = opt(
        None, "Modules trained in full and saved with the adapter (e.g. embed_tokens,lm_head)."
    )
    loraplus_lr_ratio: float | None = opt(None, "LoRA+: learning-rate ratio of B to A.")
    use_rslora: bool = opt(False, "Rank-stabilised LoRA scaling.")
    use_dora: bool = opt(False, "Weight-decomposed LoRA (DoRA).")
    pissa_init: bool = opt(False, "Initialise LoRA with PiSSA.")
    pissa_iter: int = opt(16, "PiSSA: iterations of the fast SVD (-1: exact SVD, slower).")
    pissa_convert: bool = opt(
        False, "PiSSA: also save the trained adapter converted to a plain LoRA (output_dir/pissa_converted)."
    )
    loraplus_lr_embedding: float = opt(1e-6, "LoRA+: learning rate of the LoRA B matrices of embedding layers.")
    create_new_adapter: bool = opt(False, "Train a new adapter on top of the given one.")
    # memory-saving optimizers for full fine-tuning (need their packages: galore-torch, apollo-torch, badam)
    use_galore: bool = opt(False, "GaLore: project the gradients of linear layers to low rank (full fine-tuning).")
    galore_target: str = opt("all", "GaLore: linear modules to project, comma separated, or all (inside the layers).")
    galore_rank: int = opt(16, "GaLore: rank of the gradient projection.")
    galore_update_interval: int = opt(200, "GaLore: steps between updates of the projection.")
    galore_scale: float = opt(2.0, "GaLore: scale of the projected update.")
    galore_proj_type: Literal["std", "reverse_std", "right", "left", "full"] = opt("std", "GaLore: projection type.")
    galore_layerwise: bool = opt(False, "GaLore: update layer by layer during the backward pass (saves memory).")
    use_apollo: bool = opt(False, "APOLLO: AdamW-like updates with low-rank auxiliary states (full fine-tuning).")
    apollo_target: str = opt("all", "APOLLO: linear modules to apply it to, comma separated, or all.")
    apollo_rank: int = opt(16, "APOLLO: rank of the auxiliary space.")
    apollo_update_interval: int = opt(200, "APOLLO: steps between updates of the projection.")
    apollo_scale: float = opt(32.0, "APOLLO: scale of the update.")
    apollo_proj: Literal["random", "svd"] = opt("random", "APOLLO: projection.")
    apollo_scale_type: Literal["channel", "tensor"] = opt("channel", "APOLLO: scaling granularity.")
    apollo_layerwise: bool = opt(False, "APOLLO: update layer by layer during the backward pass.")
    use_badam: bool = opt(False, "BAdam: train one block of layers at a time (full fine-tuning).")
    badam_mode: Literal["layer", "ratio"] = opt(
        "layer", "BAdam: blocks of whole layers (LLaMA-Factory's ratio mode is refused here)."
    )
    badam_start_block: int | None = opt(None, "BAdam (layer): the block to start with.")
    badam_switch_mode: Literal["ascending", "descending", "random", "fixed"] = opt(
        "ascending", "BAdam (layer): order of the blocks."
    )
    badam_switch_interval: int = opt(50, "BAdam: steps before switching to the next block.")
    badam_verbose: int = opt(0, "BAdam: 0 quiet, 1 block switches, 2 also trainable parameters.")
    badam_update_ratio: float = opt(
        0.05, "BAdam (ratio): fraction of each matrix updated per step.", refused=RATIO_BADAM
    )
    badam_mask_mode: Literal["adjacent", "scatter"] = opt(
        "adjacent", "BAdam (ratio): trainable entries adjacent or scattered.", refused=RATIO_BADAM
    )
    apollo_proj_type: Literal["std", "right", "left"] = opt("std", "APOLLO: projection type.")
    apollo_scale_front: bool = opt(
        False, "APOLLO: scale the update (sqrt(apollo_scale)) before the norm-growth limiter."
    )
    # other optimizers
    use_muon: bool = opt(False, "Muon (torch.optim.Muon) for the 2-D weights inside the layers, AdamW for the rest.")
    use_adam_mini: bool = opt(
        False, "Adam-mini (adam-mini package): one learning rate per parameter block (less memory); full / freeze."
    )
    # LLaMA Pro, OFT
    use_llama_pro: bool = opt(
        False,
        "LLaMA Pro: train only the expanded blocks of a model made by `tuneforge llama-pro` (freeze: those layers;"
        " lora / oft: adapters on those layers only); freeze_trainable_layers = the number of blocks added.",
    )
    oft_rank: int = opt(0, "OFT: number of orthogonal blocks per layer (0: set by oft_block_size; give one of them).")
    oft_block_size: int = opt(
        32, "OFT: size of each orthogonal block (0: set by oft_rank); rounded to a divisor of each layer's width."
    )
    oft_target: str = opt(
        "all", "OFT: modules that get OFT, comma separated, or all (every linear layer but the head)."
    )
    module_dropout: float = opt(0.0, "OFT: multiplicative dropout: probability of setting an OFT block to identity.")
    # SFT loss variants
    use_dft_loss: bool = opt(False, "SFT loss DFT: weight each token's loss by its (detached) probability.")
    use_asft_loss: bool = opt(
        False, "SFT loss ASFT: DFT plus asft_alpha x KL to an anchor (ref_model, or the starting model)."
    )
    asft_alpha: float = opt(0.1, "ASFT: weight of the KL anchor.")
    use_eaft_loss: bool = opt(
        False, "SFT loss EAFT: weight each token's loss by (top-20 entropy / 3) ** eaft_alpha (detached)."
    )
    eaft_alpha: float = opt(1.0, "EAFT: exponent of the entropy weight.")
    early_stopping_steps: int | None = opt(
        None, "Stop after this many evaluations without improvement of metric_for_best_model (default: eval loss)."
    )
    include_effective_tokens_per_second: bool = opt(
        False, "Report effective (non-padding) tokens per second in the results (effective_tokens_per_sec)."
    )

    # preference and rl stages (see the stage issue)
    pref_beta: float = opt(0.1, "DPO/KTO beta.")
    pref_ftx: float = opt(0.0, "SFT loss weight added to the preference loss.")
    pref_loss: Literal["sigmoid", "ipo", "hinge", "orpo", "simpo"] = opt("sigmoid", "DPO loss.")
    simpo_gamma: float = opt(0.5, "SimPO target reward margin.")
    kto_chosen_weight: float = opt(1.0, "KTO weight of desirable samples.")
    kto_rejected_weight: float = opt(1.0, "KTO weight of undesirable samples.")
    ref_model: str | None = opt(None, "Reference model for DPO/KTO/PPO, and SFT's ASFT anchor (default: the base).")
    reward_model: str | None = opt(None, "Reward model (a run of stage rm) for PPO and GRPO.")
    dpo_label_smoothing: float = opt(
        0.0, "DPO (sigmoid): probability that a preference label is flipped (robust DPO), in [0, 0.5)."
    )
    ref_model_adapters: str | None = opt(None, "LoRA adapter(s) applied to ref_model, comma separated.")
    reward_model_adapters: str | None = opt(None, "LoRA adapter(s) applied to reward_model, comma separated.")
    reward_model_type: Literal["full", "lora", "api"] = opt(
        "full",
        "PPO reward model kind: full (a separate model: an rm run folder), lora (the LoRA adapter of an rm run on"
        " the policy's own base; lora policies only), api (reward_model is the URL of a reward server: POST"
        ' {"model", "messages": [texts]} -> {"scores": [...]}).',
    )
    pref_bco_weight: float = opt(
        0.0, "DPO: weight w of the BCO loss, mixed as (dpo + w * bco) / (1 + w) (sigmoid / ipo / hinge)."
    )
    ld_alpha: float | None = opt(
        None,
        "LD-DPO: weight in [0, 1] of the policy's log-probabilities of the tokens past the shorter answer of a pair.",
    )
    ref_model_quantization_bit: QuantizationBits | None = opt(
        None, "Load ref_model quantized to this many bits (quantization_method bnb / hqq)."
    )
    reward_model_quantization_bit: QuantizationBits | None = opt(
        None, "Load the reward model (reward_model_type full) quantized to this many bits with bitsandbytes."
    )
    ppo_buffer_size: int = opt(1, "PPO: rollout batches collected before each round of updates.")
    ppo_epochs: int = opt(4, "PPO: optimisation passes over each rollout buffer.")
    ppo_score_norm: bool = opt(False, "PPO: normalise the reward-model scores (running mean and std).")
    ppo_target: float = opt(6.0, "PPO: target KL for the adaptive KL coefficient.")
    ppo_whiten_rewards: bool = opt(False, "PPO: whiten the per-token rewards before computing advantages.")
    # grpo (TRL's GRPOTrainer; temperature / top_p are the generation keys, default 1.0 for grpo)
    num_generations: int = opt(8, "GRPO: completions sampled per prompt (the group its advantages compare within).")
    max_prompt_length: int | None = opt(
        None, "GRPO: longest prompt in tokens; a longer one keeps its end (default: cutoff_len)."
    )
    max_completion_length: int = opt(512, "GRPO: longest completion in tokens.")
    num_iterations: int = opt(
        1, "GRPO: optimisation steps per batch of generations (mu; > 1 reuses them, clipped off-policy)."
    )
    beta: float = opt(0.0, "GRPO: KL coefficient to the reference model (0: no reference model is loaded).")
    epsilon: float = opt(0.2, "GRPO: clipping range of the probability ratio (lower bound 1 - epsilon).")
    epsilon_high: float | None = opt(
        None, "GRPO: upper clipping bound 1 + epsilon_high (DAPO's clip-higher: 0.28; default: epsilon)."
    )
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = opt(
        "dapo",
        "GRPO loss normalisation: grpo (per sequence, then mean), dapo (all tokens of the batch), dr_grpo (by a"
        " constant: max_completion_length), bnpo (tokens of the local batch).",
    )
    importance_sampling_level: Literal["token", "sequence"] = opt(
        "token", "GRPO: importance ratios per token, or per sequence (GSPO)."
    )
    scale_rewards: Literal["group", "batch", "none"] = opt(
        "group", "GRPO: divide advantages by the reward std of the group, of the batch, or not (Dr. GRPO: none)."
    )
    mask_truncated_completions: bool = opt(
        False, "GRPO: leave completions cut at max_completion_length out of the loss (DAPO)."
    )
    reward_funcs: str | None = opt(
        None,
        "GRPO: reward functions, comma separated: built-ins accuracy, format, length, tool_call, or"
        " my_rewards.py:function (a reward_model is added as one more, named reward_model).",
    )
    reward_weights: str | None = opt(
        None, "GRPO: one weight per reward function (reward_model last), comma separated (default: all 1)."
    )
    length_reward_target: int | None = opt(
        None, "GRPO length reward: no penalty up to this length, -1 at twice it (default: max_completion_length / 2)."
    )
    length_reward_unit: Literal["tokens", "chars"] = opt("tokens", "GRPO length reward: count tokens or characters.")
    use_vllm: bool = opt(False, "GRPO: generate the rollouts with vLLM (needs vllm and a CUDA GPU).")
    vllm_mode: Literal["colocate", "server"] = opt(
        "colocate", "GRPO with use_vllm: vLLM inside the training process, or a `trl vllm-serve` server."
    )
    # run behaviour
    overwrite_output_dir: bool = opt(
        False,
        "Train into an output_dir that holds earlier runs or other files: what earlier runs wrote there is removed,"
        " nothing else.",
    )
    plot_loss: bool = opt(True, "Save training_loss.png at the end.")
    compute_accuracy: bool = opt(False, "Report token accuracy during evaluation.")
    disable_shuffling: bool = opt(False, "Keep the dataset order.")

    @property
    def uses_adapter(self) -> bool:
        """LoRA or OFT: a peft adapter on a frozen base (saved as an adapter folder, merged on export)."""
        return self.finetuning_type in ADAPTER_METHODS

    @property
    def effective_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else self.lora_rank * 2
