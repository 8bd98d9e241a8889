"""Several people on one Web UI server at once: 4 browser contexts (separate cookies and Gradio sessions) open the
page together; two switch to Chinese, two stay in English, each fills the train form with the tiny model, previews
the dataset or the command, and queues a short run. The queue runs the 4 runs one after another; every page follows
its own run to the end; no page shows an error toast or a script error; each page keeps its own language; the
server's memory stays within a bound of what it used after the first page load, and it still serves after."""

from __future__ import annotations

import re
import time
import urllib.request
from itertools import pairwise
from pathlib import Path

import psutil
import pytest
from test_webui import choose, fill, open_page, progress, wait_until

from tuneforge.webui import i18n

pytestmark = pytest.mark.browser
SESSIONS = 4
STEPS = 2  # each run: a fresh `python -m tuneforge train` process (imports + tiny model) and 2 optimizer steps
LANGS = ["zh", "en", "zh", "en"]
# The server's resident memory after all 4 sessions and runs may exceed its RSS after the first page load by this
# much. Measured here: +19 to +22 MiB in 4 runs (3 more Gradio sessions with their event queues and 1.5 s timers,
# the dataset preview's tokenizer, the 4 runs' progress and loss frames through pandas; the runs themselves are
# separate processes). 100 MiB is ~5x that, and less than one leaked copy of a model or a dataset per session.
RSS_BOUND_MIB = 100
# Records every toast (Gradio shows errors as toasts that fade) and every script error, from the first paint.
WATCH = """(() => {
  window.__toasts = [];
  new MutationObserver(() => {
    document.querySelectorAll('[data-testid="toast-body"]').forEach(t => {
      if (!t.__seen) { t.__seen = true; window.__toasts.push(t.className + ': ' + t.innerText); }
    });
  }).observe(document, {subtree: true, childList: true});
})();"""


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def fill_form(page, model_dir: Path, lang: str) -> None:
    if not page.locator("#tf-extra_args").is_visible():  # first: fields of a closed accordion mount when it opens
        page.get_by_text(i18n.label("acc_other", lang), exact=True).click()
    numbers = {"cutoff_len": 64, "per_device_train_batch_size": 4, "logging_steps": 1, "save_steps": 1000}
    fill(page, "model_name_or_path", model_dir)
    choose(page, "template", "qwen")
    choose(page, "dataset", "toy")
    for key, value in numbers.items():
        fill(page, key, value)
    fill(page, "extra_args", f"max_steps: {STEPS}\nlr_scheduler_type: constant\nseed: 0")

    def shown():
        return {k: page.locator(f"#tf-{k} input[type=number]").first.input_value() for k in numbers}

    # A field typed into while it is still mounting (a busy machine) can snap back to its default: type it again.
    for key, value in shown().items():
        if value != str(numbers[key]):
            fill(page, key, numbers[key])
    assert shown() == {k: str(v) for k, v in numbers.items()}


def tab_names(page) -> list[str]:
    return page.locator("button[role=tab]").all_inner_texts()


