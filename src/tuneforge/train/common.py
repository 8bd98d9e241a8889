"""What every stage recipe shares: tokenizer + template, the trainable model, the run folder, the final save."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# torch / transformers at the top: train/run.py imports a stage's recipe only when that stage runs.
import torch
from transformers import set_seed

from tuneforge.data.loader import get_stage_datasets
from tuneforge.data.template import template_for
from tuneforge.data.vision_conversation import VisionEncoding, bind_vision, bound_vision
from tuneforge.model.adapters import adapter_paths, prepare_trainable
from tuneforge.model.loader import load_config, load_model, load_tokenizer
from tuneforge.model.new_tokens import resize_embeddings
from tuneforge.model.param_status import print_param_status
from tuneforge.model.upcast import downcast_frozen, keeps_fp32_master_weights, upcast_trainable
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.model.vlm_files import processor_files, vision_chat_template, write_processor_files
from tuneforge.model.vlm_processor import load_processor
from tuneforge.train.apollo_front import apollo_callbacks
from tuneforge.train.arguments import compute_dtype
from tuneforge.train.callbacks import JsonlLogCallback, StopOnSignal, StopSignals, early_stopping_callbacks
from tuneforge.train.checkpoint import make_resumable
from tuneforge.train.effective_tokens import effective_tokens_per_second
from tuneforge.train.methods import method_callbacks
from tuneforge.train.optim import optimizers_for
from tuneforge.train.plot import plot_loss
from tuneforge.train.preference import drop_ref_adapter
from tuneforge.train.profiler import profiler_callbacks
from tuneforge.train.swanlab_report import swanlab_callbacks
from tuneforge.train.sweep_report import sweep_callbacks
from tuneforge.utils import startup_gc
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

logger = get_logger(__name__)


def load_tokenizer_and_template(cfg: RunConfig):
    """The tokenizer and template; for a vision-language model, the template also carries the model's processor
    (its rows' images are encoded with it: data/vision_conversation.py)."""
    tokenizer = load_tokenizer(cfg.model, cfg.data.cutoff_len)
    template = template_for(cfg.data, tokenizer)
    template.fix_tokenizer(tokenizer)
    if is_vision_config(load_config(cfg.model)) and getattr(template, "mm_plugin", None):
        bind_vision(template, VisionEncoding(load_processor(cfg.model.model_name_or_path), cfg.multimodal))
    return tokenizer, template


def seed_of(cfg: RunConfig) -> int:
    return int(cfg.training.get("seed", 42))


def load_trainable_model(cfg: RunConfig, tokenizer, head: str = "lm"):
    """The base model with the method's trainable weights (full / freeze / LoRA). `head="score"`: a reward model
    (sequence classification, one output) whose new score head is always trained and saved with a LoRA adapter."""
    set_seed(seed_of(cfg))  # adapter (and score head) initialisation is random too: same seed, same run
    dtype = compute_dtype(cfg)
    ft = cfg.finetuning
    master = keeps_fp32_master_weights(cfg, dtype in (torch.bfloat16, torch.float16))
    # full fine-tuning trains (nearly) every weight: loaded in fp32 at once, a fp32 checkpoint keeps its bits and no
    # 16-bit copy is made to be replaced (100m on a CPU: 590 MiB less at train begin, 265 MiB less at the peak)
    whole = master and ft.finetuning_type == "full"
    model = load_model(cfg.model, torch.float32 if whole else dtype, cfg.data.cutoff_len, head=head)
    resize_embeddings(model, tokenizer, cfg.model)  # new tokens / resize_vocab, or a template's added token
    if head == "score":
        model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    model = prepare_trainable(model, ft, adapter_paths(cfg.model), cfg.multimodal)  # LoRA: SEQ_CLS, score saved
    if head == "score" and not ft.uses_adapter:
        for param in model.score.parameters():
            param.requires_grad_(True)
    if master:
        upcast_trainable(model)
        if whole:
            downcast_frozen(model, dtype, cfg.model.upcast_layernorm)  # e.g. a VLM's tower, left frozen
        logger.info("fp32 master weights: trained weights in fp32, frozen ones in %s", str(dtype).split(".")[-1])
    print_param_status(model, cfg.model.print_param_status)
    return model


@dataclass
class StageInputs:
    """What a recipe trains: all of it loaded before anything is written, so bad input fails with an empty folder."""

    tokenizer: Any
    template: Any
    train_set: Any
    eval_set: Any
    model: Any


def load_stage_inputs(
    cfg: RunConfig, stage: str, head: str = "lm", prepare_train_set: Callable[[Any], Any] | None = None
) -> StageInputs:
    """Tokenizer + template, the stage's datasets (`prepare_train_set` may check or reorder the training set before
    the model loads), then the trainable model."""
    tokenizer, template = load_tokenizer_and_template(cfg)
    train_set, eval_set = get_stage_datasets(stage, cfg.data, template, tokenizer, seed=seed_of(cfg))
    if prepare_train_set is not None:
        train_set = prepare_train_set(train_set)
    model = load_trainable_model(cfg, tokenizer, head=head)
    return StageInputs(tokenizer, template, train_set, eval_set, model)


def train_stage(trainer_cls, cfg: RunConfig, plan: OutputPlan, inputs: StageInputs, args, **trainer_kwargs) -> Path:
    """Write the run folder's config.yaml, build the stage's trainer with what every stage's gets (`trainer_extras`)
    plus its own `trainer_kwargs`, then train and save. A preference trainer (given `ref_model`) keeps no 'ref' copy
    of a LoRA adapter."""
    plan.prepare(cfg)
    trainer = trainer_cls(
        model=inputs.model,
        args=args,
        train_dataset=inputs.train_set,
        eval_dataset=inputs.eval_set,
        processing_class=inputs.tokenizer,
        **trainer_extras(cfg, plan, inputs.model, args),
        **trainer_kwargs,
    )
    if "ref_model" in trainer_kwargs:
        drop_ref_adapter(trainer)
    return train_and_save(trainer, cfg, plan, inputs.tokenizer, inputs.template, inputs.eval_set, inputs.train_set)


def train_restoring_signals(trainer, resume_from):
    """`trainer.train`, and the signal handlers StopOnSignal installed at train begin put back however it ends: a run
    that raises never reaches train end, and its flag-only SIGTERM / SIGINT handlers would outlive it in the process
    (a notebook's interrupt would do nothing; forked workers would ignore a pool's SIGTERM). What start-up left alive
    is frozen first where the CLI deferred garbage collection while it loaded (utils/startup_gc.py)."""
    startup_gc.settle()
    try:
        return trainer.train(resume_from_checkpoint=resume_from)
    finally:
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, StopSignals):
                callback.restore()


