"""Every weight of each tiny VLM belongs to exactly one part (vision tower, projector, language model), so the freeze
switches and LoRA's targets cover the whole model; the defaults train the language model only."""

from __future__ import annotations

import pytest

from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.errors import UserError
from tuneforge.model.vision_parts import PARTS, freeze_parts, lora_module_names, vision_parts


@pytest.mark.parametrize("arch", list(PARTS))
def test_parts_cover_every_weight_once_and_defaults_freeze_the_vision_side(tiny_vlm_dir, arch):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir(arch))
    parts = vision_parts(model.config.model_type)
    for name, _ in model.named_parameters():
        owners = [p for p in (parts.vision, parts.projector, parts.language) if name.startswith(p)]
        assert len(owners) == 1, (name, owners)

    frozen = set(freeze_parts(model, MultimodalArguments()))  # defaults: the vision tower and the projector
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all(name.startswith(parts.language) for name in trained)
    assert frozen and all(not name.startswith(parts.language) for name in frozen)
    assert any(name.startswith(parts.projector) for name in frozen)

    targets = lora_module_names(model, MultimodalArguments())
    assert targets and all(name.startswith("model.language_model") for name in targets)
    unfrozen = MultimodalArguments(freeze_vision_tower=False, freeze_multi_modal_projector=False)
    assert any(name.startswith(parts.vision) for name in lora_module_names(model, unfrozen))


def test_other_families_are_one_line():
    with pytest.raises(UserError, match="vision fine-tuning of model type 'pixtral' is not supported yet"):
        vision_parts("pixtral")
