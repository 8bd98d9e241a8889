"""Never lose a run: atomic checkpoints, `kill -9` then resume ends bit for bit where a straight run ends,
SIGTERM / SIGINT save a checkpoint and exit cleanly, a half-written checkpoint is never resumed from."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from processes import assert_interrupted, train_process, wait_for
from tuneforge.config import load_config
from tuneforge.train.output_dir import plan_output_dir
from tuneforge.train.run import run_training
from tuneforge.utils.run_folder import complete_checkpoints


def steps_logged(out: Path) -> list[int]:
    log = out / "trainer_log.jsonl"
    if not log.is_file():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r["step"] for r in rows if r.get("loss") is not None]


def adapter(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "adapter_model.safetensors")


@pytest.mark.slow
def test_kill_9_then_resume_is_bit_exact(train_overrides, tmp_path):
    """kill -9 after a checkpoint exists, run the same command again: final weights equal a straight run's, bit for
    bit (lora_dropout > 0, so the dropout RNG, the data order and the optimizer state all have to come back)."""
    common = {"max_steps": 40, "save_steps": 5, "lora_dropout": 0.2, "logging_steps": 1, "lr_scheduler_type": "cosine"}
    straight_cfg = train_overrides("lora", output_dir=str(tmp_path / "straight"), **common)
    straight = train_process(straight_cfg, tmp_path, "straight")
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-3000:]

    out = tmp_path / "killed"
    cfg = train_overrides("lora", output_dir=str(out), **common)
    proc = train_process(cfg, tmp_path, "killed")
    wait_for(lambda: (out / "checkpoint-5" / "trainer_state.json").is_file(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "train_results.json").exists(), "the run finished before the kill: make it longer"
    last = complete_checkpoints(out)[-1]
    last_step = int(last.name.split("-")[1])
    assert last_step < 40
    assert max(steps_logged(out)) - last_step < 5 + 1  # at most the steps since the last checkpoint are lost

    # a newer checkpoint that was being written when the power went: weights but no trainer_state.json
    torn = out / f"checkpoint-{last_step + 5}"
    torn.mkdir(exist_ok=True)
    (torn / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    (torn / "trainer_state.json").unlink(missing_ok=True)
    assert plan_output_dir(str(out), cfg, None).resume_from == str(last)  # skipped: the newest COMPLETE one wins

    with (out / "trainer_log.jsonl").open("a") as log:  # and a log line cut off mid-write
        log.write('{"step": 99, "loss": 1.2')

    again = train_process(cfg, tmp_path, "killed")  # the same command, unchanged
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert steps_logged(out) == steps_logged(tmp_path / "straight") == list(range(1, 41))
    a, b = adapter(tmp_path / "straight"), adapter(out)
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not list(out.glob("tmp-checkpoint-*"))
    assert (torn / "trainer_state.json").is_file()  # step 'last + 5' was saved again, atomically, over the torn one


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_exits_cleanly(sig, train_overrides, tmp_path):
    out = tmp_path / "run"
    cfg = train_overrides("lora", output_dir=str(out), max_steps=100000, save_steps=100000)
    proc = train_process(cfg, tmp_path, "run")
    wait_for(lambda: len(steps_logged(out)) >= 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err)
    assert "Run the same config again to resume" in err
    (checkpoint,) = complete_checkpoints(out)
    stopped = int(checkpoint.name.split("-")[1])
    assert stopped == max(steps_logged(out))  # nothing trained after the checkpoint is lost
    assert not (out / "train_results.json").exists() and not list(out.glob("tmp-checkpoint-*"))

    resumed = run_training(load_config(None, {**cfg, "max_steps": stopped + 2}))  # the same run, a bit further
    assert steps_logged(resumed) == list(range(1, stopped + 3))
    assert (resumed / "train_results.json").is_file()


def test_crash_while_saving_leaves_no_checkpoint_and_resume_uses_the_previous(train_overrides, tmp_path, monkeypatch):
    """A crash in the middle of writing checkpoint-4 (after the weights, before the RNG state and trainer_state.json)
    leaves only `tmp-checkpoint-4`; `checkpoint-4` never exists half-written, and a rerun resumes from checkpoint-2."""
    from transformers import Trainer

    cfg = train_overrides("lora", output_dir=str(tmp_path / "run"), max_steps=6, save_steps=2, save_total_limit=1)
    original = Trainer._save_rng_state

    def crash_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            assert Path(output_dir).name == "tmp-checkpoint-4"
            assert (Path(output_dir) / "adapter_model.safetensors").is_file()
            raise KeyboardInterrupt("power cut")
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, cfg))
    monkeypatch.undo()
    out = tmp_path / "run"
    assert not (out / "checkpoint-4").exists() and (out / "tmp-checkpoint-4").is_dir()
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"]  # save_total_limit=1 kept it
    assert plan_output_dir(str(out), cfg, None).resume_from == str(out / "checkpoint-2")

    run_training(load_config(None, cfg))
    assert not list(out.glob("tmp-checkpoint-*"))
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-6"]  # rotation after the rename
    assert steps_logged(out) == list(range(1, 7))


def test_truncated_trainer_state_is_not_complete(tmp_path):
    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    (tmp_path / "tmp-checkpoint-8").mkdir()
    (tmp_path / "tmp-checkpoint-8" / "trainer_state.json").write_text("{}")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2"]
