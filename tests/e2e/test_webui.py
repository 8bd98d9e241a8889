"""The Web UI in a real browser on a tiny model: train with a live curve, survive a reload, chat, export, zh labels;
and a second test that restarts the UI server during a run and finds the run again."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser
# Screenshots of each tab. The README's pictures are refreshed with
# `TUNEFORGE_SCREENSHOTS=docs/images make test-browser`; by default they go to a scratch folder so a test run
# leaves the work tree clean.
DOCS_IMAGES = Path(os.environ.get("TUNEFORGE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "tuneforge-screenshots")
STEPS = 200  # long enough to reload the page mid-run on a busy 2-core machine


def fill(page, key: str, value) -> None:
    box = page.locator(f"#tf-{key} textarea, #tf-{key} input[type=number]").first
    box.fill(str(value))
    box.blur()


def choose(page, key: str, value: str) -> None:
    """Pick (or type, for dropdowns that take custom values) a dropdown value."""
    box = page.locator(f"#tf-{key} input").first
    box.click()
    box.fill(value)
    box.press("Enter")
    page.locator("body").click(position={"x": 5, "y": 5})  # close the list


def progress(page) -> tuple[str, int]:
    bar = page.locator("#tf-progress .tf-progress")
    return bar.get_attribute("data-status"), int(bar.get_attribute("data-step") or 0)


def curve_points(page, plot: str = "loss_plot") -> int:
    return page.locator(f'#tf-{plot} [aria-roledescription="point"]').count()


def last_plotted_step(page, plot: str = "loss_plot") -> int:
    labels = page.locator(f'#tf-{plot} [aria-roledescription="point"]').evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))"
    )
    return max((int(label.split("step: ")[1].split(";")[0]) for label in labels), default=0)


def legend(page, plot: str) -> dict:
    """The chart legend's title and labels, and whether the labels lie inside the plot's box (not clipped)."""
    return page.locator(f"#tf-{plot}").evaluate(
        """root => {
      const box = root.getBoundingClientRect();
      const labels = [...root.querySelectorAll('.role-legend-label text')];
      return {
        title: [...root.querySelectorAll('.role-legend-title text')].map(e => e.textContent).join(' '),
        labels: labels.map(e => e.textContent),
        inside: labels.every(e => e.getBoundingClientRect().bottom <= box.bottom),
      };
    }"""
    )


def wrapped_headers(page, table: str) -> list[str]:
    """The table's header texts that take more than one line."""
    return page.locator(f"#tf-{table} thead th .header").evaluate_all(
        """els => els.filter(e => {
      const range = document.createRange();
      range.selectNodeContents(e);
      return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
    }).map(e => e.textContent.trim())"""
    )


def wait_until(check, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def open_page(page, server):
    page.goto(server.url, wait_until="load")
    page.locator("#tf-model_name_or_path textarea").wait_for()
    page.locator("#tf-progress .tf-progress").wait_for()


def fill_train_form(page, model_dir: Path, max_steps: int) -> None:
    if not page.locator("#tf-extra_args").is_visible():  # first: fields of a closed accordion mount when it opens
        page.get_by_text("Other settings", exact=True).click()
    numbers = {
        "cutoff_len": 64,
        "per_device_train_batch_size": 4,
        "lora_rank": 8,
        "logging_steps": 1,
        "save_steps": 1000,
    }
    fill(page, "model_name_or_path", model_dir)
    choose(page, "template", "qwen")
    choose(page, "dataset", "toy")
    fill(page, "learning_rate", "1e-2")
    for key, value in numbers.items():
        fill(page, key, value)
    fill(page, "extra_args", f"max_steps: {max_steps}\nlr_scheduler_type: constant\nseed: 0")
    # A field typed into while it is still mounting (a busy machine) can snap back to its default: type it again.
    for key, value in numbers.items():
        if page.locator(f"#tf-{key} input[type=number]").first.input_value() != str(value):
            fill(page, key, value)


WATCH_CHAT = """() => {
  window.__chatLengths = [];
  const root = document.querySelector('#tf-chatbot');
  new MutationObserver(() => window.__chatLengths.push(root.innerText.length))
    .observe(root, {subtree: true, childList: true, characterData: true});
}"""


def shoot(page, name: str) -> None:
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMAGES / f"webui-{name}.png"), full_page=True)


