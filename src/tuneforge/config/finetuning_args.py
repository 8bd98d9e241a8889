"""Finetuning group: the stage, the method (full / freeze / lora) and their settings."""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.config.fields import opt

STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto")
METHODS = ("full", "freeze", "lora")


@dataclass
class FinetuningArguments:
    stage: str = opt("sft", "Training stage.", STAGES)
    finetuning_type: str = opt("lora", "Which weights are trained.", METHODS)
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
    create_new_adapter: bool = opt(False, "Train a new adapter on top of the given one.")
    # preference and rl stages (see the stage issue)
    pref_beta: float = opt(0.1, "DPO/KTO beta.")
    pref_ftx: float = opt(0.0, "SFT loss weight added to the preference loss.")
    pref_loss: str = opt("sigmoid", "DPO loss.", ("sigmoid", "ipo", "hinge", "orpo", "simpo"))
    simpo_gamma: float = opt(0.5, "SimPO target reward margin.")
    kto_chosen_weight: float = opt(1.0, "KTO weight of desirable samples.")
    kto_rejected_weight: float = opt(1.0, "KTO weight of undesirable samples.")
    ref_model: str | None = opt(None, "Reference model for DPO/KTO/PPO (default: the base).")
    reward_model: str | None = opt(None, "Reward model (a run of stage rm) for PPO.")
    # run behaviour
    overwrite_output_dir: bool = opt(False, "Allow training into an output_dir that holds another run.")
    plot_loss: bool = opt(True, "Save training_loss.png at the end.")
    compute_accuracy: bool = opt(False, "Report token accuracy during evaluation.")
    disable_shuffling: bool = opt(False, "Keep the dataset order.")

    @property
    def effective_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else self.lora_rank * 2
