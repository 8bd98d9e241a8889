"""`tuneforge export` to a Hugging Face folder: merged LoRA = base + adapter through peft, the training template as
chat_template, stop tokens in generation_config, shards, dtype, and the export folder's safety rules."""

from __future__ import annotations

import json

import pytest

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.export.run import run_export

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MESSAGES = [{"role": "user", "content": "Who are you? 你是谁？"}]


def make_cfg(**keys):
    return load_config(None, [f"{k}={v}" for k, v in keys.items()])


def make_adapter(base_dir, out_dir, seed: int = 0, targets=TARGETS):
    """A peft LoRA adapter with random, non-zero A and B: merging it must change every targeted weight."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapters") / "lora")


def test_merged_export_matches_base_plus_adapter(tiny_model_dir, adapter_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from tuneforge.data.conversation import Conversation, Message
    from tuneforge.data.template import get_template

    out = run_export(
        make_cfg(
            model_name_or_path=tiny_model_dir,
            adapter_name_or_path=adapter_dir,
            template="qwen",
            export_dir=tmp_path / "x",
        )
    )
    files = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" in files and not [f for f in files if f.endswith((".bin", ".pt"))]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left

    # plain transformers loads the export; peft's unmerged base + adapter is the reference
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = ids["input_ids"]
    with torch.no_grad():
        got, want, plain = (m(ids).logits for m in (merged, reference, base))
    assert (got - want).abs().max().item() < 1e-5
    assert (got - plain).abs().max().item() > 1e-2  # the adapter matters: the check above is not trivially true
    greedy = {"max_new_tokens": 16, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.no_grad():
        assert merged.generate(ids, **greedy).tolist() == reference.generate(input_ids=ids, **greedy).tolist()

    # the chat_template renders exactly what training saw; generation stops on the template's stop tokens
    template = get_template("qwen", tokenizer)
    conv = Conversation([Message("user", MESSAGES[0]["content"])])
    rendered = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert tokenizer.encode(rendered, add_special_tokens=False) == template.encode_prompt(tokenizer, conv)
    stops = GenerationConfig.from_pretrained(out).eos_token_id
    assert sorted(stops if isinstance(stops, list) else [stops]) == sorted(template.stop_token_ids(tokenizer))
    info = json.loads((out / "tuneforge_export.json").read_text())
    assert info["template"] == "qwen" and info["format"] == "safetensors"
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"  # auto: the base's saved dtype


def test_two_adapters_merge_in_order(tiny_model_dir, adapter_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    second = make_adapter(tiny_model_dir, tmp_path / "second", seed=1, targets=["q_proj", "down_proj"])
    keys = {"model_name_or_path": tiny_model_dir, "template": "qwen", "export_dir": tmp_path / "x"}
    out = run_export(make_cfg(**keys, adapter_name_or_path=f"{adapter_dir},{second}"))
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    reference = PeftModel.from_pretrained(reference, adapter_dir).merge_and_unload()
    reference = PeftModel.from_pretrained(reference, second).eval()
    ids = torch.arange(20, 60).unsqueeze(0)
    with torch.no_grad():
        diff = AutoModelForCausalLM.from_pretrained(out)(ids).logits - reference(ids).logits
    assert diff.abs().max().item() < 1e-5


def test_full_export_shards_and_dtype(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = run_export(
        make_cfg(model_name_or_path=tiny_model_dir, export_dir=tmp_path / "x", export_size=0.001, infer_dtype="bf16")
    )
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()  # 5 MB model, 1 MB shards
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert exported.keys() == base.keys()
    for name, tensor in base.items():
        assert torch.equal(exported[name], tensor.to(torch.bfloat16)), name


def test_trained_lora_and_full_runs_export_with_their_template(train_overrides, tmp_path):
    """Real runs: the template comes from the run's config.yaml (not given to export); the LoRA merge is verified."""
    from transformers import AutoTokenizer

    from tuneforge.config import load_config as load
    from tuneforge.data.template import get_template
    from tuneforge.train.run import run_training

    def overrides(d):
        return [f"{k}={v}" for k, v in d.items()]

    lora_run = run_training(load(None, overrides(train_overrides("lora", max_steps=3, template="chatml"))))
    full_run = run_training(load(None, overrides(train_overrides("full", max_steps=2, template="chatml"))))
    base = train_overrides("lora")["model_name_or_path"]
    outs = [
        run_export(make_cfg(model_name_or_path=base, adapter_name_or_path=lora_run, export_dir=tmp_path / "lora")),
        run_export(make_cfg(model_name_or_path=full_run, export_dir=tmp_path / "full")),
    ]
    for out in outs:
        tokenizer = AutoTokenizer.from_pretrained(out)
        assert tokenizer.chat_template == get_template("chatml", tokenizer).to_jinja()
        assert json.loads((out / "tuneforge_export.json").read_text())["template"] == "chatml"


