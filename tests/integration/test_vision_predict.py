"""do_predict on rows with pictures (LLaMA-Factory's predict config on a vision-language model): each prompt carries
its picture's tokens and pixel values, in batches padded on the left, and answers as the chat engine answers the same
question about the same picture one at a time. A text model given such rows stops in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def test_predict_on_pictures_answers_as_the_chat_engine(tiny_vlm_dir, tmp_path):
    model = tiny_vlm_dir("qwen2_vl")
    out = tmp_path / "predict"
    settings = {"model_name_or_path": str(model), "template": "qwen2_vl", "max_new_tokens": 6, "do_sample": False}
    argv = [f"{k}={v}" for k, v in settings.items()]
    argv += ["do_train=false", "do_predict=true", "predict_with_generate=true", "eval_dataset=shapes_demo_eval"]
    argv += [f"dataset_dir={DATA}", "max_samples=6", "per_device_eval_batch_size=3", f"output_dir={out}"]
    assert main(["train", *argv]) == 0
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all("<|image_pad|>" in row["prompt"] for row in rows)

    engine = HuggingFaceEngine(load_config(None, settings))
    [attr] = get_dataset_attrs("shapes_demo_eval", DATA)
    convs = load_conversations(attr, DATA, load_config(None, {**settings, "dataset_dir": str(DATA)}).data)[:6]
    answers = []
    for conv in convs:
        question = conv.messages[0].content.removeprefix("<image>")
        parts = [{"type": "image_url", "image_url": {"url": conv.images[0]}}, {"type": "text", "text": question}]
        answers.append(engine.chat([{"role": "user", "content": parts}]))
    assert [row["predict"] for row in rows] == answers
    assert len(set(answers)) > 1  # the pictures and questions differ, and so do the answers


def test_predict_with_a_text_model_stops_at_the_first_row_with_a_picture(tiny_model_dir, tmp_path, capsys):
    argv = [f"model_name_or_path={tiny_model_dir}", "template=qwen", "do_train=false", "do_predict=true"]
    argv += ["predict_with_generate=true", "eval_dataset=shapes_demo_eval", f"dataset_dir={DATA}"]
    argv += [f"output_dir={tmp_path / 'out'}"]
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shapes_demo_eval.json:" in err[0] and "the model is a text model" in err[0]