def train_and_save(
    trainer, cfg: RunConfig, plan: OutputPlan, tokenizer, template, eval_set=None, train_set=None
) -> Path:
    """Train (resuming if the plan says so), then save the model, state, metrics and the loss plot."""
    make_resumable(trainer)  # tmp-checkpoint-N renamed once complete; length-grouped order seeded per epoch
    if plan.resume_from:
        logger.info("resuming from %s", plan.resume_from)
    result = train_restoring_signals(trainer, plan.resume_from)
    tokenizer.chat_template = template.to_jinja()  # plain transformers then renders what training saw
    vision = bound_vision(template)
    if vision is not None:  # a VLM's template also reads content parts with images (model/vlm_files.py)
        tokenizer.chat_template = vision_chat_template(tokenizer.chat_template, template.mm_plugin)
    trainer.save_model()
    if trainer.processing_class is not tokenizer:  # TRL trainers keep their own reference
        tokenizer.save_pretrained(plan.path)
    if vision is not None and trainer.is_world_process_zero():  # the folder then loads with AutoProcessor too
        write_processor_files(processor_files(cfg.model), plan.path)
    trainer.save_state()
    if eval_set is not None:
        trainer.save_metrics("eval", trainer.evaluate())
    if cfg.finetuning.include_effective_tokens_per_second:
        tps = effective_tokens_per_second(train_set, cfg.finetuning.stage, result.metrics)
        result.metrics["effective_tokens_per_sec"] = round(tps, 3)
    trainer.save_metrics("train", result.metrics)  # the results file marks the run complete
    if cfg.finetuning.plot_loss and trainer.is_world_process_zero():
        plot_loss(plan.path)
    plan.finish()
    logger.info("saved to %s", plan.path)
    return plan.path


def trainer_extras(cfg: RunConfig, plan: OutputPlan, model, args) -> dict:
    """What every stage's Trainer gets, as sft's does: the JSONL log, a clean stop on SIGTERM/SIGINT (a resumable
    checkpoint), the method's callbacks (PiSSA conversion, BAdam) and its optimizer (LoRA+, GaLore, ...)."""
    return {
        "callbacks": [
            JsonlLogCallback(plan.path),
            StopOnSignal(),
            *method_callbacks(cfg),
            *apollo_callbacks(cfg),  # apollo_scale_front
            *early_stopping_callbacks(cfg.finetuning.early_stopping_steps),
            *swanlab_callbacks(cfg),  # use_swanlab / report_to: swanlab
            *profiler_callbacks(cfg, plan.path),  # enable_torch_profiler, profile_modules
            *sweep_callbacks(plan.path),  # a `tuneforge sweep` trial: report to its study, stop when pruned
        ],
        "optimizers": optimizers_for(cfg, model, args),
    }
