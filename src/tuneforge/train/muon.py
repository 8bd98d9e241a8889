"""Muon (`use_muon`): torch.optim.Muon for the 2-D weight matrices inside the transformer layers, AdamW for the rest.

LLaMA-Factory's grouping (its third_party/muon): Muon orthogonalises the update of each hidden weight matrix; the
embeddings, the output head, norms and biases stay with AdamW. LoRA's A / B matrices inside the layers are 2-D
hidden weights too, so they go to Muon (LLaMA-Factory allows Muon with LoRA). Muon's learning rate is adjusted to
AdamW's update size (`adjust_lr_fn="match_rms_adamw"`, Moonshot's rule, as LLaMA-Factory's copy does), so one
`learning_rate` serves both halves.

`MuonWithAdamW` is one `torch.optim.Optimizer` whose `param_groups` are Muon's then AdamW's (the same dicts), so the
Trainer's scheduler scales both, and whose `state_dict` is torch's usual format over all of them, so checkpoints save
and resume like any optimizer's.
"""

from __future__ import annotations

import re

import torch  # the optimizer subclasses torch's: only the stage recipes import this module (train/optim.py)

from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)
IN_LAYER = re.compile(r"\.\d+\.")  # a parameter inside a numbered block: model.layers.3.mlp.up_proj.weight


def is_muon_param(name: str, param) -> bool:
    """A hidden weight matrix: 2-D, inside a transformer layer, not an embedding (LLaMA-Factory: not embed/lm_head)."""
    return param.ndim == 2 and bool(IN_LAYER.search(name)) and "embed" not in name and "lm_head" not in name


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon and AdamW stepped together, seen by the Trainer as one optimizer."""

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer):
        self.muon, self.adamw = muon, adamw
        super().__init__(self._groups(), defaults={})  # the same group dicts: a scheduler's lr reaches the parts

    def _groups(self) -> list[dict]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @property
    def state(self) -> dict:  # both parts' state by parameter, a copy (the parts' defaultdicts grow on lookups)
        return {**self.muon.state, **self.adamw.state}

    @state.setter
    def state(self, value):  # Optimizer.__init__ assigns an empty dict: the parts keep the real state
        pass

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's format over Muon's groups then AdamW's: each part loads its own groups and their states."""
        groups, states = state_dict["param_groups"], state_dict["state"]
        n = len(self.muon.param_groups)
        for part, part_groups in ((self.muon, groups[:n]), (self.adamw, groups[n:])):
            ids = {i for group in part_groups for i in group["params"]}
            part.load_state_dict({"state": {i: s for i, s in states.items() if i in ids}, "param_groups": part_groups})
        self.param_groups = self._groups()  # the parts rebuilt their group dicts


def muon_optimizer(model, args) -> MuonWithAdamW:
    """Muon + AdamW for `model`'s trainable parameters under the Trainer's arguments `args`."""
    from transformers import Trainer  # its weight-decay rule (no decay for norms and biases)

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in named if is_muon_param(n, p)]
    if not hidden:
        raise UserError(
            "use_muon found no trainable 2-D weight inside the transformer layers",
            where="use_muon",
            fix="train the layers (finetuning_type lora / full / freeze), or remove use_muon",
        )
    decay = set(Trainer.get_decay_parameter_names(None, model))
    rest = [(n, p) for n, p in named if not is_muon_param(n, p)]
    muon = torch.optim.Muon(
        hidden, lr=args.learning_rate, weight_decay=args.weight_decay, adjust_lr_fn="match_rms_adamw"
    )
    adam_groups = [
        {"params": [p for n, p in rest if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in rest if n not in decay], "weight_decay": 0.0},
    ]
    adamw = torch.optim.AdamW(
        [g for g in adam_groups if g["params"]] or [{"params": []}],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )
    logger.info("Muon for %d weight matrices inside the layers, AdamW for %d other tensors", len(hidden), len(rest))
    return MuonWithAdamW(muon, adamw)