def test_four_browser_sessions_at_once_each_queue_and_follow_their_own_run(
    browser, server_factory, workdir, tiny_model_dir
):
    from tuneforge.jobs.store import DB_FILE, JobStore

    # The page may only read models under --models-dir / --allow-dir (webui/paths.py): allow the tiny model's folder.
    server = server_factory(extra_args=["--allow-dir", tiny_model_dir.parent])
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(SESSIONS)]
    pages, errors = [], {}
    for n, context in enumerate(contexts):
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.add_init_script(WATCH)
        errors[n] = []
        page.on("pageerror", lambda exc, n=n: errors[n].append(f"pageerror: {exc}"))
        page.on("console", lambda msg, n=n: msg.type == "error" and errors[n].append(f"console: {msg.text}"))
        pages.append(page)

    open_page(pages[0], server)
    rss_first = rss_mib(server.proc.pid)
    for page in pages[1:]:  # the other three at once: navigation starts on all before any is waited for
        page.goto(server.url, wait_until="commit")
    for page in pages[1:]:
        page.wait_for_load_state("load")
        page.locator("#tf-model_name_or_path textarea").wait_for()
        page.locator("#tf-progress .tf-progress").wait_for()

    for page, lang in zip(pages, LANGS, strict=True):
        if lang == "zh":
            choose(page, "ui_lang", "简体中文")
    for page, lang in zip(pages, LANGS, strict=True):  # each page in its own language: a switch is per session
        tab = i18n.label("tab_runs", lang)
        wait_until(lambda page=page, tab=tab: tab in tab_names(page), 30, f"the {lang} tabs")
        assert i18n.label("start_btn", lang) == page.locator("#tf-start_btn").inner_text().strip()

    for n, (page, lang) in enumerate(zip(pages, LANGS, strict=True)):
        fill_form(page, tiny_model_dir, lang)
        if n % 2 == 0:  # the label-mask preview of the dataset
            page.locator("#tf-preview_btn").click()
        else:  # the command Start will run (it fills in the output dir)
            page.locator("#tf-cmd_btn").click()
    for n, page in enumerate(pages):
        if n % 2 == 0:
            page.locator("#tf-preview_box .tf-trained").first.wait_for()
            assert page.locator("#tf-preview_box .tf-trained").first.inner_text().startswith("I am TuneForge")
        else:
            wait_until(lambda page=page: "-m tuneforge train" in page.locator("#tf-command_box").inner_text(), 60)
            assert f"max_steps: {STEPS}" in page.locator("#tf-command_box").inner_text()

    for page in pages:
        page.locator("#tf-start_btn").click()
    ids = []
    for page in pages:
        status = wait_until(
            lambda page=page: "#" in (text := page.locator("#tf-status_box textarea").input_value()) and text,
            60,
            "the run to be queued",
        )
        assert not status.startswith("⚠"), status
        ids.append(int(re.search(r"#(\d+)", status).group(1)))
    assert sorted(ids) == list(range(1, SESSIONS + 1)), ids  # four runs, one per session

    for page, job_id in zip(pages, ids, strict=True):  # every page follows its own run, not the one running now
        wait_until(lambda page=page: progress(page)[0] == "done", 300, f"run #{job_id} to finish")
        title = page.locator("#tf-progress .tf-progress b").inner_text()
        assert title.startswith(f"#{job_id} "), (job_id, title)
        assert progress(page)[1] == STEPS
    rss_all = rss_mib(server.proc.pid)

    jobs = JobStore(workdir / "saves" / DB_FILE).list()
    assert [j.status for j in jobs] == ["done"] * SESSIONS and len({j.run_dir for j in jobs}) == SESSIONS
    for job in jobs:
        assert (Path(job.run_dir) / "adapter_model.safetensors").is_file()
    spans = [(j.started, j.finished) for j in sorted(jobs, key=lambda j: j.id)]  # queue order, one at a time:
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans)), spans

    for n, page in enumerate(pages):
        toasts = page.evaluate("window.__toasts")
        assert toasts == [] and errors[n] == [], (n, toasts, errors[n])
    for page, lang in zip(pages, LANGS, strict=True):  # still each in its own language after all that
        assert i18n.label("tab_runs", lang) in tab_names(page)

    for context in contexts:
        context.close()
    time.sleep(1)
    with urllib.request.urlopen(server.url, timeout=30) as reply:
        assert reply.status == 200 and b"TuneForge" in reply.read()
    assert server.proc.poll() is None
    log = "\n".join(p.read_text(errors="replace") for p in workdir.glob("server-*.log"))
    assert "Traceback" not in log, log[-3000:]
    print(f"\nserver RSS: {rss_first:.1f} MiB after the first page, {rss_all:.1f} MiB after {SESSIONS} sessions")
    assert rss_all - rss_first < RSS_BOUND_MIB, (rss_first, rss_all)
