"""Several Web UI sessions on one server at once, without a browser: run folders named in the same second stay
distinct, and two sessions pressing Start on the same folder at the same moment queue it once."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from tuneforge.errors import UserError


@pytest.fixture
def ui(tmp_path, monkeypatch, tiny_model_dir):
    from tuneforge.jobs import runner
    from tuneforge.webui.context import UIContext
    from tuneforge.webui.paths import PathPolicy

    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", "import time; time.sleep(30)"])
    policy = PathPolicy.build(tmp_path / "saves", "data", models_dirs=[tiny_model_dir.parent])
    context = UIContext(saves_dir=tmp_path / "saves", data_dir="data", cwd=tmp_path, policy=policy)
    yield context
    for job in context.store.list("running"):
        context.scheduler.abort(job.id, force=True)
        context.scheduler.wait(job.id, timeout=30)


def at_once(func, count: int) -> list:
    """`func(i)` in `count` threads released together; its results (or the exceptions it raised)."""
    barrier, results = threading.Barrier(count), [None] * count

    def one(i):
        barrier.wait()
        try:
            results[i] = func(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_output_dirs_named_in_the_same_second_are_distinct(ui, monkeypatch, tmp_path):
    monkeypatch.setattr(time, "strftime", lambda fmt: fmt.replace("%Y-%m-%d-%H-%M-%S", "2026-01-01-12-00-00"))
    (tmp_path / "saves" / "m" / "lora" / "sft_2026-01-01-12-00-00").mkdir(parents=True)  # an earlier run's folder
    names = at_once(lambda i: ui.new_output_dir("models/m", "lora"), 8)
    base = "saves/m/lora/sft_2026-01-01-12-00-00"
    assert sorted(n.removeprefix(str(tmp_path) + "/") for n in names) == sorted(f"{base}-{k}" for k in range(2, 10))
    assert len({ui.job_dir("export") for _ in range(3)}) == 3  # eval / export job folders too


def test_two_sessions_starting_the_same_folder_at_once_queue_it_once(ui, tiny_model_dir, tmp_path):
    from tuneforge.webui.jobs_view import queue_run

    run = tmp_path / "saves" / "run"
    cfg = {"model_name_or_path": str(tiny_model_dir), "dataset": "identity", "template": "qwen", "output_dir": str(run)}
    results = at_once(lambda i: queue_run(ui, "train", dict(cfg), run), 4)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(ui.store.list()) == 1 and len(errors) == 3, results
    assert all(isinstance(e, UserError) and "already" in str(e) for e in errors), errors
