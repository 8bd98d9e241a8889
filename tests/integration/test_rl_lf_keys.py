"""LLaMA-Factory's reward / reference model keys: reward_model_type lora and api, ref_model_quantization_bit,
reward_model_quantization_bit, and KTO at per_device_train_batch_size 1 (LF's own example file)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.config.validate import check_stage
from tuneforge.errors import UserError
from tuneforge.train.run import run_training
from tuneforge.utils.run_folder import read_records

GOOD, BAD = "Sure, happy to help: good answer.", "no"
QUESTIONS = ["Name a fruit.", "Say hello.", "Count to three.", "Pick a number.", "你好吗？", "Name an animal."]
LF_KTO_EXAMPLE = """\
### model
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
trust_remote_code: true

### method
stage: kto
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
pref_beta: 0.1

### dataset
dataset: kto_en_demo
template: qwen3_nothink
cutoff_len: 2048
max_samples: 1000
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/qwen3-4b/lora/kto
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 5.0e-6
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
"""  # LLaMA-Factory 0.9.5 examples/train_lora/qwen3_lora_kto.yaml, verbatim but for the eval comments


@pytest.fixture(scope="module")
def rl_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rl-data")
    files = {
        "pairs.json": [
            {
                "conversations": [{"from": "human", "value": q}],
                "chosen": {"from": "gpt", "value": GOOD},
                "rejected": {"from": "gpt", "value": BAD},
            }
            for q in QUESTIONS
        ],
        "kto.json": [
            {
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": GOOD if i % 2 else BAD}],
                "label": bool(i % 2),
            }
            for i, q in enumerate(QUESTIONS)
        ],
        "prompts.json": [{"instruction": q} for q in QUESTIONS],
    }
    for name, rows in files.items():
        (folder / name).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    info = {
        "pairs": {
            "file_name": "pairs.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
        "kto": {
            "file_name": "kto.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "kto_tag": "label"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        },
        "prompts": {"file_name": "prompts.json", "columns": {"prompt": "instruction"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def rl_cfg(tiny_model_dir, rl_data, tmp_path):
    def make(stage: str, name: str = "run", **extra) -> dict:
        cfg = {
            "model_name_or_path": str(tiny_model_dir),
            "stage": stage,
            "dataset": {"rm": "pairs", "dpo": "pairs", "kto": "kto", "ppo": "prompts"}[stage],
            "dataset_dir": str(rl_data),
            "template": "qwen",
            "finetuning_type": "lora",
            "cutoff_len": 64,
            "output_dir": str(tmp_path / name),
            "per_device_train_batch_size": 2,
            "max_steps": 3,
            "logging_steps": 1,
            "save_steps": 100,
            "learning_rate": 1e-2,
            "lr_scheduler_type": "constant",
            "seed": 0,
            "disable_tqdm": True,
        }
        return {**cfg, **extra}

    return make


@pytest.fixture(scope="module")
def lora_rm(tiny_model_dir, rl_data, tmp_path_factory):
    """A LoRA reward model trained on the tiny base (an rm run folder)."""
    out = tmp_path_factory.mktemp("lora-rm") / "rm"
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "stage": "rm",
        "dataset": "pairs",
        "dataset_dir": str(rl_data),
        "template": "qwen",
        "finetuning_type": "lora",
        "cutoff_len": 64,
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "max_steps": 3,
        "learning_rate": 1e-2,
        "seed": 0,
        "disable_tqdm": True,
    }
    return run_training(load_config(None, cfg))


def _ppo(**extra) -> dict:
    return {"max_new_tokens": 4, "temperature": 1.0, "ppo_epochs": 1, "max_steps": 2, **extra}


def _records(out) -> list[dict]:
    return [r for r in read_records(out) if "loss" in r]


# ---- reward_model_type: lora --------------------------------------------------------------------------------------
def test_lora_reward_adapter_scores_like_the_rm_run_loaded_whole(tiny_model_dir, lora_rm):
    import torch
    from transformers import AutoTokenizer

    from tuneforge.model.reward import load_reward_model
    from tuneforge.train.ppo_reward import AdapterScorer

    cfg = load_config(None, {"model_name_or_path": str(tiny_model_dir), "stage": "ppo", "finetuning_type": "lora"})
    policy = _lora_policy(cfg)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n" + a for a in (GOOD, BAD, "ok")]
    scorer = AdapterScorer(policy, str(lora_rm), tokenizer)
    whole, whole_tok = load_reward_model(lora_rm, torch.float32)
    enc = whole_tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = whole(**enc).logits[:, 0]
    trainable_before = sorted(n for n, p in policy.named_parameters() if p.requires_grad)
    got = scorer(texts)
    assert got.tolist() == pytest.approx(expected.tolist(), abs=1e-4)
    assert expected[0] != pytest.approx(expected[1].item(), abs=1e-3)  # a trained head: the texts differ
    assert sorted(n for n, p in policy.named_parameters() if p.requires_grad) == trainable_before
    assert all("reward" not in n for n in trainable_before)


def _lora_policy(cfg):
    from tuneforge.train.common import load_tokenizer_and_template, load_trainable_model

    tokenizer, _ = load_tokenizer_and_template(cfg)
    return load_trainable_model(cfg, tokenizer)


def test_ppo_with_lora_reward_uses_the_adapter_scores(rl_cfg, lora_rm):
    full = _records(run_training(load_config(None, rl_cfg("ppo", "full", reward_model=str(lora_rm), **_ppo()))))
    lora_out = run_training(
        load_config(None, rl_cfg("ppo", "lora", reward_model=str(lora_rm), reward_model_type="lora", **_ppo()))
    )
    lora = _records(lora_out)
    # same seed, same samples at step 1: the same scores, whether the rm run is loaded whole or as an adapter
    assert lora[0]["mean_reward"] == pytest.approx(full[0]["mean_reward"], abs=1e-4)
    assert [r["step"] for r in lora] == [1, 2]
    assert not (lora_out / "reward").exists()  # only the trained adapter is saved
    assert (lora_out / "adapter_model.safetensors").is_file()


# ---- reward_model_type: api ---------------------------------------------------------------------------------------
class _RewardServer(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body)
        scores = [float(len(text) % 7) for text in body["messages"]]  # any deterministic function of the text
        answer = json.dumps({"scores": scores}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def reward_server():
    _RewardServer.received = []
    server = HTTPServer(("127.0.0.1", 0), _RewardServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/score", _RewardServer.received
    server.shutdown()
    server.server_close()


def test_ppo_with_api_reward_posts_texts_and_uses_the_scores(rl_cfg, reward_server):
    url, received = reward_server
    out = run_training(load_config(None, rl_cfg("ppo", reward_model=url, reward_model_type="api", **_ppo())))
    records = _records(out)
    assert len(received) == 2 and all(body["model"] == "model" for body in received)
    first = received[0]["messages"]
    assert len(first) == 2 and all("<|im_start|>user" in text for text in first)  # prompt + response, as text
    assert records[0]["mean_reward"] == pytest.approx(sum(len(t) % 7 for t in first) / 2)


def test_api_reward_needs_a_url(rl_cfg):
    with pytest.raises(UserError, match="needs reward_model to be the URL"):
        check_stage(load_config(None, rl_cfg("ppo", reward_model="some/folder", reward_model_type="api")))


def test_lora_reward_needs_a_lora_policy(rl_cfg, lora_rm):
    cfg = rl_cfg("ppo", reward_model=str(lora_rm), reward_model_type="lora", finetuning_type="full")
    with pytest.raises(UserError, match="the policy must be LoRA too"):
        check_stage(load_config(None, cfg))


# ---- quantized reference and reward models -------------------------------------------------------------------------
def _bnb_linears(model, cls) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def test_ref_model_quantization_bit_loads_a_4bit_reference_and_dpo_trains(rl_cfg, tiny_model_dir, monkeypatch):
    import bitsandbytes as bnb

    import tuneforge.train.dpo as dpo

    seen = []
    real = dpo.load_ref_model
    monkeypatch.setattr(dpo, "load_ref_model", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    cfg = rl_cfg("dpo", ref_model=str(tiny_model_dir), ref_model_quantization_bit=4, max_steps=4)
    records = _records(run_training(load_config(None, cfg)))
    ref = seen[0]
    assert _bnb_linears(ref, bnb.nn.Linear4bit) == 7 * ref.config.num_hidden_layers  # q k v o gate up down
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["rewards/margins"] > records[0]["rewards/margins"], records


def test_ref_model_quantization_bit_needs_ref_model(rl_cfg):
    with pytest.raises(UserError, match="ref_model_quantization_bit applies to ref_model"):
        check_stage(load_config(None, rl_cfg("dpo", ref_model_quantization_bit=4)))


def test_reward_model_quantization_bit_loads_an_8bit_reward_model(rl_cfg, lora_rm, monkeypatch):
    import bitsandbytes as bnb

    import tuneforge.train.ppo as ppo

    scorers = []
    real = ppo.make_scorer
    monkeypatch.setattr(ppo, "make_scorer", lambda *a, **k: scorers.append(real(*a, **k)) or scorers[-1])
    cfg = rl_cfg("ppo", reward_model=str(lora_rm), reward_model_quantization_bit=8, **_ppo())
    records = _records(run_training(load_config(None, cfg)))
    model = scorers[0].model
    assert _bnb_linears(model, bnb.nn.Linear8bitLt) == 7 * model.config.num_hidden_layers
    assert not any(isinstance(m, bnb.nn.Linear8bitLt) for n, m in model.named_modules() if "score" in n)
    assert [r["step"] for r in records] == [1, 2]


# ---- KTO at per_device_train_batch_size 1 --------------------------------------------------------------------------
def test_lf_kto_example_trains_at_batch_size_1(tiny_model_dir, rl_data, tmp_path):
    keys = yaml.safe_load(LF_KTO_EXAMPLE)
    keys.update(
        model_name_or_path=str(tiny_model_dir),
        dataset="kto",
        dataset_dir=str(rl_data),
        template="qwen",
        output_dir=str(tmp_path / "kto"),
        max_steps=3,
        logging_steps=1,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        preprocessing_num_workers=1,
        dataloader_num_workers=0,
        bf16=False,  # fp32 on any CPU
        trust_remote_code=False,
        disable_tqdm=True,
    )
    assert keys["per_device_train_batch_size"] == 1
    records = _records(run_training(load_config(None, keys)))
    assert [r["step"] for r in records] == [1, 2, 3]
    kls = [r["kl"] for r in records]
    assert all(0 <= kl < 1e3 for kl in kls) and kls[-1] > 0, kls  # finite, and live once the policy moves
    margins = [r["rewards/chosen"] - r["rewards/rejected"] for r in records]
    assert margins[-1] > margins[0] + 0.1, margins
    assert records[-1]["loss"] < records[0]["loss"]


def test_kto_kl_pairs_come_from_another_row():
    from datasets import Dataset

    from tuneforge.train.kto import _trainer_class

    rows = Dataset.from_list([{"prompt_ids": [1], "completion_ids": [10 + i], "label": i % 2 == 0} for i in range(5)])
    trainer = object.__new__(_trainer_class())
    trainer.calculate_KL = True
    paired = trainer._prepare_dataset(rows, None, None, "train")
    assert paired["KL_completion_ids"] == [[14], [10], [11], [12], [13]]  # row i gets row i-1's completion


def test_quantized_ref_and_reward_models_keep_bitsandbytes_importable():
    """A `tuneforge train` process holds back the optional backends its config does not use (config/backends.py)."""
    from tuneforge.config.backends import backends_used

    assert backends_used({"stage": "dpo", "ref_model_quantization_bit": 4}) == {"bitsandbytes"}
    assert backends_used({"ref_model_quantization_bit": 4, "quantization_method": "hqq"}) == {"hqq"}
    assert backends_used({"stage": "ppo", "reward_model_quantization_bit": 8}) == {"bitsandbytes"}
