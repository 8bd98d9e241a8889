"""`tuneforge eval` and predict on the tiny model: accuracy rises after fine-tuning, batching changes nothing,
predict writes what LLaMA-Factory writes, eval_loss / eval_accuracy are logged during training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.evaluate.evaluator import run_eval
from tuneforge.evaluate.metrics import generation_metrics
from tuneforge.evaluate.prompt import task_to_alpaca
from tuneforge.evaluate.tasks import load_task
from tuneforge.train.run import run_training

EVAL_DIR = Path(__file__).resolve().parents[2] / "evaluation"


def eval_cfg(model_dir, save_dir, **extra):
    cfg = {
        "model_name_or_path": str(model_dir),
        "template": "qwen",
        "task": "sample",
        "task_dir": str(EVAL_DIR),
        "n_shot": 0,
        "save_dir": str(save_dir),
        "batch_size": 8,
    }
    cfg.update(extra)
    return load_config(None, cfg)


def answers(task_name="sample") -> dict[str, list[str]]:
    task = load_task(task_name, EVAL_DIR)
    return {s.key: [q.answer for q in s.splits[task.split]] for s in task.subjects}


@pytest.mark.slow
def test_accuracy_rises_after_finetuning_on_the_train_split(tiny_model_dir, tmp_path):
    before = {k: run_eval(eval_cfg(tiny_model_dir, tmp_path / f"before{k}", n_shot=k)) for k in (0, 2)}

    data = tmp_path / "data"
    data.mkdir()
    rows = task_to_alpaca(load_task("sample_train", EVAL_DIR))
    (data / "sample_mc.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (data / "dataset_info.json").write_text(json.dumps({"sample_mc": {"file_name": "sample_mc.json"}}))
    out = run_training(
        load_config(
            None,
            {
                "model_name_or_path": str(tiny_model_dir),
                "template": "qwen",
                "dataset": "sample_mc",
                "dataset_dir": str(data),
                "finetuning_type": "lora",
                "lora_rank": 16,
                "cutoff_len": 256,
                "output_dir": str(tmp_path / "lora"),
                "per_device_train_batch_size": 8,
                "max_steps": 100,
                "learning_rate": 3e-3,
                "lr_scheduler_type": "constant",
                "logging_steps": 10,
                "save_steps": 1000,
                "seed": 0,
                "disable_tqdm": True,
            },
        )
    )
    after = {
        k: run_eval(eval_cfg(tiny_model_dir, tmp_path / f"after{k}", n_shot=k, adapter_name_or_path=str(out)))
        for k in (0, 2)
    }
    # zero-shot is the training format; 2-shot prompts are longer and were never trained, and still improve
    assert before[0]["average"] < 50 and after[0]["average"] >= 75, (before[0]["table"], after[0]["table"])
    assert after[2]["average"] >= before[2]["average"] + 25, (before[2]["table"], after[2]["table"])

    # the report agrees with its own predictions, per subject, per category and on average
    saved = json.loads((tmp_path / "after0" / "results.json").read_text(encoding="utf-8"))
    truth = answers()
    hits = {k: [p == a for p, a in zip(saved["predictions"][k], truth[k], strict=True)] for k in truth}
    for key, subject in saved["subjects"].items():
        assert subject["accuracy"] == pytest.approx(100 * sum(hits[key]) / len(hits[key]), abs=0.01)
    for category, value in saved["categories"].items():
        mine = [h for k, s in saved["subjects"].items() if s["category"] == category for h in hits[k]]
        assert value == pytest.approx(100 * sum(mine) / len(mine), abs=0.01)
    every = [h for v in hits.values() for h in v]
    assert saved["average"] == pytest.approx(100 * sum(every) / len(every), abs=0.01)
    assert "Average" in (tmp_path / "after0" / "results.log").read_text(encoding="utf-8")


def test_batched_scores_equal_one_by_one(tiny_model_dir):
    from tuneforge.evaluate.mc import encode_items, letter_token_ids, score_items
    from tuneforge.evaluate.model import load_for_inference
    from tuneforge.evaluate.prompt import WRAPPERS

    cfg = eval_cfg(tiny_model_dir, "unused")
    loaded = load_for_inference(cfg)
    task = load_task("sample", EVAL_DIR, n_shot=3)
    items = encode_items(task, loaded.template, loaded.tokenizer, WRAPPERS["zh"], 3, 2048, seed=1)
    assert len({len(i.ids) for i in items}) > 5  # prompts of many lengths: padding matters
    _, letters = letter_token_ids(loaded.template, loaded.tokenizer)
    pad = loaded.tokenizer.pad_token_id
    one = score_items(loaded.model, items, letters, pad, loaded.device, batch_size=1)
    many = score_items(loaded.model, items, letters, pad, loaded.device, batch_size=16)
    assert torch.allclose(torch.tensor(one), torch.tensor(many), atol=1e-4)
    with torch.no_grad():  # plain forward of one unpadded prompt
        direct = loaded.model(torch.tensor([items[0].ids])).logits[0, -1, letters]
    assert torch.allclose(direct, torch.tensor(one[0]), atol=1e-4)


def test_cli_eval_prints_the_table_and_keeps_results(tiny_model_dir, tmp_path, capsys):
    args = ["eval", f"model_name_or_path={tiny_model_dir}", "template=qwen", f"task_dir={EVAL_DIR}"]
    args += ["task=sample_test", "n_shot=2", "lang=zh", f"save_dir={tmp_path / 'res'}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "res" / "results.json").read_text(encoding="utf-8"))
    assert saved["n_shot"] == 2 and saved["lang"] == "zh" and saved["shots_used"] == 2
    assert "Average" in printed and f"{saved['average']:.2f}" in printed
    for subject in saved["subjects"].values():
        assert subject["name"] in printed
    assert main(args) == 2  # a second run does not overwrite the results
    assert "save_dir" in capsys.readouterr().err
    assert main([*args, "overwrite_output_dir=true"]) == 0
    assert json.loads((tmp_path / "res" / "results.json").read_text())["predictions"] == saved["predictions"]


def test_cli_eval_with_a_broken_task_names_the_file(tiny_model_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(EVAL_DIR / "sample", tmp_path / "tasks" / "broken")
    (tmp_path / "tasks" / "broken" / "colors_test.csv").write_text("question,A,B,C,D,answer\nSnow?,a,b,c,d,X\n")
    args = ["eval", f"model_name_or_path={tiny_model_dir}", f"task_dir={tmp_path / 'tasks'}", "task=broken"]
    assert main([*args, f"save_dir={tmp_path / 'res'}"]) == 2
    err = capsys.readouterr().err
    assert "colors_test.csv:2" in err and "'X'" in err and "Traceback" not in err
    assert not (tmp_path / "res").exists()


def predict_cfg(train_overrides, out, **extra):
    cfg = train_overrides("lora")
    for key in ("dataset", "max_steps", "learning_rate", "lr_scheduler_type", "logging_steps", "save_steps"):
        cfg.pop(key)
    cfg.update(
        eval_dataset="toy",
        do_train=False,
        do_predict=True,
        predict_with_generate=True,
        do_sample=False,
        max_new_tokens=6,
        output_dir=str(out),
        per_device_eval_batch_size=4,
    )
    cfg.update(extra)
    return load_config(None, cfg)


def test_predict_through_train_writes_predictions_and_scores(train_overrides, data_dir, tmp_path):
    out = run_training(predict_cfg(train_overrides, tmp_path / "pred"))
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text("utf-8").splitlines()]
    source = json.loads((data_dir / "toy.json").read_text(encoding="utf-8"))
    assert len(rows) == len(source)
    for row, sample in zip(rows, source, strict=True):
        assert set(row) == {"prompt", "predict", "label"}
        assert sample["instruction"] in row["prompt"] and row["prompt"].endswith("<|im_start|>assistant\n")
        assert row["label"] == sample["output"].replace("{{name}}", "TuneForge").replace(
            "{{author}}", "the TuneForge team"
        )
    results = json.loads((out / "predict_results.json").read_text(encoding="utf-8"))
    recomputed = generation_metrics([r["predict"] for r in rows], [r["label"] for r in rows])
    assert {k: results[f"predict_{k}"] for k in recomputed} == recomputed
    assert results["predict_samples"] == len(source)
    assert not (out / "adapter_config.json").exists()  # nothing was trained

    # batching (left padding) does not change greedy replies
    single = run_training(predict_cfg(train_overrides, tmp_path / "pred1", per_device_eval_batch_size=1))
    again = [json.loads(line)["predict"] for line in (single / "generated_predictions.jsonl").read_text().splitlines()]
    assert again == [r["predict"] for r in rows]


def test_predict_needs_predict_with_generate(train_overrides, tmp_path):
    with pytest.raises(UserError, match="predict_with_generate"):
        run_training(predict_cfg(train_overrides, tmp_path / "p", predict_with_generate=False))


def test_predict_on_a_malformed_dataset_names_the_file(train_overrides, data_dir, tmp_path):
    (data_dir / "bad.json").write_text('[{"instruction": "hi", "output": "ok"}, {"instruction": ', encoding="utf-8")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["bad"] = {"file_name": "bad.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(UserError) as err:
        run_training(predict_cfg(train_overrides, tmp_path / "p", eval_dataset="bad"))
    assert "bad.json" in err.value.one_line()
    assert not (tmp_path / "p").exists()


def test_training_logs_eval_loss_and_token_accuracy_then_predicts(train_overrides, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.data.loader import get_sft_datasets
    from tuneforge.data.template import get_template
    from tuneforge.evaluate.accuracy import IGNORE_INDEX

    cfg = load_config(
        None,
        train_overrides(
            "lora",
            eval_dataset="toy",
            eval_steps=6,
            compute_accuracy=True,
            do_predict=True,
            predict_with_generate=True,
            do_sample=False,
            max_new_tokens=4,
        ),
    )
    out = run_training(cfg)
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    evals = [r for r in log if r.get("eval_loss") is not None]
    assert sorted({r["step"] for r in evals}) == [6, 12]  # during training; the final evaluate repeats 12
    assert all(0 <= r["eval_accuracy"] <= 1 for r in evals)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] and evals[-1]["eval_accuracy"] > evals[0]["eval_accuracy"]

    # eval_accuracy of the final model, recomputed sample by sample without the Trainer
    tokenizer = AutoTokenizer.from_pretrained(out)
    template = get_template("qwen", tokenizer)
    _, eval_set = get_sft_datasets(cfg.data, template, tokenizer, with_train=False)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out).eval()
    scores = []
    with torch.no_grad():
        for sample in eval_set:
            ids, labels = torch.tensor([sample["input_ids"]]), torch.tensor(sample["labels"])
            pred = model(ids).logits[0].argmax(-1)
            mask = labels[1:] != IGNORE_INDEX
            scores.append((pred[:-1][mask] == labels[1:][mask]).float().mean().item())
    final = json.loads((out / "eval_results.json").read_text())
    assert final["eval_accuracy"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)

    # do_predict after training generates with the trained adapter into the run folder
    rows = (out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(eval_set) and (out / "predict_results.json").is_file()