def models_flag(model_dir: Path) -> list[str]:
    """The page reads local models only from --models-dir folders: the tiny model's."""
    return ["--models-dir", str(model_dir.parent)]


def switch_tab(page, name: str) -> None:
    page.locator(f"button[role=tab]:has-text('{name}')").first.click()


def test_train_reload_chat_export_and_language(page, server_factory, workdir, tiny_model_dir):
    from tuneforge.jobs.store import DB_FILE, JobStore

    server = server_factory(models_flag(tiny_model_dir))
    open_page(page, server)
    fill_train_form(page, tiny_model_dir, max_steps=STEPS)

    page.locator("#tf-preview_btn").click()  # the label mask: trained tokens marked, the rest masked
    page.locator("#tf-preview_box .tf-trained").first.wait_for()
    trained = page.locator("#tf-preview_box .tf-trained").first.inner_text()
    assert trained.startswith("I am TuneForge") and "Who are you?" not in trained  # the prompt is masked
    assert "Who are you?" in page.locator("#tf-preview_box").inner_text()
    page.locator("#tf-cmd_btn").click()
    wait_until(lambda: "-m tuneforge train" in page.locator("#tf-command_box").inner_text(), 60, "the command")
    shown = page.locator("#tf-command_box").inner_text()
    assert "dataset: toy" in shown and f"max_steps: {STEPS}" in shown and "learning_rate: 0.01" in shown
    output_dir = page.locator("#tf-output_dir textarea").input_value()  # filled in by Preview command
    assert output_dir and output_dir in shown

    page.locator("#tf-start_btn").click()
    wait_until(lambda: "#1" in page.locator("#tf-status_box textarea").input_value(), 60, "the run to be queued")
    wait_until(lambda: curve_points(page) >= 3, 180, "the curve to get points")
    assert progress(page)[0] == "running"
    shoot(page, "train")

    page.reload(wait_until="load")  # the page forgets everything; the server and the run do not
    page.locator("#tf-progress .tf-progress").wait_for()
    wait_until(lambda: progress(page)[1] > 0, 60, "the re-attached progress")
    status, step = progress(page)
    assert status == "running", "the run should still be going after the reload"
    assert "#1" in page.locator("#tf-job_select input").input_value()
    wait_until(lambda: last_plotted_step(page) >= step, 60, "the curve after the reload")
    wait_until(lambda: progress(page)[0] == "done", 240, "the run to finish")
    (job,) = JobStore(workdir / "saves" / DB_FILE).list()
    run_dir = Path(job.run_dir)
    assert job.status == "done" and job.returncode == 0
    assert run_dir == (workdir / output_dir).resolve()  # the previewed command is the one that ran
    kept = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert kept["max_steps"] == STEPS and kept["dataset"] == "toy" and kept["learning_rate"] == 0.01
    assert (run_dir / "adapter_model.safetensors").is_file() and (run_dir / "train.log").is_file()
    wait_until(lambda: curve_points(page) == STEPS, 30, "the whole curve")
    shown = legend(page, "loss_plot")
    assert shown["labels"] == ["train"] and "series" not in shown["title"] and shown["inside"], shown

    # Chat with the adapter just trained, streamed (the reload emptied the form: fill in the model again)
    fill(page, "model_name_or_path", tiny_model_dir)
    choose(page, "template", "qwen")
    choose(page, "checkpoint_path", str(run_dir))
    switch_tab(page, "Chat")
    fill(page, "max_new_tokens", 48)
    page.locator("#tf-load_model_btn").click()
    wait_until(lambda: "Model loaded" in page.locator("#tf-chat_status textarea").input_value(), 120, "the model")
    page.evaluate(WATCH_CHAT)  # records the chat's text after every DOM change: a streamed reply grows in steps
    page.locator("#tf-query textarea").fill("Who are you?")
    page.locator("#tf-submit_btn").click()
    wait_until(lambda: "Who are you?" in page.locator("#tf-chatbot").inner_text(), 60, "the question")
    time.sleep(0.5)
    wait_until(lambda: not page.locator("#tf-chatbot .generating, #tf-submit_btn .pending").count(), 120, "reply")
    seen = page.evaluate("window.__chatLengths")
    final = page.locator("#tf-chatbot").inner_text()
    reply = final.split("Who are you?", 1)[1].strip()
    assert reply, final
    assert len(set(seen)) > 2, f"the reply arrived in one piece, not streamed: {seen}"
    shoot(page, "chat")

    # Export the merged model and load it in plain transformers
    switch_tab(page, "Export")
    export_dir = workdir / "saves" / "exported"  # the page writes only under --saves-dir (webui/paths.py)
    fill(page, "export_dir", export_dir)
    page.locator("#tf-export_btn").click()
    wait_until(
        lambda: (
            page.locator("#tf-export_progress .tf-progress[data-status]").count()
            and page.locator("#tf-export_progress .tf-progress").get_attribute("data-status") in ("done", "failed")
        ),
        240,
        "the export",
    )
    log = page.locator("#tf-export_log textarea").input_value()
    assert page.locator("#tf-export_progress .tf-progress").get_attribute("data-status") == "done", log
    shoot(page, "export")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(export_dir)
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    assert model.config.num_hidden_layers == 2 and tokenizer("hi")["input_ids"]

    switch_tab(page, "Evaluate")
    shoot(page, "evaluate")
    page.set_viewport_size({"width": 1400, "height": 900})  # the Runs table must read well in a 1400 px window
    switch_tab(page, "Runs")
    page.locator("#tf-runs_refresh_btn").click()
    short = str(run_dir.relative_to((workdir / "saves").resolve()))  # folders show relative to the saves dir
    wait_until(lambda: short in page.locator("#tf-runs_table").inner_text(), 30, "the run in the table")
    assert str(run_dir) not in page.locator("#tf-runs_table").inner_text()
    assert page.locator(f'#tf-runs_table .tf-run-dir[title="{run_dir}"]').count(), "the full path on hover"
    assert not wrapped_headers(page, "runs_table")
    choose(page, "runs_compare", f"#{job.id} {short}")
    wait_until(lambda: curve_points(page, "runs_plot") == STEPS, 30, "the compared curve")
    shown = legend(page, "runs_plot")
    assert shown["labels"] == ["train"] and "series" not in shown["title"] and shown["inside"], shown
    shoot(page, "runs")

    # Chinese labels
    choose(page, "ui_lang", "简体中文")
    wait_until(lambda: "训练记录" in page.locator("button[role=tab]").all_inner_texts(), 30, "zh tabs")
    wait_until(lambda: legend(page, "runs_plot")["labels"] == ["训练"], 30, "the zh legend")
    page.locator("#tf-runs_refresh_btn").click()
    wait_until(lambda: "状态" in page.locator("#tf-runs_table thead").inner_text(), 30, "zh headers")
    assert not wrapped_headers(page, "runs_table")
    switch_tab(page, "训练")
    assert page.locator("#tf-start_btn").inner_text().strip() == "开始"
    assert "模型路径" in page.locator("#tf-model_name_or_path").inner_text()
    assert "学习率" in page.locator("#tf-learning_rate").inner_text()
    shoot(page, "zh")


