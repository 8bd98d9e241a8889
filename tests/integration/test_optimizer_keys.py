"""LLaMA-Factory's optimizer keys: use_muon (torch.optim.Muon + AdamW, saved and resumed), use_adam_mini and APOLLO's
apollo_proj_type / apollo_scale_front reach the optimizer the Trainer steps, and the runs learn."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train import callbacks, common
from tuneforge.train.run import run_training


def losses(out) -> list[float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["loss"] for r in rows if r.get("loss") is not None]


def assert_loss_falls(out) -> None:
    seen = losses(out)
    assert len(seen) == 12 and sum(seen[-3:]) / 3 < 0.7 * sum(seen[:3]) / 3, seen


@pytest.fixture
def trained_optimizer(monkeypatch):
    """The optimizer the Trainer of the next run stepped (accelerate's wrapper removed)."""
    seen = {}
    original = common.train_and_save

    def spy(trainer, *args, **kwargs):
        out = original(trainer, *args, **kwargs)
        seen["optimizer"] = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
        seen["names"] = {id(p): n for n, p in trainer.model.named_parameters()}
        return out

    monkeypatch.setattr(common, "train_and_save", spy)
    return seen


def names_of(params, names: dict) -> set[str]:
    return {names[id(p)] for p in params}


# ---------------------------------------------------------------- Muon


def hidden_matrices(names: dict) -> set[str]:
    """The 2-D weights inside the transformer layers of the tiny Qwen2 (or its LoRA matrices there)."""
    return {n for n in names.values() if ".layers." in n and n.endswith("weight") and "norm" not in n}


def test_muon_trains_the_hidden_matrices_and_adamw_the_rest(train_overrides, trained_optimizer):
    from tuneforge.train.muon import MuonWithAdamW

    out = run_training(load_config(None, train_overrides("full", use_muon=True, learning_rate=2e-3)))
    assert_loss_falls(out)
    optimizer, names = trained_optimizer["optimizer"], trained_optimizer["names"]
    assert isinstance(optimizer, MuonWithAdamW) and type(optimizer.muon) is torch.optim.Muon
    muon = names_of(optimizer.muon.param_groups[0]["params"], names)
    adamw = set().union(*(names_of(g["params"], names) for g in optimizer.adamw.param_groups))
    assert muon == hidden_matrices(names) and len(muon) == 14  # 7 matrices × 2 layers
    assert muon.isdisjoint(adamw) and muon | adamw == set(names.values())
    assert {"model.embed_tokens.weight", "model.norm.weight"} <= adamw and any(".bias" in n for n in adamw)
    assert optimizer.muon.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"  # LLaMA-Factory's lr matching
    assert all(g["initial_lr"] == 2e-3 for g in optimizer.param_groups)  # the Trainer's scheduler drives both


def test_muon_with_lora_trains_the_lora_matrices(train_overrides, trained_optimizer):
    out = run_training(load_config(None, train_overrides("lora", use_muon=True, learning_rate=2e-2)))
    assert_loss_falls(out)
    optimizer, names = trained_optimizer["optimizer"], trained_optimizer["names"]
    muon = names_of(optimizer.muon.param_groups[0]["params"], names)
    assert len(muon) == 28 and all("lora_A" in n or "lora_B" in n for n in muon)  # A and B of 14 layers


def test_muon_checkpoint_resumes_to_the_same_weights(train_overrides, tmp_path, monkeypatch):
    common_keys = {"use_muon": True, "max_steps": 6, "save_steps": 3, "learning_rate": 2e-3}
    straight = run_training(load_config(None, train_overrides("full", output_dir=str(tmp_path / "a"), **common_keys)))
    state = torch.load(straight / "checkpoint-3" / "optimizer.pt", weights_only=True)
    kinds = [set(s) for s in state["state"].values()]
    assert sum(k == {"momentum_buffer"} for k in kinds) == 14  # Muon's momentum for each hidden matrix
    assert any({"exp_avg", "exp_avg_sq"} <= k for k in kinds)  # AdamW's moments for the rest

    original = callbacks.JsonlLogCallback.on_step_end

    def crash_after_step_4(self, args, state, control, **kwargs):
        if state.global_step == 4:
            raise KeyboardInterrupt  # after checkpoint-3
        return original(self, args, state, control, **kwargs)

    cfg = train_overrides("full", output_dir=str(tmp_path / "b"), **common_keys)
    monkeypatch.setattr(callbacks.JsonlLogCallback, "on_step_end", crash_after_step_4, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, cfg))
    monkeypatch.undo()
    resumed = run_training(load_config(None, cfg))  # picks up checkpoint-3 with its optimizer state
    assert losses(resumed) == pytest.approx(losses(straight), rel=1e-5)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-5, key


