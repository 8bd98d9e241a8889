"""Length-grouped batches (the default for sft, rm and dpo): rows of similar length share a batch, so little padding
is computed and a step still holds `per_device_train_batch_size` rows.

transformers' `LengthGroupedSampler` measures `input_ids`, which preference rows do not have, and draws its order
from the global torch RNG at each epoch start, which a resume mid-epoch restores only after drawing it. We measure
every stage's rows ourselves and seed the order by (seed, epoch), so an epoch's batches are the same in an
uninterrupted run, a resumed one, and on every rank.

transformers puts the longest step first, so that an out-of-memory shows at once; it is also the slowest step, and
the first loss waited for it (on the 100m benchmark model 21 s of a DPO run's 26 s to its first step, against 5 s an
average step). The epoch's shortest step now goes first and the longest second: the memory check comes one step
later, the first loss seconds sooner.
"""

from __future__ import annotations


def padded_lengths(dataset) -> list[int] | None:
    """What each row pads to in a batch, for rows without `input_ids` (transformers measures those itself): a pair
    pads to its prompt + its longer reply (dpo; rm rows hold whole sequences, no prompt)."""
    columns = set(getattr(dataset, "column_names", None) or ())
    if "input_ids" in columns or not {"chosen_ids", "rejected_ids"} <= columns:
        return None
    prompts = dataset["prompt_ids"] if "prompt_ids" in columns else [()] * len(dataset)
    return [
        len(p) + max(len(c), len(r))
        for p, c, r in zip(prompts, dataset["chosen_ids"], dataset["rejected_ids"], strict=True)
    ]


def seed_length_grouped_order(trainer) -> None:
    """Wrap `trainer._get_train_sampler`: with `train_sampling_strategy: group_by_length` the sampler measures any
    stage's rows (`padded_lengths`) and its order is a function of (data_seed or seed, epoch)."""
    original = trainer._get_train_sampler
    if getattr(original, "_tuneforge_seeded", False):
        return

    def get_train_sampler(train_dataset=None, *args, **kwargs):
        from transformers.trainer_pt_utils import LengthGroupedSampler  # heavy: only a Trainer run needs them

        dataset = train_dataset if train_dataset is not None else trainer.train_dataset
        lengths = padded_lengths(dataset) if trainer.args.train_sampling_strategy == "group_by_length" else None
        if lengths is not None:
            sampler = LengthGroupedSampler(
                trainer.args.train_batch_size * trainer.args.gradient_accumulation_steps, lengths=lengths
            )
        else:
            sampler = original(train_dataset, *args, **kwargs)
        if type(sampler) is LengthGroupedSampler:
            seed = trainer.args.data_seed if trainer.args.data_seed is not None else trainer.args.seed
            sampler.__class__ = _epoch_seeded(LengthGroupedSampler)
            sampler.seed, sampler.epoch = int(seed), 0
            # one optimizer step's rows over every process (accelerate deals consecutive batches out to the ranks)
            args = trainer.args
            sampler.step_rows = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        return sampler

    get_train_sampler._tuneforge_seeded = True
    trainer._get_train_sampler = get_train_sampler


def _epoch_seeded(base):
    class EpochSeededLengthGroupedSampler(base):
        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __iter__(self):
            import torch
            from transformers.trainer_pt_utils import get_length_grouped_indices

            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = get_length_grouped_indices(self.lengths, self.batch_size, generator=generator)
            return iter(shortest_step_first(indices, self.lengths, self.step_rows))

    return EpochSeededLengthGroupedSampler


def shortest_step_first(indices: list[int], lengths, step_rows: int) -> list[int]:
    """`indices` in steps of `step_rows`, the longest first (transformers' order): the shortest full step moved to
    the front, the rest in their order, so the longest is second."""
    steps = [indices[k : k + step_rows] for k in range(0, len(indices), step_rows)]
    later = [k for k in range(1, len(steps)) if len(steps[k]) == step_rows]
    if not later:
        return indices
    shortest = min(later, key=lambda k: sum(lengths[i] for i in steps[k]))
    return [*steps[shortest], *(i for k, step in enumerate(steps) if k != shortest for i in step)]