def test_ui_server_restart_reattaches_to_the_running_run(page, server_factory, workdir, tiny_model_dir):
    from tuneforge.jobs import runner
    from tuneforge.jobs.store import DB_FILE, JobStore

    first = server_factory(models_flag(tiny_model_dir))
    open_page(page, first)
    fill_train_form(page, tiny_model_dir, max_steps=100000)
    page.locator("#tf-start_btn").click()
    wait_until(lambda: curve_points(page) >= 2, 180, "the first points")

    first.kill()  # the UI server dies (SIGKILL, no clean-up); the run must not
    (job,) = JobStore(workdir / "saves" / DB_FILE).list()
    assert job.status == "running" and runner.is_alive(job.pid, job.pid_started)
    before = len((Path(job.run_dir) / "trainer_log.jsonl").read_text().splitlines())

    second = server_factory(models_flag(tiny_model_dir))
    open_page(page, second)
    wait_until(lambda: progress(page)[1] > 0, 60, "the re-attached run")
    status, step = progress(page)
    assert status == "running" and step >= before
    wait_until(lambda: progress(page)[1] > step, 60, "the re-attached run to keep going")
    wait_until(lambda: last_plotted_step(page) > step, 60, "the curve to continue")

    page.locator("#tf-abort_btn").click()  # stop at the next step, with a checkpoint
    wait_until(lambda: progress(page)[0] == "aborted", 120, "the run to stop")
    stopped = progress(page)[1]
    assert (Path(job.run_dir) / f"checkpoint-{stopped}" / "trainer_state.json").is_file()
    assert not runner.is_alive(job.pid, job.pid_started)