def test_muon_state_dict_round_trip(tiny_model_dir):
    """torch's state_dict format over both parts; loading it into a fresh optimizer restores every buffer."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    from tuneforge.train.muon import muon_optimizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = TrainingArguments(output_dir="unused", learning_rate=1e-3, report_to="none", use_cpu=True)
    first = muon_optimizer(model, args)
    model(input_ids=torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])).loss.backward()
    first.step()
    saved = first.state_dict()
    second = muon_optimizer(model, args)
    second.load_state_dict(saved)
    for part in ("muon", "adamw"):
        one, two = getattr(first, part).state_dict(), getattr(second, part).state_dict()
        assert one["state"].keys() == two["state"].keys() and one["state"]
        for i in one["state"]:
            for key, value in one["state"][i].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(two["state"][i][key]))
    assert [id(g) for g in second.param_groups] == [
        id(g) for g in (*second.muon.param_groups, *second.adamw.param_groups)
    ]


# ---------------------------------------------------------------- Adam-mini


def test_adam_mini_trains(train_overrides, trained_optimizer):
    from adam_mini import Adam_mini

    out = run_training(load_config(None, train_overrides("full", use_adam_mini=True, learning_rate=2e-3)))
    assert_loss_falls(out)
    optimizer = trained_optimizer["optimizer"]
    assert isinstance(optimizer, Adam_mini)
    # one second-moment value per attention head for q_proj (tiny Qwen2: 4 heads), not one per weight
    q = next(g for g in optimizer.param_groups if g["name"].endswith("layers.0.self_attn.q_proj.weight"))
    assert optimizer.state[q["params"][0]]["vmean"].numel() == 4


# ---------------------------------------------------------------- APOLLO


def test_apollo_proj_type_and_scale_front_reach_the_apollo_group(train_overrides, trained_optimizer):
    keys = {"use_apollo": True, "apollo_rank": 4, "apollo_proj_type": "left", "apollo_scale_front": True}
    run_training(load_config(None, train_overrides("full", max_steps=2, apollo_scale_type="tensor", **keys)))
    optimizer = trained_optimizer["optimizer"]
    group = next(g for g in optimizer.param_groups if "rank" in g)
    assert group["proj_type"] == "left" and group["scale_front"] is True
    assert optimizer.scale_front is True  # what apollo-torch reads
    projectors = [optimizer.state[p]["projector"] for p in group["params"]]
    assert projectors and all(p.proj_type == "left" for p in projectors)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"finetuning_type": "full", "use_muon": True, "use_adam_mini": True}, "cannot be combined"),
        ({"finetuning_type": "full", "use_muon": True, "use_galore": True}, "cannot be combined"),
        ({"use_adam_mini": True}, "LoRA's low-rank matrices"),
        ({"finetuning_type": "full", "use_muon": True, "optim": "sgd"}, "both choose the optimizer"),
        ({"stage": "ppo", "use_muon": True, "reward_model": "x"}, "stage ppo runs its own loop"),
        ({"finetuning_type": "full", "use_apollo": True, "apollo_proj_type": "right"}, "apollo_scale_type tensor"),
    ],
)
def test_optimizer_combination_is_one_clear_error(extra, fragment, train_overrides):
    cfg = train_overrides(extra.pop("finetuning_type", "lora"), **extra)
    with pytest.raises(UserError, match=fragment):
        load_config(None, cfg)


# ---------------------------------------------------------------- every Trainer-based stage

from test_stages import stage_cfg, stage_data  # noqa: E402, F401  (fixtures: tiny pairs / kto / text datasets)


@pytest.mark.parametrize(
    ("stage", "method", "key"),
    [("pt", "full", "use_muon"), ("rm", "lora", "use_muon"), ("dpo", "lora", "use_muon"), ("kto", "full", "use_muon")]
    + [("rm", "full", "use_adam_mini"), ("dpo", "freeze", "use_adam_mini")],
)
def test_optimizer_keys_work_in_every_trainer_stage(stage, method, key, stage_cfg, trained_optimizer):  # noqa: F811
    from tuneforge.train.muon import MuonWithAdamW

    out = run_training(load_config(None, stage_cfg(stage, method, max_steps=3, **{key: True})))
    assert len(losses(out)) == 3 and all(loss == loss for loss in losses(out))  # trained, no NaN
    kind = MuonWithAdamW if key == "use_muon" else "Adam_mini"
    assert kind in (type(trained_optimizer["optimizer"]), type(trained_optimizer["optimizer"]).__name__)
