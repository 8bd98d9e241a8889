"""Supervised fine-tuning: templated conversations, loss on the responses, HF Trainer underneath."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# transformers at the top: train/run.py imports a stage's recipe only when that stage runs.
from transformers import Trainer

from tuneforge.data.collate import needs_whole_logits, sft_collator, supports_trained_logits
from tuneforge.data.loader import get_sft_datasets
from tuneforge.data.packing import pack_sft_sets
from tuneforge.data.vision_collate import with_image_batches
from tuneforge.evaluate.accuracy import accuracy_kwargs
from tuneforge.model.boosters import booster_name
from tuneforge.model.lean_activations import use_lean_activations
from tuneforge.model.long_step_checkpointing import LONG_STEP_FACTOR, checkpoint_long_steps, typical_step_tokens
from tuneforge.model.varlen_attention import use_varlen_attention, varlen_attention_fits
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import StageInputs, load_tokenizer_and_template, load_trainable_model, seed_of, train_stage
from tuneforge.train.preference import load_ref_model
from tuneforge.train.sft_losses import sft_loss_of, sft_loss_trainer_class
from tuneforge.train.trained_token_loss import sliced_loss_applies, use_sliced_loss
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

logger = get_logger(__name__)


def load_for_training(cfg: RunConfig):
    """Tokenizer, template, datasets and the trainable model: everything that can fail on bad input."""
    tokenizer, template = load_tokenizer_and_template(cfg)
    train_set, eval_set = get_sft_datasets(cfg.data, template, tokenizer, seed=seed_of(cfg))
    train_set, eval_set = pack_sft_sets(cfg.data, train_set, eval_set)  # packing / neat_packing
    model = load_trainable_model(cfg, tokenizer)  # seeded: adapter initialisation is random too
    return tokenizer, template, train_set, eval_set, model


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    inputs = StageInputs(*load_for_training(cfg))
    model = inputs.model
    args = build_training_arguments(cfg, str(plan.path))
    loss = sft_loss_of(cfg)  # DFT / ASFT / EAFT, or None: cross-entropy
    anchor = load_ref_model(cfg, inputs.tokenizer) if loss and loss.anchored else None  # None for LoRA: adapter off
    slim = all(supports_trained_logits(m) for m in (model, anchor) if m is not None) and not needs_whole_logits(cfg)
    padding_free = slim and loss is None and padding_free_applies(cfg, model, args)
    if padding_free:  # every batch one row of samples, each attending to itself: no pad token computed
        use_varlen_attention(model)
        logger.info("padding-free batches: each sample attends to itself (sdpa_varlen; flash_attn: sdpa pads them)")
    if args.use_cpu and booster_name(cfg.model) == "auto":  # on a GPU, Liger's kernels (booster: liger_kernel)
        logger.debug("lean activations: %d RMSNorm / SwiGLU modules", use_lean_activations(model))
    attn = model.config._attn_implementation
    collator = sft_collator(inputs.tokenizer, cfg.data, attn, args.use_cpu, slim, padding_free)
    collator = with_image_batches(collator, inputs.template)  # a vision model's rows: + their pixel values
    if slim and loss is None and sliced_loss_applies(model, args):  # cross-entropy a slice of logits at a time
        use_sliced_loss(model)
    rows = args.per_device_train_batch_size
    typical = typical_step_tokens(inputs.train_set, rows) if long_step_checkpointing_applies(cfg, args) else None
    if typical and checkpoint_long_steps(model, LONG_STEP_FACTOR * typical):
        logger.info(
            "activation checkpointing for steps of over %d tokens only (%dx a typical step's; "
            "gradient_checkpointing: false keeps every step's activations)",
            LONG_STEP_FACTOR * typical,
            LONG_STEP_FACTOR,
        )
    losses = {} if loss is None else {"sft_loss": loss, "anchor": anchor}
    trainer_cls = Trainer if loss is None else sft_loss_trainer_class()
    # + what every stage's trainer gets: JSONL log, StopOnSignal (Abort saves a checkpoint), the method's callbacks,
    # LoRA+ / GaLore optimizers; compute_accuracy: eval_accuracy from argmax tokens (tuneforge.evaluate.accuracy)
    return train_stage(trainer_cls, cfg, plan, inputs, args, data_collator=collator, **losses, **accuracy_kwargs(cfg))


def padding_free_applies(cfg: RunConfig, model, args) -> bool:
    """Padding-free batches through sdpa_varlen: on a CPU (GPUs get flash-attention), with the default attention
    (`flash_attn: auto`, no booster), a model family it is tested on, padding that is not trained
    (`ignore_pad_token_for_loss`), and batches that are not sliced along dim 0 (streaming) or compiled."""
    if not args.use_cpu or cfg.model.flash_attn != "auto" or booster_name(cfg.model) != "auto":
        return False
    if not cfg.data.ignore_pad_token_for_loss or cfg.data.streaming or args.torch_compile:
        return False
    return varlen_attention_fits(model.config)  # a PeftModel reads its base model's config


def long_step_checkpointing_applies(cfg: RunConfig, args) -> bool:
    """`gradient_checkpointing: auto` resolved off (the run fits): the long steps alone are checkpointed
    (model/long_step_checkpointing.py). Not under DeepSpeed or FSDP (their own checkpointing and sharded weights:
    a ZeRO-3 recompute gathers every layer's weights again), nor with `torch_compile` (a switch would recompile)."""
    given = {key: cfg.training.get(key, "auto") for key in ("gradient_checkpointing", "activation_checkpointing")}
    if any(value != "auto" for value in given.values()) or cfg.model.disable_gradient_checkpointing:
        return False
    if getattr(args, "activation_checkpointing", None) or getattr(args, "gradient_checkpointing", None):
        return False
    return not args.deepspeed and not args.fsdp and not args.torch_compile
