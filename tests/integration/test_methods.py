"""Methods on the tiny model: QLoRA (bitsandbytes nf4 / fp4 / int8, hqq 4 / 8 bit), DoRA, rsLoRA, PiSSA, LoRA+,
stacked adapters, packing, NEFTune, RoPE scaling, and one clear error for each combination that cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.run import run_training


def read_losses(out) -> list[float]:
    records = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["loss"] for r in records if r.get("loss") is not None]


def assert_loss_falls(out) -> list[float]:
    losses = read_losses(out)
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    return losses


def adapter_config(out) -> dict:
    return json.loads((Path(out) / "adapter_config.json").read_text())


def adapter_weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "adapter_model.safetensors"))


# ---------------------------------------------------------------- QLoRA

QLORA = {
    "bnb-nf4": ({"quantization_bit": 4}, "Linear4bit"),
    "bnb-fp4": ({"quantization_bit": 4, "quantization_type": "fp4", "double_quantization": False}, "Linear4bit"),
    "bnb-int8": ({"quantization_bit": 8}, "Linear8bitLt"),
    "hqq-4bit": ({"quantization_bit": 4, "quantization_method": "hqq"}, "HQQLinear"),
    "hqq-8bit": ({"quantization_bit": 8, "quantization_method": "hqq"}, "HQQLinear"),
}


@pytest.mark.parametrize("name", list(QLORA))
def test_qlora_loss_falls_on_a_quantized_base(name, train_overrides, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.model.loader import load_model

    extra, layer_class = QLORA[name]
    cfg = load_config(None, train_overrides("lora", **extra))
    out = run_training(cfg)
    assert_loss_falls(out)
    # what chat and export do: the same quantized base, the adapter on top
    quantized = load_model(cfg.model, torch.float32, for_training=False)
    q_proj = quantized.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == layer_class
    if layer_class == "Linear4bit":
        assert q_proj.weight.quant_type == cfg.model.quantization_type
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        base = quantized(ids).logits
        tuned = PeftModel.from_pretrained(quantized, out)(ids).logits
    assert 0 < (base - plain).abs().max() < 0.5 * plain.abs().max()  # quantized: close to the base, not equal
    assert (tuned - base).abs().max() > 1e-3  # and the trained adapter changes it


@pytest.mark.gpu
def test_qlora_nf4_on_cuda(train_overrides):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    out = run_training(load_config(None, train_overrides("lora", quantization_bit=4, compute_type="bf16")))
    assert_loss_falls(out)


# ---------------------------------------------------------------- LoRA variants

VARIANTS = {
    "dora": {"use_dora": True},
    "dora-nf4": {"use_dora": True, "quantization_bit": 4},
    "rslora": {"use_rslora": True},
    "loraplus": {"loraplus_lr_ratio": 4.0},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_lora_variant_loss_falls(name, train_overrides):
    extra = VARIANTS[name]
    out = run_training(load_config(None, train_overrides("lora", **extra)))
    assert_loss_falls(out)
    config = adapter_config(out)
    assert config["use_dora"] is bool(extra.get("use_dora"))
    assert config["use_rslora"] is bool(extra.get("use_rslora"))
    if extra.get("use_dora"):
        assert any("lora_magnitude_vector" in key for key in adapter_weights(out))


def test_pissa_trains_and_converts_to_a_plain_lora(train_overrides):
    """PiSSA moves the principal components of W into the adapter; the converted adapter (rank 2r) applied to
    the original W gives exactly the trained model: ΔW_converted = B·A − B0·A0 (scaled)."""
    out = run_training(load_config(None, train_overrides("lora", pissa_init=True, pissa_iter=4, pissa_convert=True)))
    assert_loss_falls(out)
    trained, init = adapter_weights(out), adapter_weights(out / "pissa_init")
    converted = adapter_weights(out / "pissa_converted")
    config, conv_config = adapter_config(out), adapter_config(out / "pissa_converted")
    assert config["init_lora_weights"] == "pissa_niter_4" and conv_config["r"] == 2 * config["r"]
    assert adapter_config(out / "pissa_init")["init_lora_weights"] is True  # loading it never re-runs the SVD
    scale = config["lora_alpha"] / config["r"]
    conv_scale = conv_config["lora_alpha"] / conv_config["r"]
    checked = 0
    for key_a in [k for k in trained if "lora_A" in k]:
        key_b = key_a.replace("lora_A", "lora_B")
        expected = scale * (trained[key_b] @ trained[key_a] - init[key_b] @ init[key_a])
        got = conv_scale * converted[key_b] @ converted[key_a]
        assert torch.allclose(got, expected, atol=1e-5), key_a
        assert expected.abs().max() > 1e-4  # training moved it
        checked += 1
    assert checked == 14  # 7 linear layers × 2 blocks


def test_loraplus_b_matrices_learn_ratio_times_faster(train_overrides):
    """Adam's first step moves each weight with a non-zero gradient by ±lr; at step 1 only B has a gradient
    (B starts at zero, so A's gradient is zero). So after one step max|B| is exactly B's learning rate."""
    lr, ratio = 1e-3, 16.0
    out = run_training(
        load_config(None, train_overrides("lora", learning_rate=lr, loraplus_lr_ratio=ratio, max_steps=1))
    )
    weights = adapter_weights(out)
    b_steps = [w.abs().max().item() for k, w in weights.items() if "lora_B" in k]
    assert len(b_steps) == 14
    assert all(step == pytest.approx(lr * ratio, rel=1e-3) for step in b_steps), b_steps


def test_loraplus_param_groups(train_overrides):
    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.optim import build_optimizer
    from tuneforge.train.sft import load_for_training

    cfg = load_config(None, train_overrides("lora", loraplus_lr_ratio=8.0, weight_decay=0.1))
    model = load_for_training(cfg)[-1]
    args = build_training_arguments(cfg, cfg.training["output_dir"])
    optimizer = build_optimizer(model, args, cfg.finetuning)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["lora_b"]["lr"] == pytest.approx(8.0 * args.learning_rate)
    assert groups["lora_a"]["lr"] == pytest.approx(args.learning_rate)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("lora_B" in names[id(p)] for p in groups["lora_b"]["params"])
    assert all("lora_A" in names[id(p)] for p in groups["lora_a"]["params"])
    trainable = sum(p.requires_grad for p in model.parameters())
    assert sum(len(g["params"]) for g in optimizer.param_groups) == trainable


# ---------------------------------------------------------------- GaLore, APOLLO, BAdam (full fine-tuning)

LOW_RANK = {"galore": ("use_galore", "galore_torch"), "apollo": ("use_apollo", "apollo_torch")}


@pytest.mark.parametrize("name", list(LOW_RANK))
def test_low_rank_optimizer_trains_the_linear_layers(name, train_overrides):
    from transformers import Trainer

    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.sft import load_for_training

    flag, package = LOW_RANK[name]
    cfg = load_config(None, train_overrides("full", **{flag: True, f"{name}_rank": 8}))
    model = load_for_training(cfg)[-1]
    args = build_training_arguments(cfg, cfg.training["output_dir"])
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    assert cls.__module__.split(".")[0] == package
    plain, projected = kwargs["params"]
    assert len(projected["params"]) == 14 and projected["rank"] == 8  # the 7 linear layers of both blocks
    assert len(plain["params"]) == sum(1 for _ in model.parameters()) - 14  # embeddings, norms, head: plain AdamW
    assert_loss_falls(run_training(cfg))


def test_badam_trains_one_block_at_a_time(train_overrides, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    cfg = load_config(None, train_overrides("full", use_badam=True, badam_switch_interval=100, max_steps=4))
    out = run_training(cfg)
    losses = read_losses(out)
    assert losses[-1] < losses[0]
    tuned = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed and all(name.startswith("model.layers.0.") for name in changed), changed  # ascending: block 0


def test_optimizer_package_missing_is_one_clear_error(monkeypatch, train_overrides):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "galore_torch" else real(name))
    with pytest.raises(UserError, match="pip install galore-torch"):
        load_config(None, train_overrides("full", use_galore=True))


# ---------------------------------------------------------------- stacked adapters


def _full_batch_loss(cfg, model) -> float:
    """The loss over all samples in one batch: what step 1 of a run with batch size ≥ the dataset logs."""
    from tuneforge.data.collate import SftCollator
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.template import get_template
    from tuneforge.model.loader import load_tokenizer

    tokenizer = load_tokenizer(cfg.model)
    template = get_template(cfg.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    train_set, _ = get_sft_datasets(cfg.data, template, tokenizer)
    batch = SftCollator(tokenizer.pad_token_id)([train_set[i] for i in range(len(train_set))])
    model.config.use_cache = False
    with torch.no_grad():
        return model(**batch).loss.item()


def test_stacked_adapters_merge_all_but_the_last(train_overrides, tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    first = run_training(load_config(None, train_overrides("lora", max_steps=2, output_dir=str(tmp_path / "a1"))))
    second = run_training(load_config(None, train_overrides("lora", max_steps=2, output_dir=str(tmp_path / "a2"))))
    stacked = f"{first},{second}"
    one_batch = {"per_device_train_batch_size": 8, "max_steps": 1, "adapter_name_or_path": stacked}
    cont = run_training(load_config(None, train_overrides("lora", **one_batch, output_dir=str(tmp_path / "c"))))
    new = run_training(
        load_config(None, train_overrides("lora", **one_batch, create_new_adapter=True, output_dir=str(tmp_path / "n")))
    )
    cfg = load_config(None, train_overrides("lora", **one_batch))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    merged_first = PeftModel.from_pretrained(base, first).merge_and_unload()
    expected = _full_batch_loss(cfg, PeftModel.from_pretrained(merged_first, second))
    # continuing: step 1 sees base + first (merged) + second (trained on); a new adapter starts at zero on top
    assert read_losses(cont)[0] == pytest.approx(expected, abs=1e-4)
    assert read_losses(new)[0] == pytest.approx(expected, abs=1e-4)
    assert adapter_config(cont)["r"] == adapter_config(second)["r"]
    # the continued adapter is the second one trained further; the new one is a fresh adapter
    before, after = adapter_weights(second), adapter_weights(cont)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    fresh = adapter_weights(new)
    assert all(w.abs().max() <= 1.01 * 1e-2 for k, w in fresh.items() if "lora_B" in k)  # one step from zero


# ---------------------------------------------------------------- packing


def test_neat_packing_gives_the_unpacked_first_step_loss(train_overrides, tmp_path):
    """One batch holds the whole toy set, packed or not: with position ids restarting per sample and no
    attention across samples the loss is the same; plain packing (attention crosses samples) differs."""
    common = {"cutoff_len": 128, "per_device_train_batch_size": 8, "max_steps": 1}
    losses = {}
    for name, extra in {"unpacked": {}, "neat": {"neat_packing": True}, "packing": {"packing": True}}.items():
        cfg = load_config(None, train_overrides("lora", **common, **extra, output_dir=str(tmp_path / name)))
        losses[name] = read_losses(run_training(cfg))[0]
    assert losses["neat"] == pytest.approx(losses["unpacked"], abs=1e-4), losses
    assert abs(losses["packing"] - losses["unpacked"]) > 1e-2, losses


def test_packing_packs_rows_and_trains(train_overrides):
    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.packing import pack_sft_sets
    from tuneforge.data.template import get_template
    from tuneforge.model.loader import load_tokenizer

    cfg = load_config(None, train_overrides("lora", neat_packing=True, cutoff_len=160, val_size=2))
    tokenizer = load_tokenizer(cfg.model)
    template = get_template("qwen", tokenizer)
    train, eval_set = get_sft_datasets(cfg.data, template, tokenizer)
    packed_train, packed_eval = pack_sft_sets(cfg.data, train, eval_set)
    assert len(packed_train) < len(train) and len(packed_eval) == 1
    assert sum(map(len, packed_train["input_ids"])) == sum(map(len, train["input_ids"]))
    out = run_training(cfg)
    assert (out / "eval_results.json").is_file()
    assert read_losses(out)[-1] < read_losses(out)[0]


# ---------------------------------------------------------------- NEFTune


def test_neftune_adds_noise_in_training_only(train_overrides, tmp_path):
    from transformers import Trainer, TrainerCallback

    from tuneforge.data.collate import sft_collator
    from tuneforge.train.arguments import build_training_arguments
    from tuneforge.train.sft import load_for_training

    alpha = 5.0
    cfg = load_config(None, train_overrides("lora", neftune_noise_alpha=alpha, max_steps=2))
    tokenizer, _, train_set, _, model = load_for_training(cfg)
    args = build_training_arguments(cfg, str(tmp_path / "neft"))
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    embed = model.get_input_embeddings()
    clean = embed.weight[ids].detach().clone()
    seen = []

    class Probe(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            was_training = embed.training
            with torch.no_grad():
                noisy = embed.train()(ids) - clean
                quiet = embed.eval()(ids) - clean  # evaluation inside a run: no noise
            embed.train(was_training)
            seen.append((noisy.abs().max().item(), quiet.abs().max().item()))

    with torch.no_grad():
        assert torch.equal(embed.train()(ids), clean)  # no hook before training

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        data_collator=sft_collator(tokenizer, cfg.data, "sdpa", True),
        callbacks=[Probe()],
    )
    trainer.train()
    bound = alpha / (ids.shape[1] * embed.weight.shape[1]) ** 0.5  # NEFTune: uniform noise in ±alpha/sqrt(L·d)
    assert len(seen) == 2
    assert all(0 < noisy <= bound and quiet == 0 for noisy, quiet in seen), (seen, bound)
    with torch.no_grad():
        assert torch.equal(embed.train()(ids), clean)  # hook removed after training


# ---------------------------------------------------------------- RoPE scaling


@pytest.fixture(scope="module")
def short_context_model(tiny_model_dir, tmp_path_factory):
    """The tiny model with a trained context of 64 tokens, so 'long' inputs stay cheap."""
    import shutil

    folder = tmp_path_factory.mktemp("short") / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("kind", ["linear", "dynamic", "yarn", "llama3"])
def test_rope_scaling_takes_effect(kind, short_context_model):
    from tuneforge.config.model_args import ModelArguments
    from tuneforge.model.loader import load_model

    plain = load_model(ModelArguments(model_name_or_path=str(short_context_model)), torch.float32, 128)
    scaled_args = ModelArguments(model_name_or_path=str(short_context_model), rope_scaling=kind)
    scaled = load_model(scaled_args, torch.float32, 128)
    rope, rope0 = scaled.model.rotary_emb, plain.model.rotary_emb
    assert scaled.config.rope_parameters["factor"] == 2.0  # cutoff_len 128 over a trained context of 64
    assert rope.rope_type == kind
    inv, inv0 = rope.inv_freq.clone(), rope0.inv_freq
    if kind == "linear":
        assert torch.allclose(inv, inv0 / 2)
    elif kind == "dynamic":  # NTK scaling starts only past the trained context
        assert torch.allclose(inv, inv0) and scaled.config.max_position_embeddings == 64
    elif kind == "yarn":
        assert rope.attention_scaling == pytest.approx(0.1 * torch.log(torch.tensor(2.0)).item() + 1)
        assert torch.allclose(inv[0], inv0[0]) and torch.allclose(inv[-1], inv0[-1] / 2)
    else:  # llama3: high frequencies kept, low frequencies divided by the factor
        assert torch.allclose(inv[0], inv0[0]) and torch.allclose(inv[-1], inv0[-1] / 2)
    ids = torch.arange(3, 3 + 128).unsqueeze(0)  # twice the trained context
    with torch.no_grad():
        long_logits = scaled(ids).logits
        plain_logits = plain(ids).logits
    assert torch.isfinite(long_logits).all()
    assert (long_logits[0, -1] - plain_logits[0, -1]).abs().max() > 1e-3
    if kind == "dynamic":
        assert not torch.allclose(rope.inv_freq, inv0)  # the long input rescaled the frequencies


# ---------------------------------------------------------------- what cannot work: one clear error each

BAD = [
    ({"finetuning_type": "full", "quantization_bit": 4}, "quantization_bit needs LoRA"),
    ({"quantization_bit": 4, "quantization_method": "eetq"}, "eetq needs"),
    ({"quantization_bit": 4, "quantization_type": "int4"}, "'int4' is not one of"),
    ({"quantization_bit": 3}, "'3' is not one of"),
    ({"quantization_bit": 8, "quantization_type": "fp4"}, "quantization_type applies to 4-bit bitsandbytes"),
    ({"quantization_bit": 4, "quantization_method": "hqq", "double_quantization": True}, "double_quantization"),
    ({"quantization_bit": 4, "pissa_init": True}, "cannot start from a quantized base"),
    ({"pissa_convert": True}, "pissa_convert needs pissa_init"),
    ({"pissa_init": True, "pissa_iter": 0}, "pissa_iter must be"),
    ({"loraplus_lr_ratio": 0}, "loraplus_lr_ratio must be > 0"),
    ({"finetuning_type": "full", "use_dora": True}, "'use_dora' has no effect"),
    ({"neat_packing": True, "packing": False}, "contradicts"),
    ({"neat_packing": True, "stage": "dpo"}, "applies to stages pt and sft"),
    ({"loraplus_lr_ratio": 16, "stage": "dpo"}, "not available for stage dpo"),
    ({"use_galore": True}, "optimizer for full fine-tuning"),
    ({"finetuning_type": "full", "use_galore": True, "use_badam": True}, "cannot be combined"),
    ({"finetuning_type": "full", "use_badam": True, "badam_mode": "ratio"}, "badam_mode ratio is not supported"),
    ({"finetuning_type": "full", "galore_rank": 4}, "no effect without use_galore"),
    (
        {"finetuning_type": "full", "use_apollo": True, "apollo_layerwise": True, "gradient_accumulation_steps": 2},
        "no gradient accumulation",
    ),
    ({"booster": "unsloth"}, "unsloth"),
    ({"booster": "liger_kernel"}, "liger_kernel"),
    ({"booster": "flashattn2"}, "flash_attn"),
]


@pytest.mark.parametrize("extra, fragment", BAD, ids=[str(i) for i in range(len(BAD))])
def test_unsupported_combination_is_one_clear_error(extra, fragment, train_overrides, tmp_path):
    extra = dict(extra)
    method = extra.pop("finetuning_type", "lora")
    lr = {"lora": 1e-2, "full": 1e-3}[method]
    with pytest.raises(UserError) as info:
        run_training(load_config(None, train_overrides(method, learning_rate=lr, **extra)))
    message = info.value.one_line()
    assert fragment in message and "\n" not in message, message
    assert not (tmp_path / f"out-{method}").exists()


def test_booster_needs_cuda_even_when_installed(monkeypatch):
    import importlib.util

    from tuneforge.config.model_args import ModelArguments
    from tuneforge.model.boosters import check_booster

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "liger_kernel" else real(name)
    )
    monkeypatch.setattr("tuneforge.utils.devices.has_cuda", lambda: False)
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        check_booster(ModelArguments(booster="liger_kernel"))
    check_booster(ModelArguments(booster="auto"))  # auto: sdpa, runs anywhere


# ---------------------------------------------------------------- the shipped examples run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "train"
METHOD_EXAMPLES = ["qlora", "qlora_hqq", "dora", "pissa", "loraplus", "lora_packing", "galore", "badam", "oft"]


@pytest.mark.parametrize("name", METHOD_EXAMPLES)
def test_method_example_trains_on_the_tiny_model(name, train_overrides, tmp_path):
    """Each example as shipped, with only the model, data and length of the run swapped for tiny ones."""
    import math

    tiny = train_overrides("lora")
    overrides = {key: tiny[key] for key in ("model_name_or_path", "dataset", "dataset_dir", "seed", "disable_tqdm")}
    overrides.update(
        output_dir=str(tmp_path / name), cutoff_len=128, max_steps=2, logging_steps=1, gradient_accumulation_steps=1
    )
    out = run_training(load_config(str(EXAMPLES / f"qwen_{name}_sft.yaml"), overrides))
    losses = read_losses(out)
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert (out / "train_results.json").is_file()
