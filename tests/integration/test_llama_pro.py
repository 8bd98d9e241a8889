"""LLaMA Pro: `tuneforge llama-pro` inserts zero-output copies of blocks (the model computes what it did), and
`use_llama_pro: true` trains exactly those blocks (freeze) or puts adapters only on them (lora / oft)."""

from __future__ import annotations

import json

import pytest

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.model.adapters import prepare_trainable
from tuneforge.model.llama_pro import expanded_layer_ids
from tuneforge.utils import run_folder

IDS = [[5, 17, 300, 42, 9, 1000, 7, 64]]


@pytest.fixture(scope="module")
def tiny_four_layers(tmp_path_factory):
    from tuneforge.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("models") / "tiny-4", arch="llama", layers=4, tie_embeddings=True)


@pytest.fixture(scope="module")
def expanded_dir(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pro") / "qwen2-pro"
    assert main(["llama-pro", str(tiny_model_dir), str(out), "--num-expand", "2"]) == 0
    return out


def logits(path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path).eval()  # plain transformers
    with torch.no_grad():
        return model(torch.tensor(IDS)).logits, model


def test_expanded_model_computes_what_the_original_did(tiny_model_dir, expanded_dir):
    (want, original), (got, expanded) = logits(tiny_model_dir), logits(expanded_dir)
    assert expanded.config.num_hidden_layers == original.config.num_hidden_layers + 2 == 4
    assert (got - want).abs().max().item() < 1e-5
    layers = expanded.model.layers
    for new, source in ((1, 0), (3, 1)):  # a copy after every num_layers // num_expand = 1 block
        assert not layers[new].self_attn.o_proj.weight.any() and not layers[new].mlp.down_proj.weight.any()
        assert layers[new].self_attn.q_proj.weight.equal(original.model.layers[source].self_attn.q_proj.weight)
    assert layers[2].mlp.down_proj.weight.equal(original.model.layers[1].mlp.down_proj.weight)
    assert (expanded_dir / "tokenizer.json").is_file() and (expanded_dir / "model.safetensors").is_file()


def test_expansion_of_a_tied_four_layer_model(tiny_four_layers, tmp_path):
    out = tmp_path / "pro"
    assert main(["llama-pro", str(tiny_four_layers), str(out), "--num-expand", "2"]) == 0
    (want, _), (got, expanded) = logits(tiny_four_layers), logits(out)
    assert expanded.config.num_hidden_layers == 6 and (got - want).abs().max().item() < 1e-5
    assert list(expanded_layer_ids(6, 2)) == [2, 5]  # the copies: after layers 1 and 3 of the original
    assert not expanded.model.layers[2].mlp.down_proj.weight.any()
    assert not expanded.model.layers[5].mlp.down_proj.weight.any()


def test_expansion_refuses_a_count_that_does_not_divide_the_layers(tiny_model_dir, tmp_path, capsys):
    assert main(["llama-pro", str(tiny_model_dir), str(tmp_path / "x"), "--num-expand", "3"]) == 2
    assert "--num-expand" in capsys.readouterr().err


def trainable_layers(model) -> set[int]:
    import re

    return {int(re.search(r"\.layers\.(\d+)\.", n).group(1)) for n, p in model.named_parameters() if p.requires_grad}


def test_use_llama_pro_trains_exactly_the_expanded_blocks(expanded_dir, train_overrides, tmp_path):
    from transformers import AutoModelForCausalLM

    keys = {"model_name_or_path": str(expanded_dir), "finetuning_type": "freeze", "freeze_trainable_layers": 2}
    pro = load_config(None, {**keys, "use_llama_pro": True}).finetuning
    plain = load_config(None, keys).finetuning
    assert trainable_layers(prepare_trainable(AutoModelForCausalLM.from_pretrained(expanded_dir), pro, [])) == {1, 3}
    assert trainable_layers(prepare_trainable(AutoModelForCausalLM.from_pretrained(expanded_dir), plain, [])) == {2, 3}

    lora = load_config(None, {**keys, "finetuning_type": "lora", "use_llama_pro": True}).finetuning
    adapted = prepare_trainable(AutoModelForCausalLM.from_pretrained(expanded_dir), lora, [])
    assert trainable_layers(adapted) == {1, 3}  # LoRA only on the expanded blocks

    cfg = train_overrides("freeze", max_steps=6, use_llama_pro=True, freeze_trainable_layers=2)
    cfg["model_name_or_path"] = str(expanded_dir)
    overrides = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]
    assert main(["train", *overrides]) == 0
    losses = [r["loss"] for r in run_folder.read_records(tmp_path / "out-freeze") if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    (before, original), (after, trained) = logits(expanded_dir), logits(tmp_path / "out-freeze")
    for i in range(4):  # the original blocks are untouched, the expanded ones moved
        same = trained.model.layers[i].mlp.down_proj.weight.equal(original.model.layers[i].mlp.down_proj.weight)
        assert same == (i not in (1, 3))
    assert (after - before).abs().max().item() > 1e-4


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"finetuning_type": "full", "use_llama_pro": True}, "finetuning_type full trains every weight"),
        ({"finetuning_type": "freeze", "use_llama_pro": True, "freeze_trainable_layers": -2}, "number of expanded"),
    ],
)
def test_use_llama_pro_rules(keys, message):
    with pytest.raises(UserError, match=message):
        load_config(None, {"model_name_or_path": "m", **keys})


def test_use_llama_pro_needs_a_layer_count_the_blocks_divide(expanded_dir):
    from transformers import AutoModelForCausalLM

    cfg = load_config(
        None,
        {"model_name_or_path": "m", "finetuning_type": "freeze", "freeze_trainable_layers": 3, "use_llama_pro": True},
    )
    with pytest.raises(UserError, match="cannot split evenly"):
        prepare_trainable(AutoModelForCausalLM.from_pretrained(expanded_dir), cfg.finetuning, [])
