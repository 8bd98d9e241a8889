"""The vision families beyond the first five (LLaVA-NeXT, GLM-4.1V), end to end on their tiny models: `tuneforge
train` runs LoRA SFT on the shapes demo (a finite loss; base + adapter reads the picture), and the chat engine gives
the model exactly the inputs the family's own processor makes of the same prompt and answers as `generate` on them."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_vision_chat import PICTURES, ask, make_engine
from test_vision_train import overrides

from tuneforge.cli import main
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.media import load_image
from tuneforge.model.vlm_files import image_placeholder
from tuneforge.model.vlm_processor import load_processor

FAMILIES = {"llava_next": "llava_next", "glm4v": "glm4v"}  # tiny arch -> template


@pytest.mark.parametrize("arch", FAMILIES)
def test_lora_sft_trains_two_steps_and_the_picture_changes_the_logits(arch, tiny_vlm_dir, tmp_path):
    base_dir, out = tiny_vlm_dir(arch), tmp_path / "lora"
    args = overrides(base_dir, out, template=FAMILIES[arch], finetuning_type="lora", logging_steps=1)
    assert main(["train", *args]) == 0
    logged = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in logged if row.get("loss") is not None]
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)

    engine = make_engine(base_dir, FAMILIES[arch], adapter_name_or_path=str(out))
    with torch.no_grad():
        first, second = (engine.model(**engine.model_inputs(ask(picture))).logits[0, -1] for picture in PICTURES)
    assert (first - second).abs().max() > 0.1


@pytest.mark.parametrize("arch", FAMILIES)
def test_chat_gives_the_model_the_processors_inputs_and_answers_as_generate(arch, tiny_vlm_dir):
    engine = make_engine(tiny_vlm_dir(arch), FAMILIES[arch])
    processor = load_processor(tiny_vlm_dir(arch))
    # the engine's prompt with the text the family's processor expands for one picture, unexpanded
    placeholder = image_placeholder(engine.template.mm_plugin)
    prompt = Conversation([Message("user", placeholder + "What shape is this?")])
    text = processor.tokenizer.decode(engine.template.encode_prompt(engine.tokenizer, prompt))
    logits = []
    for picture in PICTURES:
        ours = engine.model_inputs(ask(picture))
        theirs = processor(text=[text], images=[load_image(picture, plugin=arch)], return_tensors="pt")
        assert sorted(ours) == sorted(theirs)  # input_ids, attention_mask, pixel_values, image_sizes / _grid_thw
        for key in theirs:
            assert torch.equal(ours[key], theirs[key]), key
        eos = engine.template.stop_token_ids(engine.tokenizer)
        with torch.no_grad():
            logits.append(engine.model(**theirs).logits[0, -1])
            out = engine.model.generate(**theirs, max_new_tokens=8, do_sample=False, eos_token_id=eos)
        direct = engine.tokenizer.decode(out[0, theirs["input_ids"].shape[1] :], skip_special_tokens=True)
        reply = engine.chat(ask(picture))
        assert reply == direct and reply
    assert (logits[0] - logits[1]).abs().max() > 0.1  # another picture, another next-token distribution