def test_unmerged_export_fails_loudly(tiny_model_dir, adapter_dir, tmp_path, monkeypatch):
    """The LLaMA-Factory bug: merge_and_unload that returns the base unchanged must stop the export."""
    from peft.tuners.tuners_utils import BaseTuner

    from tuneforge.export.verify import MergeCheckError

    monkeypatch.setattr(BaseTuner, "merge_and_unload", lambda self, *a, **k: self.unload())
    with pytest.raises(MergeCheckError, match="merge did not happen"):
        run_export(
            make_cfg(model_name_or_path=tiny_model_dir, adapter_name_or_path=adapter_dir, export_dir=tmp_path / "x")
        )
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())


def test_untrained_adapter_is_refused(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(tmp_path / "zero")  # B = 0
    with pytest.raises(UserError, match="changes no weight"):
        run_export(
            make_cfg(
                model_name_or_path=tiny_model_dir, adapter_name_or_path=tmp_path / "zero", export_dir=tmp_path / "x"
            )
        )


def test_export_dir_rules(tiny_model_dir, tmp_path, monkeypatch):
    target = tmp_path / "x"
    first = run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=target))
    run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=target))  # a previous export is replaced
    assert (first / "tuneforge_export.json").is_file()

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds other files"):
        run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=other))
    assert (other / "notes.txt").read_text() == "mine"
    run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=other, export_overwrite=True))
    assert (other / "notes.txt").read_text() == "mine" and (other / "model.safetensors").is_file()  # kept

    # a re-export replaces what the previous export wrote (its marker lists it), and keeps the user's files
    marker = json.loads((other / "tuneforge_export.json").read_text())
    assert "model.safetensors" in marker["files"] and "notes.txt" not in marker["files"]
    marker["files"].append("model-00002-of-00002.safetensors")  # a shard the new export does not write
    (other / "tuneforge_export.json").write_text(json.dumps(marker))
    (other / "model-00002-of-00002.safetensors").write_bytes(b"stale")
    (other / "mine").mkdir()
    run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=other))
    assert not (other / "model-00002-of-00002.safetensors").exists()
    assert (other / "notes.txt").read_text() == "mine" and (other / "mine").is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or old folder left

    # a failure half way leaves the previous export as it was and no staging folder behind
    before = sorted(p.name for p in target.iterdir())
    import tuneforge.export.save as save

    def broken(item, folder, size):
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(save, "save_hf", broken)
    with pytest.raises(OSError, match="disk full"):
        run_export(make_cfg(model_name_or_path=tiny_model_dir, export_dir=target))
    assert sorted(p.name for p in target.iterdir()) == before
    assert (target / "model.safetensors").stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_qlora_adapter_merges_into_the_full_precision_base(train_overrides, tmp_path):
    """A 4-bit QLoRA run's adapter: export loads the base unquantized and merges; the result equals peft's merge."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.config import load_config as load
    from tuneforge.train.run import run_training

    keys = train_overrides("lora", max_steps=2, quantization_bit=4)
    run = run_training(load(None, [f"{k}={v}" for k, v in keys.items()]))
    base = keys["model_name_or_path"]
    out = run_export(make_cfg(model_name_or_path=base, adapter_name_or_path=run, export_dir=tmp_path / "x"))
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), run).merge_and_unload()
    ids = torch.arange(20, 60).unsqueeze(0)
    with torch.no_grad():
        diff = AutoModelForCausalLM.from_pretrained(out)(ids).logits - reference(ids).logits
    assert diff.abs().max().item() < 1e-5
