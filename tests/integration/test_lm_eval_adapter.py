"""eval_backend: lm_eval — lm-evaluation-harness tasks run on our loaded model, offline with local data."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.evaluate.evaluator import run_eval

DOCS = [
    {"question": "What colour is the sky?", "choices": ["blue", "green", "red"], "answer": 0},
    {"question": "What colour is grass?", "choices": ["blue", "green", "red"], "answer": 1},
    {"question": "What colour is blood?", "choices": ["blue", "green", "red"], "answer": 2},
    {"question": "What colour is snow?", "choices": ["white", "green", "red", "black"], "answer": 0},
    {"question": "天空是什么颜色的？", "choices": ["蓝色", "绿色"], "answer": 0},
    {"question": "Which animal says moo?", "choices": ["cow", "dog", "a very small cat"], "answer": 0},
]
TASK_YAML = """\
task: tf_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    higher_is_better: true
"""
HUB_YAML = """\
task: tf_hub_mc
dataset_path: cais/mmlu
dataset_name: abstract_algebra
test_split: test
output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{answer}}"
"""


@pytest.fixture
def task_dir(tmp_path):
    folder = tmp_path / "lm_tasks"
    folder.mkdir()
    data = folder / "tiny_mc.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS), encoding="utf-8")
    (folder / "tiny_mc.yaml").write_text(TASK_YAML.format(data=data), encoding="utf-8")
    (folder / "hub_mc.yaml").write_text(HUB_YAML, encoding="utf-8")  # data only on the hub
    return folder


def cfg_for(tiny_model_dir, task_dir, tmp_path, **extra):
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "template": "qwen",
        "eval_backend": "lm_eval",
        "task": "tf_tiny_mc",
        "task_dir": str(task_dir),
        "n_shot": 0,
        "batch_size": 4,
        "save_dir": str(tmp_path / "lm_results"),
    }
    cfg.update(extra)
    return load_config(None, cfg)


def direct_logprob(model, tokenizer, context: str, continuation: str) -> float:
    """log p(continuation | context) with one unpadded forward pass."""
    ctx = tokenizer.encode(context, add_special_tokens=False)
    cont = tokenizer.encode(context + continuation, add_special_tokens=False)[len(ctx) :]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0, len(ctx) - 1 : -1]
    return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(cont)[:, None]).sum().item()


def test_loglikelihood_equals_a_direct_forward(tiny_model_dir, task_dir, tmp_path):
    from tuneforge.evaluate.lm_eval_adapter import make_lm
    from tuneforge.evaluate.model import load_for_inference

    loaded = load_for_inference(cfg_for(tiny_model_dir, task_dir, tmp_path))
    lm = make_lm(loaded, batch_size=3, max_length=512)
    pairs = [(d["question"] + "\nAnswer:", " " + c) for d in DOCS for c in d["choices"]]
    got = lm.loglikelihood([SimpleNamespace(args=p) for p in pairs])
    for (context, continuation), (logprob, greedy) in zip(pairs, got, strict=True):
        assert logprob == pytest.approx(direct_logprob(loaded.model, loaded.tokenizer, context, continuation), abs=1e-4)
        assert isinstance(greedy, bool)
    # a context that ends with a space scores the same text as the space moved into the continuation
    moved = lm.loglikelihood([SimpleNamespace(args=("What colour is grass? ", "green"))])[0][0]
    assert moved == pytest.approx(direct_logprob(loaded.model, loaded.tokenizer, "What colour is grass?", " green"))
    rolling = lm.loglikelihood_rolling([SimpleNamespace(args=("What colour is grass? Green.",))])[0]
    assert rolling < 0


def test_a_local_lm_eval_task_runs_end_to_end(tiny_model_dir, task_dir, tmp_path):
    from tuneforge.evaluate.model import load_for_inference

    result = run_eval(cfg_for(tiny_model_dir, task_dir, tmp_path))
    saved = json.loads((tmp_path / "lm_results" / "results.json").read_text(encoding="utf-8"))
    assert saved["backend"] == "lm_eval" and "tf_tiny_mc" in result["table"]
    acc = saved["results"]["tf_tiny_mc"]["acc,none"]

    loaded = load_for_inference(cfg_for(tiny_model_dir, task_dir, tmp_path))
    hits = []
    for d in DOCS:  # lm-eval's multiple_choice: context "{question}\nAnswer:", continuation " {choice}"
        scores = [
            direct_logprob(loaded.model, loaded.tokenizer, d["question"] + "\nAnswer:", " " + c) for c in d["choices"]
        ]
        hits.append(max(range(len(scores)), key=scores.__getitem__) == d["answer"])
    assert acc == pytest.approx(sum(hits) / len(hits))


def test_task_data_on_the_hub_is_one_clear_error(tiny_model_dir, task_dir, tmp_path):
    with pytest.raises(UserError) as info:
        run_eval(cfg_for(tiny_model_dir, task_dir, tmp_path, task="tf_hub_mc"))
    assert info.value.where == "task" and "cannot read the data" in info.value.message
    assert "data_files" in info.value.fix


def test_an_unknown_task_names_the_task_dir(task_dir):
    from lm_eval.tasks import TaskManager

    from tuneforge.evaluate.lm_eval_adapter import load_tasks

    local = TaskManager(include_path=str(task_dir), include_defaults=False, verbosity="ERROR")
    with pytest.raises(UserError) as info:
        load_tasks(["tf_tiny_mc", "no_such_task"], str(task_dir), local)
    assert "'no_such_task'" in info.value.message and str(task_dir) in info.value.fix


def test_generate_until_is_greedy_generation_cut_at_the_stop(tiny_model_dir, task_dir, tmp_path):
    from tuneforge.evaluate.lm_eval_adapter import make_lm
    from tuneforge.evaluate.model import load_for_inference

    loaded = load_for_inference(cfg_for(tiny_model_dir, task_dir, tmp_path))
    lm = make_lm(loaded, batch_size=2, max_length=512)
    context = "What colour is the sky?\nAnswer:"
    ids = torch.tensor([loaded.tokenizer.encode(context, add_special_tokens=False)])
    with torch.no_grad():
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    full = loaded.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    stop = full[len(full) // 2] if full.strip() else "\n"
    got = lm.generate_until([SimpleNamespace(args=(context, {"until": [stop], "max_gen_toks": 12}))])[0]
    assert got == full.split(stop)[0]
    assert lm.generate_until([SimpleNamespace(args=(context, {"until": [], "max_gen_toks": 12}))])[0] == full
