"""GRPO in the Web UI without a browser: the reward-function picker (two boxes, one key, read back from a saved
config), the reward / KL / completion-length curves from trainer_log.jsonl, and the table of the latest sample
completions from completions.jsonl, escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tuneforge.webui import form, grpo_view, i18n
from tuneforge.webui.grpo_view import (
    completions_html,
    grpo_curves,
    grpo_monitor,
    latest_completions,
    reward_frame,
    single_frame,
)

GRPO_FORM = {"stage": "grpo", "model_name_or_path": "m", "dataset": ["math_demo"], "finetuning_type": "lora"}
# trainer_log.jsonl of a GRPO run as the recipe writes it (TRL's metric names), beta > 0 so with kl
LOG = [
    {
        "step": 1,
        "loss": 0.01,
        "reward": -0.5,
        "reward_std": 0.2,
        "rewards/length/mean": -0.75,
        "rewards/length/std": 0.2,
        "rewards/score/mean": 0.5,
        "rewards/score/std": 0.1,
        "kl": 0.0,
        "completions/mean_length": 8.0,
        "completions/clipped_ratio": 1.0,
        "entropy": 2.5,
    },
    {"step": 2, "loss": 0.02, "reward": -0.25, "rewards/length/mean": -0.5, "rewards/score/mean": 0.5, "kl": 0.004},
    {"step": 2, "eval_loss": 1.0},  # an eval line holds none of them
    {"step": 3, "loss": 0.03, "reward": 0.0, "rewards/length/mean": -0.25, "rewards/score/mean": 0.5, "kl": 0.01},
]


def sample(step: int, i: int, **kw) -> dict:
    row = {
        "step": step,
        "prompt": f"Q{i}: 2+2?",
        "completion": f"answer {i}",
        "rewards": {"length": -0.5, "score": 1.0},
        "reward": 0.5,
        "advantage": 0.25,
    }
    return {**row, **kw}


def write_run(folder: Path, log: list[dict], samples: list[dict] | None = None, tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    if samples is not None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in samples) + tail
        (folder / "completions.jsonl").write_text(text, encoding="utf-8")
    return folder


# -- the reward-function picker -------------------------------------------------------------------------------


def test_the_picker_s_two_boxes_become_one_reward_funcs_value_built_ins_first():
    assert form.join_rewards(["length", "accuracy"], " my_rewards.py:score, b.py:f ") == (
        "length,accuracy,my_rewards.py:score,b.py:f"
    )
    assert form.join_rewards([], "") is None and form.join_rewards(None, None) is None
    values = {**GRPO_FORM, "reward_funcs": ["format"], form.REWARD_FILE: "rewards/mine.py:score"}
    cfg = form.build_config(values, [*GRPO_FORM, "reward_funcs"])
    assert cfg["reward_funcs"] == "format,rewards/mine.py:score"
    assert "reward_file" not in cfg  # not a config key
    other_stage = {**values, "stage": "sft", "dataset": ["identity"]}
    assert "reward_funcs" not in form.build_config(other_stage, [*GRPO_FORM, "reward_funcs"])


def test_a_saved_reward_funcs_value_fills_both_boxes_and_writes_back_the_same():
    saved = {**GRPO_FORM, "dataset": "math_demo", "reward_funcs": "accuracy, format,my_rewards.py:score"}
    values, extra, _ = form.split_config(saved)
    assert values["reward_funcs"] == ["accuracy", "format"]
    assert values[form.REWARD_FILE] == "my_rewards.py:score"
    assert "reward_funcs" not in (yaml.safe_load(extra) or {})
    assert form.build_config(values, extra=extra)["reward_funcs"] == "accuracy,format,my_rewards.py:score"
    as_list = form.split_config({**saved, "reward_funcs": ["length"]})[0]  # YAML may hold a list
    assert (as_list["reward_funcs"], as_list[form.REWARD_FILE]) == (["length"], "")
    unset = form.split_config({"model_name_or_path": "m"})[0]
    assert (unset["reward_funcs"], unset[form.REWARD_FILE]) == ([], "")


def test_an_order_the_boxes_cannot_keep_stays_as_written_in_extra_args():
    """reward_weights go by position: 'file, built-in' must not come back as 'built-in, file'."""
    saved = {**GRPO_FORM, "dataset": "math_demo", "reward_funcs": "mine.py:score,length", "reward_weights": "1,0.5"}
    values, extra, _ = form.split_config(saved)
    assert (values["reward_funcs"], values[form.REWARD_FILE]) == ([], "")
    assert yaml.safe_load(extra) == {"reward_funcs": "mine.py:score,length", "reward_weights": "1,0.5"}
    cfg = form.build_config(values, extra=extra)
    assert (cfg["reward_funcs"], cfg["reward_weights"]) == ("mine.py:score,length", "1,0.5")


def test_the_form_config_with_the_picker_is_one_tuneforge_train_takes():
    values = {key: form.to_widget(key, form.default(key)) for key in form.TRAIN_FORM}
    values.update(GRPO_FORM, reward_funcs=["length"], num_generations=4, max_completion_length=8)
    values[form.REWARD_FILE] = ""
    cfg = form.build_config(values)
    assert {k: cfg[k] for k in ("stage", "reward_funcs", "num_generations", "max_completion_length")} == {
        "stage": "grpo",
        "reward_funcs": "length",
        "num_generations": 4,
        "max_completion_length": 8,
    }
    loaded = form.validate(cfg)
    assert loaded.finetuning.reward_funcs == "length" and loaded.finetuning.num_generations == 4


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    pytest.importorskip("gradio")
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path_factory.mktemp("saves"), data_dir="data")
    ui.scheduler.stop()
    return demo, ui


def test_the_page_offers_the_built_ins_and_a_file_box_shown_for_grpo_only(page):
    demo, ui = page
    picker, file_box = ui.elems["reward_funcs"], ui.elems[form.REWARD_FILE]
    assert picker.multiselect and [c[1] for c in picker.choices] == ["accuracy", "format", "length", "tool_call"]
    assert file_box.elem_id == "tf-reward_file" and not file_box.visible
    (dep,) = {id(d.fn): d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "on_stage"}.values()
    ids = [o.elem_id for o in dep.outputs]
    for stage, shown in (("grpo", True), ("dpo", False), ("sft", False)):
        updates = dict(zip(ids, dep.fn(stage, "data", []), strict=True))
        assert updates["tf-reward_file"]["visible"] is shown and updates["tf-reward_funcs"]["visible"] is shown
    grpo = dict(zip(ids, dep.fn("grpo", "data", []), strict=True))
    assert "math_demo" in grpo["tf-dataset"]["choices"]


def test_the_charts_carry_their_name_as_a_title_that_follows_the_language(page):
    _, ui = page
    assert [ui.elems[k].title for k in ("reward_plot", "kl_plot", "length_plot")] == [
        "Reward",
        "KL",
        "Completion length",
    ]
    updates = dict(zip((item.key for item in ui.texts), ui.translate("zh"), strict=True))
    assert updates["reward_plot"]["title"] == i18n.label("reward_plot", "zh") == "奖励"


def test_loading_a_grpo_config_fills_the_picker(page, tmp_path):
    from tuneforge.webui.tabs.train import FORM_KEYS, fill_form

    _, ui = page
    cfg = {**GRPO_FORM, "dataset": "math_demo", "reward_funcs": "length,mine.py:score", "num_generations": 4}
    updates = dict(zip(FORM_KEYS, fill_form(ui, cfg), strict=True))
    assert updates["reward_funcs"]["value"] == ["length"]
    assert updates[form.REWARD_FILE]["value"] == "mine.py:score"
    assert updates["num_generations"]["value"] == 4 and updates["stage"]["value"] == "grpo"


# -- the curves -----------------------------------------------------------------------------------------------


def test_reward_kl_and_length_curves_from_trainer_log():
    curves = grpo_curves(LOG)
    assert curves.rewards == {
        "reward": [(1, -0.5), (2, -0.25), (3, 0.0)],
        "length": [(1, -0.75), (2, -0.5), (3, -0.25)],
        "score": [(1, 0.5), (2, 0.5), (3, 0.5)],
    }
    assert curves.kl == [(1, 0.0), (2, 0.004), (3, 0.01)] and curves.length == [(1, 8.0)]
    frame = reward_frame(curves, "zh")
    assert list(frame.columns) == ["step", "reward", "series"]
    assert list(dict.fromkeys(frame["series"])) == [i18n.label("series_reward", "zh"), "length", "score"]
    assert frame[frame["series"] == "length"][["step", "reward"]].values.tolist() == [[1, -0.75], [2, -0.5], [3, -0.25]]
    assert single_frame(curves.kl, "kl").values.tolist() == [[1, 0.0], [2, 0.004], [3, 0.01]]


def test_a_run_without_grpo_metrics_has_no_curves_and_a_long_one_is_thinned():
    assert not grpo_curves([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "eval_loss": 1.5}])
    assert not grpo_curves([{"step": 1, "reward": None, "kl": float("nan"), "completions/mean_length": True}])
    long = grpo_curves([{"step": s, "reward": s / 10, "rewards/length/mean": 0.0} for s in range(1, 5001)])
    frame = reward_frame(long)
    per_series = frame.groupby("series")["step"].agg(["count", "min", "max"])
    assert (per_series["count"] <= 410).all() and (per_series["min"] == 1).all() and (per_series["max"] == 5000).all()


# -- the sample completions -----------------------------------------------------------------------------------


def test_the_latest_logged_step_s_rows_from_completions_jsonl(tmp_path):
    rows = [sample(1, i) for i in range(4)] + [sample(2, i, completion=f"new {i}") for i in range(4)]
    run = write_run(tmp_path / "run", LOG, rows, tail='{"step": 3, "prompt": "cut off')  # a line being written
    step, latest = latest_completions(run)
    assert step == 2 and [r["completion"] for r in latest] == ["new 0", "new 1", "new 2", "new 3"]
    assert latest_completions(tmp_path / "none") == (None, [])
    assert latest_completions(write_run(tmp_path / "empty", LOG, [])) == (None, [])


def test_a_step_longer_than_the_piece_read_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(grpo_view, "TAIL_BYTES", 64)  # far less than one step's rows: the reader reads more
    rows = [sample(1, i) for i in range(3)] + [sample(7, i) for i in range(16)]
    step, latest = latest_completions(write_run(tmp_path / "run", LOG, rows))
    assert step == 7 and [r["prompt"] for r in latest] == [f"Q{i}: 2+2?" for i in range(16)]
    step, only = latest_completions(write_run(tmp_path / "one", LOG, [sample(5, i) for i in range(6)]))
    assert step == 5 and len(only) == 6  # the whole file is one step


def test_the_samples_table_shows_every_reward_and_escapes_text():
    rows = [
        sample(3, 0, completion="<script>alert(1)</script> & done", rewards={"length": -0.5, "score": None}),
        sample(3, 1, prompt="<b>hi</b>", reward=-1.0, advantage=-1.5, rewards={"length": -1.0, "score": 0.0}),
    ]
    html = completions_html(3, rows, "en")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in html
    assert "<b>hi</b>" not in html and "&lt;b&gt;hi&lt;/b&gt;" in html
    heads = ["Prompt", "Completion", "length", "score", "Reward", "Advantage"]
    assert "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>" in html
    assert i18n.text("samples_title", "en", step=3) in html and 'data-step="3"' in html
    scores = re.findall(r'<td style="text-align:right">([^<]*)</td>', html)
    assert scores == ["-0.500", "–", "0.500", "0.250", "-1.000", "0.000", "-1.000", "-1.500"]  # row by row
    assert completions_html(None, [], "en") == ""
    group = completions_html(4, [sample(4, 0), sample(4, 0), sample(4, 1)], "en")  # a group shares its prompt
    assert group.count("Q0: 2+2?") == group.count("Q1: 2+2?") == 1 and group.count('rowspan="2"') == 1
    assert group.count("<tr>") == 4 and group.count("answer 0") == 2
    assert i18n.label("samples_completion", "ja") in completions_html(3, rows, "ja")


def test_the_panel_shows_for_a_grpo_run_and_stays_hidden_for_others(tmp_path):
    run = write_run(tmp_path / "grpo", LOG, [sample(3, i) for i in range(2)])
    shown, kl, kl_shown, length, samples, rewards = grpo_monitor(run, "en")
    assert shown and kl_shown and len(kl) == 3 and length.values.tolist() == [[1, 8.0]]
    assert 'data-step="3"' in samples and set(rewards["series"]) == {"reward (sum)", "length", "score"}
    no_kl = write_run(tmp_path / "beta0", [{k: v for k, v in r.items() if k != "kl"} for r in LOG])
    assert grpo_monitor(no_kl, "en")[:3:2] == (True, False)
    sft = write_run(tmp_path / "sft", [{"step": 1, "loss": 2.0}])
    shown, *_, samples, rewards = grpo_monitor(sft, "en")
    assert not shown and samples == "" and rewards.empty
    assert grpo_monitor(None, "en")[0] is False


def test_the_panel_follows_the_run_the_page_shows(page, tmp_path):
    """The tick behind the panel, as the page wires it: the shown run's curves and samples; hidden for an sft run."""
    demo, ui = page
    (dep,) = [d for d in demo.fns.values() if "tf-grpo_box" in [getattr(o, "elem_id", None) for o in d.outputs]]
    ids = [o.elem_id for o in dep.outputs]
    assert ids[:5] == ["tf-grpo_box", "tf-kl_plot", "tf-length_plot", "tf-grpo_samples", "tf-reward_plot"]
    grpo = write_run(tmp_path / "grpo", LOG, [sample(3, i) for i in range(2)])
    sft = write_run(tmp_path / "sft", [{"step": 1, "loss": 2.0}])
    grpo_job, sft_job = (
        ui.store.add("train", run, run / "config.yaml", run / "train.log", tmp_path) for run in (grpo, sft)
    )

    box, kl, length, samples, rewards, series = dep.fn(grpo_job.id, "zh")
    assert box["visible"] is True and kl["visible"] is True and len(kl["value"]) == 3 and len(length) == 1
    assert 'data-step="3"' in samples and i18n.label("samples_prompt", "zh") in samples
    assert series == [i18n.label("series_reward", "zh"), "length", "score"] and len(rewards) == 9
    box, *_, rewards, series = dep.fn(sft_job.id, "en")
    assert box["visible"] is False and rewards.empty and series == []
    assert dep.fn(None, "en")[0]["visible"] is False
