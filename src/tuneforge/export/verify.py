"""Merge a LoRA or OFT adapter and prove it happened: every module the adapter changes (LoRA: a non-zero delta
B @ A * scale added; OFT: a rotation R != I applied, merged W = W @ R^T) must change.

LLaMA-Factory once shipped an export whose adapters were silently not merged. Here the weights are checked at a few
elements per module where the delta is large enough to show in the model's dtype; a module whose weight did not
move fails the export. Memory stays small: only those elements are kept, never a copy of the base.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)
PROBES = 8  # elements checked per module


class MergeCheckError(UserError):
    """The merged weights do not carry the adapter: the export would silently be the base model."""


@dataclass
class Probe:
    name: str  # module name in the merged model
    index: tuple  # (rows, cols) index tensors
    base: object  # base values there
    expected: object  # base + delta there, in the model's dtype
    exact: bool  # plain LoRA: merged == base + delta (to rounding); DoRA: only "changed"


def _merged_weight(module, adapter: str, weight):
    """What merging `adapter` must make of this layer's weight (fp32), or None where it is not probed."""
    from peft.tuners.lora import LoraLayer  # peft: only a process that merges imports it
    from peft.tuners.oft import OFTLayer

    if isinstance(module, LoraLayer) and adapter in module.lora_A:
        delta = module.get_delta_weight(adapter)
        if delta.shape != weight.shape or not bool(delta.any()):
            return None  # another layout (e.g. conv) is not probed; a zero delta (B still zero) cannot show
        return weight.float() + delta.float()
    if isinstance(module, OFTLayer) and adapter in module.oft_R and weight.dim() == 2:
        rotation = module.get_delta_weight(adapter).float()  # in_features x in_features
        if rotation.shape[0] != weight.shape[1]:
            return None
        return weight.float() @ rotation.T  # peft's merge: (R @ W^T)^T
    return None


def _probes(peft_model) -> tuple[list[Probe], int]:
    import torch  # heavy: only a process that merges imports it
    from peft.tuners.tuners_utils import BaseTunerLayer

    probes, vanished = [], 0
    prefix = "base_model.model."
    for name, module in peft_model.named_modules():
        if not isinstance(module, BaseTunerLayer) or not hasattr(module, "get_delta_weight"):
            continue
        weight = module.get_base_layer().weight
        for adapter in module.active_adapters:
            with torch.no_grad():
                merged = _merged_weight(module, adapter, weight)
                if merged is None:
                    continue
                delta = merged - weight.float()
                expected = merged.to(weight.dtype)
                moved = (expected != weight).nonzero()
            if moved.numel() == 0:
                vanished += 1  # the delta is below the dtype's resolution at every element
                continue
            order = delta[moved[:, 0], moved[:, 1]].abs().argsort(descending=True)[:PROBES]
            index = (moved[order, 0], moved[order, 1])
            dora = bool(getattr(module, "use_dora", {}).get(adapter, False))
            probes.append(
                Probe(name.removeprefix(prefix), index, weight[index].clone(), expected[index].clone(), not dora)
            )
    return probes, vanished


def merge_and_verify(peft_model, where: str):
    """`peft_model.merge_and_unload()`, then check each probe. Raises MergeCheckError when a module did not merge."""
    import torch

    probes, vanished = _probes(peft_model)
    if not probes:
        raise MergeCheckError(
            "the adapter changes no weight: all its LoRA deltas are zero / OFT rotations identity (untrained?)",
            where=where,
            fix="export the adapter of a finished run (its output_dir or a checkpoint-N)",
        )
    if vanished:
        logger.warning("%d module(s) have an adapter delta too small to show in this dtype", vanished)
    merged = peft_model.merge_and_unload()
    modules = dict(merged.named_modules())
    unmerged = []
    for probe in probes:
        weight = modules[probe.name].weight.detach()
        got = weight[probe.index].cpu()
        if torch.equal(got, probe.base.cpu()):
            unmerged.append(probe.name)
        elif probe.exact:
            tol = 1e-6 if weight.dtype == torch.float32 else 1e-2
            if not torch.allclose(got.float(), probe.expected.cpu().float(), rtol=tol, atol=tol):
                unmerged.append(probe.name)
    if unmerged:
        raise MergeCheckError(
            f"the merge did not happen for {len(unmerged)} of {len(probes)} adapted modules "
            f"(e.g. {unmerged[0]}): their weights are not base + adapter",
            where=where,
            fix="report this as a bug; the export was not written",
        )
    logger.info("merge verified: %d adapted modules carry their adapter delta", len(probes))
    return merged
