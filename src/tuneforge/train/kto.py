"""KTO on unpaired feedback (a response marked desirable or not: `kto_tag`), TRL's KTOTrainer on our encodings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import load_stage_inputs, seed_of, train_stage
from tuneforge.train.preference import load_ref_model

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def _trainer_class():
    from trl import KTOTrainer  # trl: seconds to import; only a kto run needs it

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

    batch = int(cfg.training.get("per_device_train_batch_size", 2))
    if batch < 2:
        raise UserError(
            "stage kto needs per_device_train_batch_size >= 2 (its KL term pairs prompts within a batch)",
            where=cfg.where("per_device_train_batch_size"),
            fix="set per_device_train_batch_size: 2 or more",
        )
    inputs = load_stage_inputs(cfg, "kto", prepare_train_set=lambda train_set: _feedback_in_order(cfg, train_set))
    ref_model = load_ref_model(cfg, inputs.tokenizer)
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
    return train_stage(_trainer_class(), cfg, plan, inputs, args, ref_model=ref_model)


def _feedback_in_order(cfg: RunConfig, train_set):
    """KTO reads its data in order (for the KL pairs): shuffle once here; both kinds of feedback must be present."""
    if not cfg.finetuning.disable_shuffling:
        train_set = train_set.shuffle(seed=seed_of(cfg))
    labels = train_set["label"]
    if all(labels) or not any(labels):
        kind = "desirable" if all(labels) else "undesirable"
        raise UserError(
            f"every KTO sample is {kind}; KTO needs both desirable (true) and undesirable (false) feedback",
            where="dataset",
            fix="add samples with the other kto_tag value",
        )
    return train_set
