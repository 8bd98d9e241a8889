"""A sweep from the Web UI, in a real browser, on the tiny model: fill the Train form, open the Sweep tab, search the
learning rate over two trials of a few steps, Start, and watch the trials fill the table with their states and the
best one starred; the Runs tab groups the trials under their sweep, and "Open best in Train" puts the best trial's
learning rate into the Train form."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_webui import choose, fill, models_flag, open_page, shoot, switch_tab, wait_until, wrapped_headers

from tuneforge.webui import i18n

pytestmark = pytest.mark.browser
TRIALS = 2
EXTRA = {"max_steps": 3, "cutoff_len": 64, "per_device_train_batch_size": 4, "logging_steps": 1, "save_steps": 1000}


def table_rows(page) -> list[list[str]]:
    """The trials table's cells; the table draws only the rows in view, so it is scrolled into view first."""
    page.locator("#tf-sweep_table").scroll_into_view_if_needed()
    return [
        [cell.strip() for cell in row.locator("[role=gridcell]").all_inner_texts()]
        for row in page.locator("#tf-sweep_table [role=row].virtual-row").all()
    ]


def fill_form(page, model_dir: Path) -> None:
    """The Train form: the tiny model on the toy data, a few short steps (the fewer fields typed, the sooner)."""
    page.get_by_text(i18n.label("acc_other", "en"), exact=True).click()  # its fields mount when it opens
    page.locator("#tf-extra_args").wait_for()
    fill(page, "model_name_or_path", model_dir)
    choose(page, "template", "qwen")
    choose(page, "dataset", "toy")
    fill(page, "learning_rate", "1e-2")
    fill(page, "extra_args", "\n".join(f"{k}: {v}" for k, v in EXTRA.items()))


def sweep_bar(page) -> tuple[str | None, int]:
    bar = page.locator("#tf-sweep_progress .tf-sweep-bar")
    if not bar.count():
        return None, 0
    return bar.get_attribute("data-status"), int(bar.get_attribute("data-done") or 0)


def test_a_sweep_from_the_web_ui_fills_the_trials_table(page, server_factory, workdir, tiny_model_dir):
    from tuneforge.jobs.store import DB_FILE, JobStore
    from tuneforge.sweep.results import trial_rows

    server = server_factory(models_flag(tiny_model_dir))
    open_page(page, server)
    fill_form(page, tiny_model_dir)

    switch_tab(page, i18n.label("tab_sweep", "en"))
    page.locator("#tf-sweep_on_learning_rate input[type=checkbox]").check()
    # the row's range starts around the Train form's learning rate (1e-2): a decade either side, log scale
    wait_until(lambda: page.locator("#tf-sweep_low_learning_rate textarea").input_value() == "0.001", 30, "range")
    assert page.locator("#tf-sweep_log_learning_rate input[type=checkbox]").is_checked()
    fill(page, "sweep_high_learning_rate", "0.05")
    choose(page, "sweep_metric", "train_loss")
    choose(page, "sweep_pruner", i18n.entry("sweep_pruner", "en")["choices"]["none"])
    fill(page, "sweep_n_trials", TRIALS)

    page.locator("#tf-sweep_start_btn").click()
    wait_until(lambda: "#1" in page.locator("#tf-sweep_status textarea").input_value(), 60, "the sweep to start")
    status = page.locator("#tf-sweep_status textarea").input_value()
    assert "⚠" not in status, status

    complete = i18n.label("trial_complete", "en")
    wait_until(lambda: len(table_rows(page)) >= 1, 120, "the first trial in the table")
    wait_until(lambda: sweep_bar(page) == ("done", TRIALS), 150, "the sweep to finish")
    wait_until(lambda: [row[1] for row in table_rows(page)] == [complete] * TRIALS, 30, "both trials complete")
    rows = table_rows(page)
    starred = [row for row in rows if row[0].startswith("★")]
    assert len(starred) == 1, rows

    jobs = JobStore(workdir / "saves" / DB_FILE).list()
    (driver,) = [job for job in jobs if job.kind == "sweep"]
    assert driver.status == "done", Path(driver.log_path).read_text()[-3000:]
    trials = trial_rows(driver.run_dir)
    for t in trials:  # each trial ran the Train form's config with its own learning rate, from the row's range
        kept = yaml.safe_load((Path(t["run_dir"]) / "config.yaml").read_text())
        assert (kept["dataset"], kept["max_steps"], kept["cutoff_len"]) == ("toy", 3, 64)
        assert kept["learning_rate"] == t["params"]["learning_rate"] and 0.001 <= kept["learning_rate"] <= 0.05
    best = min((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
    assert starred[0][0] == f"★ {best['number']}"
    assert float(starred[0][2]) == pytest.approx(best["value"], rel=1e-3)
    assert f"trial {best['number']}" in page.locator("#tf-sweep_best").inner_text()
    assert page.locator("#tf-sweep_metric_plot img").count() and page.locator("#tf-sweep_params_plot img").count()
    shoot(page, "sweep")

    switch_tab(page, i18n.label("tab_runs", "en"))
    page.locator("#tf-runs_refresh_btn").click()
    name = Path(driver.run_dir).name
    for n in range(TRIALS):
        cell = i18n.text("sweep_trial_cell", "en", sweep=name, n=n)
        wait_until(lambda cell=cell: cell in page.locator("#tf-runs_table").inner_text(), 30, f"trial {n} in Runs")
    assert not wrapped_headers(page, "runs_table")  # the sweep column still fits a 1400 px window

    page.reload(wait_until="load")  # a closed browser: the page follows the sweep again
    page.locator("#tf-progress .tf-progress").wait_for()
    switch_tab(page, i18n.label("tab_sweep", "en"))
    wait_until(lambda: "#1" in page.locator("#tf-sweep_select input").input_value(), 60, "the sweep after a reload")
    wait_until(lambda: len(table_rows(page)) == TRIALS, 60, "the trials after a reload")

    switch_tab(page, i18n.label("tab_sweep", "en"))
    page.locator("#tf-sweep_best_btn").click()
    wait_until(lambda: page.locator("#tf-tab-train").is_visible(), 30, "the Train tab")
    lr = page.locator("#tf-learning_rate textarea")
    wait_until(lambda: float(lr.input_value() or 0) == pytest.approx(best["params"]["learning_rate"]), 30, "best lr")
