"""add_tokens / add_special_tokens / new_special_tokens_config / init_special_tokens / resize_vocab, as
LLaMA-Factory does them: single-id tokens, the embeddings and LM head grown to a multiple of 64, new rows initialised
per method, and a LoRA run whose adapter (with the grown embeddings) + tokenizer load back in plain
transformers + peft."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.model.loader import load_model, load_tokenizer
from tuneforge.model.new_tokens import resize_embeddings

HIDDEN = 128  # the tiny model's
OLD_VOCAB = 4096  # its embedding rows = len(tokenizer)
DESCRIPTIONS = {"<think>": "the reasoning starts here", "</think>": "the reasoning ends"}


@pytest.fixture
def descriptions_file(tmp_path):
    path = tmp_path / "new_tokens.yaml"
    path.write_text("".join(f'"{token}": "{text}"\n' for token, text in DESCRIPTIONS.items()))
    return path


def load_with(tiny_model_dir, **keys):
    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), **keys})
    tokenizer = load_tokenizer(cfg.model)
    torch.manual_seed(0)
    model = load_model(cfg.model, torch.float32, for_training=True)
    resize_embeddings(model, tokenizer, cfg.model)
    return tokenizer, model


def original_rows(tiny_model_dir, ids):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return base.get_input_embeddings().weight[ids], base.lm_head.weight[ids], base


def test_new_tokens_encode_to_single_ids_and_grow_the_embeddings(tiny_model_dir):
    tokenizer, model = load_with(tiny_model_dir, add_tokens="apple_pie, zebra_cake", add_special_tokens="<think>")
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in ("apple_pie", "zebra_cake", "<think>")]
    assert ids == [[OLD_VOCAB], [OLD_VOCAB + 1], [OLD_VOCAB + 2]]
    assert "<think>" in tokenizer.all_special_tokens or tokenizer.added_tokens_decoder[OLD_VOCAB + 2].special
    rows = 4160  # 4099 rounded up to a multiple of 64, as LF pads
    assert model.get_input_embeddings().weight.shape == (rows, HIDDEN)
    assert model.lm_head.weight.shape == (rows, HIDDEN) and model.config.vocab_size == rows


def test_noise_init_is_the_old_mean_plus_scaled_noise(tiny_model_dir):
    _, model = load_with(tiny_model_dir, add_special_tokens="<think>")
    for weight in (model.get_input_embeddings().weight, model.lm_head.weight):
        old_mean = weight[:OLD_VOCAB].mean(dim=0)
        noise = weight[OLD_VOCAB:] - old_mean  # 64 new rows (one token + the padding to 64)
        assert abs(noise.mean().item()) < 0.01
        assert noise.std().item() == pytest.approx(1 / math.sqrt(HIDDEN), rel=0.05)


def test_desc_init_is_the_mean_of_the_description_tokens(tiny_model_dir, descriptions_file):
    tokenizer, model = load_with(
        tiny_model_dir, new_special_tokens_config=str(descriptions_file), init_special_tokens="desc_init"
    )
    for token, text in DESCRIPTIONS.items():
        row = tokenizer.convert_tokens_to_ids(token)
        assert row >= OLD_VOCAB and tokenizer.encode(token, add_special_tokens=False) == [row]
        desc_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        embed, head, _ = original_rows(tiny_model_dir, desc_ids)
        assert torch.allclose(model.get_input_embeddings().weight[row], embed.mean(dim=0), atol=1e-6)
        assert torch.allclose(model.lm_head.weight[row], head.mean(dim=0), atol=1e-6)


def test_desc_init_w_noise_adds_noise_to_the_description_mean(tiny_model_dir, descriptions_file):
    tokenizer, model = load_with(
        tiny_model_dir, new_special_tokens_config=str(descriptions_file), init_special_tokens="desc_init_w_noise"
    )
    noises = []
    for token, text in DESCRIPTIONS.items():
        row = tokenizer.convert_tokens_to_ids(token)
        embed, _, _ = original_rows(tiny_model_dir, tokenizer(text, add_special_tokens=False)["input_ids"])
        noises.append(model.get_input_embeddings().weight[row] - embed.mean(dim=0))
    noise = torch.stack(noises)
    assert noise.std().item() == pytest.approx(1 / math.sqrt(HIDDEN), rel=0.2)


def test_bad_new_token_settings_stop_at_config_load(tiny_model_dir, descriptions_file, tmp_path):
    base = {"model_name_or_path": str(tiny_model_dir)}
    with pytest.raises(UserError, match="none are given"):
        load_config(None, {**base, "init_special_tokens": "desc_init"})
    with pytest.raises(UserError, match="either new_special_tokens_config or add_special_tokens"):
        load_config(None, {**base, "new_special_tokens_config": str(descriptions_file), "add_special_tokens": "<a>"})
    with pytest.raises(UserError, match="does not exist"):
        load_config(None, {**base, "new_special_tokens_config": str(tmp_path / "missing.yaml")})
    (tmp_path / "list.yaml").write_text("- <a>\n")
    with pytest.raises(UserError, match="map each new special token"):
        load_config(None, {**base, "new_special_tokens_config": str(tmp_path / "list.yaml")})


def test_lora_run_trains_new_tokens_and_loads_back_in_plain_peft(train_overrides, descriptions_file):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = train_overrides(
        "lora", max_steps=2, new_special_tokens_config=str(descriptions_file), init_special_tokens="desc_init"
    )
    assert main(["train", *[f"{k}={v}" for k, v in cfg.items()]]) == 0
    out = cfg["output_dir"]
    saved = load_file(f"{out}/adapter_model.safetensors")
    embed_key = next(k for k in saved if "embed_tokens" in k)
    head_key = next(k for k in saved if "lm_head" in k)
    assert saved[embed_key].shape == saved[head_key].shape == (4160, HIDDEN)

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert [tokenizer.encode(t, add_special_tokens=False) for t in DESCRIPTIONS] == [[OLD_VOCAB], [OLD_VOCAB + 1]]
    base = AutoModelForCausalLM.from_pretrained(cfg["model_name_or_path"])
    base.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)  # the adapter's embeddings' shape
    model = PeftModel.from_pretrained(base, out)
    assert torch.equal(model.get_input_embeddings().weight, saved[embed_key])
    assert torch.equal(model.get_output_embeddings().weight, saved[head_key])
    ids = torch.tensor([tokenizer.encode("<think> hi </think>", add_special_tokens=False)])
    with torch.no_grad():
        reference = model(input_ids=ids).logits

    from tuneforge.chat.engine import HuggingFaceEngine  # our chat: the same keys, the base + the run's adapter

    chat_keys = {k: cfg[k] for k in ("model_name_or_path", "template", "new_special_tokens_config")}
    engine = HuggingFaceEngine(load_config(None, {**chat_keys, "adapter_name_or_path": out}))
    with torch.no_grad():
        assert torch.allclose(engine.model(input_ids=ids).logits, reference, atol=1e-5)


def test_resize_vocab_alone_trains_the_embeddings_with_lora(tiny_model_dir):
    from tuneforge.model.adapters import prepare_trainable

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "resize_vocab": True})
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, torch.float32, for_training=True)
    resize_embeddings(model, tokenizer, cfg.model)
    assert model.get_input_embeddings().weight.shape[0] == OLD_VOCAB  # nothing to grow
    peft_model = prepare_trainable(model, cfg.finetuning, [])
    assert set(peft_model.peft_config["default"].modules_to_save) == {"embed_tokens", "lm_head"}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("embed_tokens.modules_to_save" in n for n in trainable)
    # the same run without resize_vocab: LoRA alone, the embeddings stay frozen (so the key is what did it)
    plain = load_config(None, {"model_name_or_path": str(tiny_model_dir)})
    model = load_model(plain.model, torch.float32, for_training=True)
    resize_embeddings(model, tokenizer, plain.model)
    peft_model = prepare_trainable(model, plain.finetuning, [])
    assert peft_model.peft_config["default"].modules_to_save is None
    assert not any("embed_tokens" in n for n, p in peft_model.named_parameters() if p.requires_grad)


def test_a_tied_model_keeps_its_grown_embeddings_tied_under_lora(tmp_path):
    from tuneforge.model.adapters import prepare_trainable
    from tuneforge.model.tiny import create_tiny_model

    folder = create_tiny_model(tmp_path / "tied", layers=1, hidden=64, intermediate=64, tie_embeddings=True)
    cfg = load_config(None, {"model_name_or_path": str(folder), "add_special_tokens": "<x>"})
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, torch.float32, for_training=True)
    resize_embeddings(model, tokenizer, cfg.model)
    assert model.lm_head.weight is model.get_input_embeddings().weight and model.lm_head.weight.shape[0] == 4160
    peft_model = prepare_trainable(model, cfg.finetuning, [])
    embed, head = peft_model.base_model.model.model.embed_tokens, peft_model.base_model.model.lm_head
    assert embed.modules_to_save["default"].weight is head.modules_to_save["default"].weight


def test_dpo_reference_grows_like_the_policy(tiny_model_dir, tmp_path, monkeypatch):
    """full DPO keeps a copy of the base as reference: it gets the same new tokens and vocabulary size."""
    import json

    import tuneforge.train.dpo as dpo

    pairs = [
        {
            "conversations": [{"from": "human", "value": f"<think> question {i}"}],
            "chosen": {"from": "gpt", "value": "a good answer"},
            "rejected": {"from": "gpt", "value": "bad"},
        }
        for i in range(4)
    ]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    info = {"pairs": {"file_name": "pairs.json", "formatting": "sharegpt", "ranking": True}}
    info["pairs"]["columns"] = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    seen = []
    real = dpo.load_ref_model
    monkeypatch.setattr(dpo, "load_ref_model", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    keys = {
        "model_name_or_path": tiny_model_dir,
        "stage": "dpo",
        "finetuning_type": "full",
        "dataset": "pairs",
        "dataset_dir": tmp_path,
        "template": "qwen",
        "cutoff_len": 32,
        "output_dir": tmp_path / "out",
        "per_device_train_batch_size": 2,
        "max_steps": 1,
        "add_special_tokens": "<think>",
        "disable_tqdm": True,
    }
    assert main(["train", *[f"{k}={v}" for k, v in keys.items()]]) == 0
    assert seen[0].get_input_embeddings().weight.shape[0] == 4160
    assert seen[0].lm_head.weight.shape[0] == 4160
