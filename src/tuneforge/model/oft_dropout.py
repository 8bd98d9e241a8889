"""OFT's module_dropout, applied.

peft 0.21 builds a MultiplicativeDropoutLayer per OFT layer from `module_dropout` (in `layer.oft_dropout`) but its
forward never calls it: the setting would be accepted and ignored. Here each OFT rotation passes its blocks through
that layer while training (a random int(p * blocks) of them become the identity, as in the OFT paper); in eval mode and
when merging, the rotation is the trained one.
"""

from __future__ import annotations

import types

from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


def enable_module_dropout(model) -> int:
    """Wire each OFT layer's dropout into its rotation; returns the number of layers that now drop blocks."""
    from peft.tuners.oft.layer import MultiplicativeDropoutLayer, OFTLayer  # the process has a peft model already

    wired = 0
    for module in model.modules():
        if not isinstance(module, OFTLayer):
            continue
        for name, dropout in module.oft_dropout.items():
            if isinstance(dropout, MultiplicativeDropoutLayer) and dropout.p > 0 and name in module.oft_R:
                _drop_blocks(module.oft_R[name], dropout)
                wired += 1
    if wired:
        logger.info("OFT: module_dropout on %d layers", wired)
    return wired


def _drop_blocks(rotation, dropout) -> None:
    cayley = rotation._cayley_batch  # the bound method: blocks (r, b, b) from the trained parameters

    def cayley_with_dropout(self, *args, **kwargs):
        blocks = cayley(*args, **kwargs)
        return dropout(blocks) if self.training and dropout.training else blocks

    rotation._cayley_batch = types.MethodType(cayley_with_dropout, rotation)
