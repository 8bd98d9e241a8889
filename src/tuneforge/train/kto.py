"""KTO on unpaired feedback (a response marked desirable or not: `kto_tag`), TRL's KTOTrainer on our encodings.

The KL term's mismatched pairs are made as LLaMA-Factory makes them: each prompt with the completion of the row
before it in the (once-shuffled, then read in order) data set, so they need no second row in the batch and
per_device_train_batch_size 1 works (TRL pairs within a batch and refuses 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import load_stage_inputs, seed_of, train_stage
from tuneforge.train.cpu_logprob import use_cpu_logprob_head
from tuneforge.train.preference import load_ref_model

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan


def _trainer_class():
    from trl import KTOTrainer  # trl: seconds to import; only a kto run needs it

    use_cpu_logprob_head()  # TRL's fused LM head, fast and slim on a CPU

    class FeedbackTrainer(KTOTrainer):
        """KTOTrainer on pre-tokenized (prompt_ids, completion_ids, label)."""

        def __init__(self, *pos, args, **kwargs):
            batch = args.per_device_train_batch_size
            # TRL refuses a batch of 1 because ITS pairs are made within a batch; ours are not (see above)
            args.per_device_train_batch_size = max(batch, 2)
            try:
                super().__init__(*pos, args=args, **kwargs)
            finally:
                args.per_device_train_batch_size = batch
            self._train_batch_size = args.train_batch_size  # what the dataloader uses, read in __init__

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if not self.calculate_KL:
                return dataset

            # LF's rule: rotate the completions by one over the whole data set (row i gets row i-1's)
            def add_kl(rows):
                rows["KL_completion_ids"] = [rows["completion_ids"][-1]] + rows["completion_ids"][:-1]
                return rows

            return dataset.map(add_kl, batched=True, batch_size=None)

    return FeedbackTrainer


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import KTOConfig

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
