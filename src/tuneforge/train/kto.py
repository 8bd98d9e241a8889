"""KTO on unpaired feedback (a response marked desirable or not: `kto_tag`), TRL's KTOTrainer on our encodings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def _trainer_class():
    from trl import KTOTrainer

    class FeedbackTrainer(KTOTrainer):
        """KTOTrainer on pre-tokenized (prompt_ids, completion_ids, label)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if not self.calculate_KL:
                return dataset

            # The KL term pairs each prompt with the completion of its neighbour in the (sequential) batch.
            def add_kl(batch):
                batch["KL_completion_ids"] = [batch["completion_ids"][-1]] + batch["completion_ids"][:-1]
                return batch

            return dataset.map(add_kl, batched=True, batch_size=args.per_device_train_batch_size)

    return FeedbackTrainer


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import KTOConfig

    from tuneforge.data.loader import get_stage_datasets
    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.common import (
        load_tokenizer_and_template,
        load_trainable_model,
        seed_of,
        train_and_save,
        trainer_extras,
    )
    from tuneforge.train.preference import drop_ref_adapter, load_ref_model

    batch = int(cfg.training.get("per_device_train_batch_size", 2))
    if batch < 2:
        raise UserError(
            "stage kto needs per_device_train_batch_size >= 2 (its KL term pairs prompts within a batch)",
            where=cfg.where("per_device_train_batch_size"),
            fix="set per_device_train_batch_size: 2 or more",
        )
    tokenizer, template = load_tokenizer_and_template(cfg)
    train_set, eval_set = get_stage_datasets("kto", cfg.data, template, tokenizer, seed=seed_of(cfg))
    if not cfg.finetuning.disable_shuffling:  # KTO reads its data in order (for the KL pairs): shuffle once here
        train_set = train_set.shuffle(seed=seed_of(cfg))
    labels = train_set["label"]
    if all(labels) or not any(labels):
        kind = "desirable" if all(labels) else "undesirable"
        raise UserError(
            f"every KTO sample is {kind}; KTO needs both desirable (true) and undesirable (false) feedback",
            where="dataset",
            fix="add samples with the other kto_tag value",
        )
    model = load_trainable_model(cfg, tokenizer)
    ref_model = load_ref_model(cfg, tokenizer)
    ft = cfg.finetuning
    args = build_training_arguments(
        cfg,
        str(plan.path),
        cls=KTOConfig,
        beta=ft.pref_beta,
        desirable_weight=ft.kto_chosen_weight,
        undesirable_weight=ft.kto_rejected_weight,
        max_length=None,
    )
    plan.prepare(cfg)
    trainer = _trainer_class()(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        **trainer_extras(cfg, plan, model, args),
    )
    drop_ref_adapter(trainer)
    return train_and_save(trainer, cfg, plan, tokenizer, template, eval_set)
