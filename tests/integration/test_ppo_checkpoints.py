"""PPO's own loop saves checkpoints the way every Trainer stage does: `tmp-checkpoint-N`, one rename, then rotation.

A crash in the middle of a save leaves no `checkpoint-N`; the rerun resumes from the previous complete checkpoint
and ends with the same weights, bit for bit, as a run that was never interrupted. SIGTERM / SIGINT finish the step,
save a checkpoint and exit 130 with one line, like the Trainer stages; the same command then resumes.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from processes import assert_interrupted, train_process, wait_for
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.output_dir import plan_output_dir
from tuneforge.train.ppo import PPOLoop
from tuneforge.train.run import run_training
from tuneforge.utils.run_folder import STATE_FILE, VALUE_HEAD_FILE, complete_checkpoints, trim_log

QUESTIONS = ["Name a fruit.", "Say hello.", "What colour is the sky?", "Count to three.", "你好吗？", "Pick a number."]


@pytest.fixture(scope="module")
def ppo_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ppo-data")
    pairs = [
        {
            "conversations": [{"from": "human", "value": q}],
            "chosen": {"from": "gpt", "value": "Sure: a good answer."},
            "rejected": {"from": "gpt", "value": "no no no"},
        }
        for q in QUESTIONS
    ]
    (folder / "pairs.json").write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    prompts = [{"instruction": q} for q in QUESTIONS]
    (folder / "prompts.json").write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
    info = {
        "pairs": {
            "file_name": "pairs.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
        "prompts": {"file_name": "prompts.json", "columns": {"prompt": "instruction"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def _cfg(tiny_model_dir, ppo_data, **extra) -> dict:
    cfg = {
        "model_name_or_path": str(tiny_model_dir),
        "dataset_dir": str(ppo_data),
        "template": "qwen",
        "finetuning_type": "lora",
        "cutoff_len": 64,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "seed": 0,
        "disable_tqdm": True,
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def reward_model(tiny_model_dir, ppo_data, tmp_path_factory):
    """A (barely trained) LoRA reward model: PPO only needs a score to optimise."""
    out = tmp_path_factory.mktemp("rm") / "rm"
    cfg = _cfg(tiny_model_dir, ppo_data, stage="rm", dataset="pairs", output_dir=str(out), max_steps=1)
    return run_training(load_config(None, cfg))


@pytest.fixture(scope="module")
def ppo_cfg(tiny_model_dir, ppo_data, reward_model):
    def make(output_dir: Path, **extra) -> dict:
        return _cfg(
            tiny_model_dir,
            ppo_data,
            stage="ppo",
            dataset="prompts",
            reward_model=str(reward_model),
            max_new_tokens=4,
            lora_dropout=0.2,  # the dropout RNG must come back on resume too
            output_dir=str(output_dir),
            **extra,
        )

    return make


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return {**load_file(out / "adapter_model.safetensors"), **load_file(out / VALUE_HEAD_FILE)}


def test_ppo_crash_while_saving_leaves_no_checkpoint_and_resume_matches_a_straight_run(ppo_cfg, tmp_path, monkeypatch):
    """A crash while checkpoint-4 is written (after the weights, before optimizer and state) leaves only
    `tmp-checkpoint-4`; `save_total_limit: 1` still keeps checkpoint-2, the rerun resumes from it, rotates only after
    its own rename, and ends bit for bit where an uninterrupted run ends."""
    straight = run_training(load_config(None, ppo_cfg(tmp_path / "straight", max_steps=6, save_steps=2)))

    cfg = ppo_cfg(tmp_path / "run", max_steps=6, save_steps=2, save_total_limit=1)
    out = tmp_path / "run"
    save_weights = PPOLoop.save

    def crash_at_step_4(self, folder):
        save_weights(self, folder)
        if self.step == 4:
            assert folder.name == "tmp-checkpoint-4" and (folder / "adapter_model.safetensors").is_file()
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(PPOLoop, "save", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, cfg))
    monkeypatch.undo()
    assert not (out / "checkpoint-4").exists()
    assert (out / "tmp-checkpoint-4").is_dir() and not (out / "tmp-checkpoint-4" / STATE_FILE).exists()
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"]
    assert plan_output_dir(str(out), cfg, None).resume_from == str(out / "checkpoint-2")

    resumed_from = []
    load = PPOLoop.load_checkpoint
    monkeypatch.setattr(
        PPOLoop, "load_checkpoint", lambda self, folder: resumed_from.append(folder) or load(self, folder)
    )
    run_training(load_config(None, cfg))
    assert resumed_from == [out / "checkpoint-2"]
    assert not list(out.glob("tmp-checkpoint-*"))  # the leftover was cleared at the next save
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-4"]  # checkpoint-2 rotated after the rename
    assert json.loads((out / "checkpoint-4" / STATE_FILE).read_text())["global_step"] == 4

    assert [r["step"] for r in _log(out)] == list(range(1, 7))
    assert [r["mean_reward"] for r in _log(out)] == [r["mean_reward"] for r in _log(straight)]
    a, b = _weights(straight), _weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    at_2 = load_file(straight / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not torch.equal(a[k], at_2[k]) for k in at_2)  # the steps after the checkpoint changed the weights


def test_torn_checkpoint_is_refused_as_an_explicit_resume(tmp_path):
    torn = tmp_path / "checkpoint-4"
    torn.mkdir()
    (torn / "adapter_model.safetensors").write_bytes(b"")
    (torn / STATE_FILE).write_text('{"global_st', encoding="utf-8")  # cut off while written
    with pytest.raises(UserError, match="not a complete checkpoint"):
        plan_output_dir(str(tmp_path / "new"), {}, str(torn))


def test_ppo_refuses_several_processes(ppo_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="stage ppo runs in one process"):
        run_training(load_config(None, ppo_cfg(tmp_path / "ddp", max_steps=2)))
    assert not (tmp_path / "ddp").exists()


def _steps(out: Path) -> list[int]:
    log = out / "trainer_log.jsonl"
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def _wait_for_first_step(proc: subprocess.Popen, out: Path) -> None:
    """Until the first PPO step is logged: the loop (and its signal handlers) is running."""
    wait_for(lambda: bool(_steps(out)), proc, timeout=300)


SIGNAL_RUN_STEPS = 12


@pytest.fixture(scope="module")
def straight_cli_run(ppo_cfg, tmp_path_factory) -> Path:
    """The signal test's run, uninterrupted, in a process of its own (one thread, as the interrupted one)."""
    folder = tmp_path_factory.mktemp("ppo-straight")
    proc = train_process(ppo_cfg(folder / "run", max_steps=SIGNAL_RUN_STEPS, save_steps=100000), folder, "ppo")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return folder / "run"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ppo_signal_saves_a_checkpoint_exits_130_and_the_same_command_resumes(sig, ppo_cfg, straight_cli_run, tmp_path):
    """The Web UI's Abort (SIGTERM) or Ctrl-C (SIGINT) during a real PPO process: the step in progress finishes and
    is logged, `checkpoint-<step>` is saved complete, the process exits 130 with one line and no traceback; running
    the same command again resumes from that checkpoint, finishes at max_steps and ends bit for bit where an
    uninterrupted run ends (lora_dropout > 0: the RNG state saved at the stop has to come back)."""
    out, max_steps = tmp_path / "run", SIGNAL_RUN_STEPS
    cfg = ppo_cfg(out, max_steps=max_steps, save_steps=100000)
    proc = train_process(cfg, tmp_path, "ppo")
    _wait_for_first_step(proc, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err)
    assert "Run the same config again to resume" in err
    (checkpoint,) = complete_checkpoints(out)
    stopped = int(checkpoint.name.split("-")[1])
    assert 1 < stopped < max_steps, "the run ended before the signal: make it longer"
    assert _steps(out) == list(range(1, stopped + 1))  # the stopped step was logged; nothing after it is lost
    assert json.loads((checkpoint / STATE_FILE).read_text())["global_step"] == stopped
    assert (checkpoint / "optimizer.pt").is_file() and (checkpoint / VALUE_HEAD_FILE).is_file()
    assert not (out / "train_results.json").exists() and not (out / "adapter_model.safetensors").exists()
    assert not list(out.glob("tmp-checkpoint-*"))

    again = train_process(cfg, tmp_path, "ppo")  # the same command, unchanged
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert f"resuming from {checkpoint} (step {stopped})" in err
    assert _steps(out) == list(range(1, max_steps + 1))
    assert json.loads((out / "train_results.json").read_text())["global_step"] == max_steps
    final, at_stop = _weights(out), load_file(checkpoint / "adapter_model.safetensors")
    assert any(not torch.equal(final[k], at_stop[k]) for k in at_stop)  # the resumed steps trained on
    straight = _weights(straight_cli_run)
    assert final.keys() == straight.keys() and all(torch.equal(final[k], straight[k]) for k in final)
    assert [r["mean_reward"] for r in _log(out)] == [r["mean_reward"] for r in _log(straight_cli_run)]


def test_ppo_second_signal_stops_at_once(ppo_cfg, tmp_path):
    """Abort, then Ctrl-C before the step ends (two different signals, so they cannot merge into one): the second
    stops at once — exit 130, one line, no traceback — without waiting for the step or writing a checkpoint."""
    out = tmp_path / "run"
    proc = train_process(ppo_cfg(out, max_steps=100000, save_steps=100000), tmp_path, "ppo")
    _wait_for_first_step(proc, out)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err)
    assert "Run the same config again to resume" not in err
    assert complete_checkpoints(out) == [] and not (out / "train_results.json").exists()


def test_resume_drops_log_lines_past_the_checkpoint_and_a_torn_last_line(tmp_path):
    """A kill -9 while a log line was written leaves it cut off: the resume drops it (it used to crash on it)."""
    rows = [{"step": i, "loss": 1.0 / i} for i in range(1, 6)]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6, "lo'
    (tmp_path / "trainer_log.jsonl").write_text(text, encoding="utf-8")
    trim_log(tmp_path, 4)
    assert _log(tmp_path) == rows[:4]
