"""Direct preference optimisation on pairwise data, TRL's DPOTrainer fed with our template's encodings.

pref_loss: sigmoid (DPO), ipo, hinge — TRL's losses against a reference model (`ref_model`, or the base: for LoRA
the adapter disabled); orpo and simpo — reference-free, computed here (TRL 1.16 has them only in
trl.experimental). `pref_ftx` adds the SFT loss on the chosen responses; `dpo_label_smoothing` turns sigmoid into
robust DPO. `pref_bco_weight` mixes in LF's BCO term and `ld_alpha` weights the policy's log-probabilities past the
shorter answer (LD-DPO), both as LLaMA-Factory does (train/dpo_terms.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.data.vision_collate import with_image_batches
from tuneforge.data.vision_conversation import bound_vision
from tuneforge.train.arguments import build_training_arguments
from tuneforge.train.common import load_stage_inputs, train_stage
from tuneforge.train.cpu_logprob import use_cpu_logprob_head
from tuneforge.train.dpo_terms import BCOLoss, sequence_logps
from tuneforge.train.preference import ftx_loss_weights, load_ref_model

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

REFERENCE_FREE = ("orpo", "simpo")


def dpo_settings(cfg: RunConfig) -> dict:
    """DPOConfig keywords for our pref_* keys."""
    ft = cfg.finetuning
    loss = ft.pref_loss if ft.pref_loss not in REFERENCE_FREE else "sigmoid"  # ours replace TRL's loss entirely
    if ft.dpo_label_smoothing:  # validated in config/validate.py: sigmoid only, in [0, 0.5)
        loss = "robust"
    extra, weights = ftx_loss_weights(ft.pref_ftx if ft.pref_loss not in REFERENCE_FREE else 0.0)
    bco = ft.pref_bco_weight  # validated: reference-based losses only; the BCO share is added by our trainer
    return {
        "beta": ft.pref_beta,
        "loss_type": [loss, *extra],
        "loss_weights": [1.0 / (1.0 + bco), *weights],  # LF: (dpo + w * bco) / (1 + w), then + ftx * sft
        "ld_alpha": ft.ld_alpha,
        "label_smoothing": ft.dpo_label_smoothing,
        "max_length": None,  # our encoder already cut each pair to cutoff_len
        "precompute_ref_log_probs": ft.pref_loss in REFERENCE_FREE,  # no reference model is built or run
    }


def _trainer_class():
    import torch  # torch / trl: seconds to import; only a dpo run needs them
    import torch.nn.functional as F
    from trl import DPOTrainer

    use_cpu_logprob_head()  # TRL's fused LM head, fast and slim on a CPU

    class PreferenceTrainer(DPOTrainer):
        """DPOTrainer on pre-tokenized (prompt_ids, chosen_ids, rejected_ids), plus reference-free ORPO / SimPO."""

        def __init__(self, *args, pref_loss: str, simpo_gamma: float, pref_ftx: float, bco_weight: float, **kwargs):
            self.pref_loss, self.simpo_gamma, self.pref_ftx = pref_loss, simpo_gamma, pref_ftx
            self.bco_weight, self.bco = bco_weight, BCOLoss()
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # already encoded with our template

        def _precompute_ref_logps(self, dataset, name, batch_size):
            if self.pref_loss in REFERENCE_FREE:
                return dataset  # reference-free: nothing to precompute
            return super()._precompute_ref_logps(dataset, name, batch_size)

        def _compute_loss(self, model, inputs, return_outputs):
            if self.pref_loss not in REFERENCE_FREE and not self.bco_weight and self.ld_alpha is None:
                return super()._compute_loss(model, inputs, return_outputs)
            if self.pref_loss not in REFERENCE_FREE:
                return self._lf_terms_loss(model, inputs, return_outputs)
            mode = "train" if self.model.training else "eval"
            completion_mask = inputs["completion_mask"]
            labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
            outputs = model(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                labels=labels,
                use_cache=False,
                fused_lm_head=True,
            )
            mask = completion_mask[..., 1:]
            per_token = outputs.log_probs[:, -mask.size(1) :]
            logps = sequence_logps(per_token, mask, self.ld_alpha)  # LF applies ld_alpha here too
            avg_logps = logps / mask.sum(dim=1).clamp(min=1)  # length-normalised, as both papers do
            chosen, rejected = avg_logps.chunk(2, dim=0)
            sft_loss = -chosen
            if self.pref_loss == "orpo":
                # log odds(y) = log p - log(1 - p), with p the average token probability
                log_odds = (chosen - rejected) - (torch.log1p(-torch.exp(chosen)) - torch.log1p(-torch.exp(rejected)))
                losses = sft_loss - self.beta * F.logsigmoid(log_odds)
            else:  # simpo
                losses = -F.logsigmoid(self.beta * (chosen - rejected) - self.simpo_gamma)
            if self.pref_ftx > 0:
                losses = losses + self.pref_ftx * sft_loss
            loss = losses.mean()
            chosen_rewards, rejected_rewards = self.beta * chosen.detach(), self.beta * rejected.detach()
            metrics = self._metrics[mode]
            metrics["rewards/chosen"].append(chosen_rewards.mean().item())
            metrics["rewards/rejected"].append(rejected_rewards.mean().item())
            metrics["rewards/accuracies"].append((chosen_rewards > rejected_rewards).float().mean().item())
            metrics["rewards/margins"].append((chosen_rewards - rejected_rewards).mean().item())
            metrics["logps/chosen"].append(chosen.detach().mean().item())
            metrics["logps/rejected"].append(rejected.detach().mean().item())
            metrics["sft_loss"].append(sft_loss.detach().mean().item())
            return (loss, outputs) if return_outputs else loss

        def _lf_terms_loss(self, model, inputs, return_outputs):
            """TRL's loss with the reference's plain-sum log-probs handed in (LF weights only the policy's by
            ld_alpha), plus LF's BCO share on the same numbers."""
            ld_alpha, self.ld_alpha = self.ld_alpha, None
            try:
                ref_chosen, ref_rejected = self.compute_ref_log_probs(
                    model if self.ref_model is None else self.ref_model, inputs
                )
            finally:
                self.ld_alpha = ld_alpha
            inputs = {**inputs, "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
            policy_outputs = []  # the policy forward inside TRL's loss: its per-token log-probs feed BCO
            hook = model.register_forward_hook(lambda _module, _args, out: policy_outputs.append(out))
            self.precompute_ref_logps = True  # read the reference's log-probs from `inputs`, as precomputed ones
            try:
                result = super()._compute_loss(model, inputs, return_outputs)  # with outputs: + a logits pass
            finally:
                self.precompute_ref_logps = False
                hook.remove()
            loss, outputs = result if return_outputs else (result, None)
            if self.bco_weight:
                mask = inputs["completion_mask"][..., 1:]
                logps = sequence_logps(policy_outputs[0].log_probs[:, -mask.size(1) :], mask, self.ld_alpha)
                ref_logps = torch.cat((ref_chosen, ref_rejected))
                if self.pref_loss == "ipo":  # LF's ipo works on length-averaged log-probs, BCO included
                    lengths = mask.sum(dim=1).clamp(min=1)
                    logps, ref_logps = logps / lengths, ref_logps / lengths
                chosen_ratio, rejected_ratio = (logps - ref_logps).chunk(2, dim=0)
                bco = self.bco(self.beta * chosen_ratio, self.beta * rejected_ratio, update=self.model.training)
                loss = loss + self.bco_weight / (1.0 + self.bco_weight) * bco.mean()
                self._metrics["train" if self.model.training else "eval"]["bco_loss"].append(bco.mean().item())
            return (loss, outputs) if return_outputs else loss

    return PreferenceTrainer


def image_pair_collator(inputs, args):
    """A vision model's pairs: TRL's preference collator (all chosen rows, then all rejected rows) plus each row's
    pictures, twice in that order; None (TRL's own collator) for a text model."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    if bound_vision(inputs.template) is None:
        return None
    text = DataCollatorForPreference(
        pad_token_id=inputs.tokenizer.pad_token_id, max_length=None, pad_to_multiple_of=args.pad_to_multiple_of
    )
    return with_image_batches(text, inputs.template, copies=2)


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import DPOConfig

    ft = cfg.finetuning
    inputs = load_stage_inputs(cfg, "dpo")
    ref_model = load_ref_model(cfg, inputs.tokenizer, needed=ft.pref_loss not in REFERENCE_FREE)
    args = build_training_arguments(cfg, str(plan.path), cls=DPOConfig, **dpo_settings(cfg))
    losses = {
        "pref_loss": ft.pref_loss,
        "simpo_gamma": ft.simpo_gamma,
        "pref_ftx": ft.pref_ftx,
        "bco_weight": ft.pref_bco_weight,
    }
    collator = image_pair_collator(inputs, args)
    return train_stage(_trainer_class(), cfg, plan, inputs, args, ref_model=ref_model, data_collator=collator, **losses)
