"""What the Sweep tab draws of a sweep, without a browser: the trials table (best starred, states in the page's
language), the bar, the metric per trial with pruned trials marked, a panel per parameter, figures kept while no
trial changed; and the Runs table's trial jobs grouped under their sweep."""

from __future__ import annotations

import pytest

from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext
from tuneforge.webui.jobs_view import RUN_COLUMNS, run_rows
from tuneforge.webui.sweep_view import (
    bar_html,
    best_text,
    figure_key,
    metric_figure,
    params_figure,
    trial_table,
)

SPACE = {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "lora_rank": {"choices": [4, 8, 16]}}


def trial(number, state, value, lr, rank, duration=12.0, intermediate=None):
    return {
        "number": number,
        "state": state,
        "params": {"learning_rate": lr, "lora_rank": rank},
        "value": value,
        "duration_s": duration,
        "run_dir": f"sweep/trials/{number:03d}",
        "intermediate": intermediate or {},
    }


ROWS = [
    trial(0, "COMPLETE", 1.25, 1e-4, 8, intermediate={5: 1.6, 10: 1.25}),
    trial(1, "PRUNED", None, 1e-5, 4, duration=3.0, intermediate={5: 2.9}),  # pruned at its first report
    trial(2, "COMPLETE", 0.75, 5e-4, 16),
    trial(3, "RUNNING", None, 3e-4, 8, duration=None, intermediate={5: 1.1}),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_trials_table_stars_the_best_and_names_states_in_the_page_language(lang):
    headers, cells = trial_table(list(reversed(ROWS)), list(SPACE), "eval_loss", ROWS[2], lang)
    assert headers == [
        i18n.label("col_trial", lang),
        i18n.label("col_state", lang),
        "eval_loss",
        i18n.label("col_duration", lang),
        i18n.label("learning_rate", lang),
        i18n.label("lora_rank", lang),
    ]
    assert [row[0] for row in cells] == ["0", "1", "★ 2", "3"]  # by number, the best starred
    states = ["complete", "pruned", "complete", "running"]
    assert [row[1] for row in cells] == [i18n.label(f"trial_{s}", lang) for s in states]
    assert cells[2][2:] == ["0.75", "00:12", "0.0005", "16"]
    assert cells[3][2:4] == ["–", "–"]  # no value, no duration yet


def test_best_line_and_bar_count_finished_trials_and_pruned_ones():
    assert best_text(None, "eval_loss", "en") == i18n.label("sweep_no_best", "en")
    line = best_text(ROWS[2], "eval_loss", "en")
    assert "trial 2" in line and "eval_loss = 0.75" in line and "learning_rate = 0.0005" in line
    bar = bar_html("running", ROWS, 6, "en", "#1 sweep")
    assert 'data-done="3"' in bar and 'data-status="running"' in bar
    assert "3 of 6 trials finished · 1 pruned" in bar and "width:50.0%" in bar


def points(ax, label: str) -> list[tuple[float, float]]:
    (coll,) = [c for c in ax.collections if c.get_label() == label]
    return [tuple(map(float, xy)) for xy in coll.get_offsets()]


def test_the_metric_figure_marks_pruned_trials_at_their_last_report_and_steps_down_the_best():
    fig = metric_figure(ROWS, "eval_loss", "minimize", "en")
    (ax,) = fig.axes
    assert points(ax, i18n.label("trial_complete", "en")) == [(0, 1.25), (2, 0.75)]
    assert points(ax, i18n.label("trial_pruned", "en")) == [(1, 2.9)]
    assert points(ax, i18n.label("trial_running", "en")) == [(3, 1.1)]
    (best,) = [line for line in ax.lines if line.get_label() == i18n.label("sweep_best_line", "en")]
    assert list(best.get_xdata()) == [0, 2] and list(best.get_ydata()) == [1.25, 0.75]
    assert ax.get_ylabel() == "eval_loss"
    maximize = metric_figure(ROWS, "eval_accuracy", "maximize", "en").axes[0]
    (best,) = [line for line in maximize.lines if line.get_label() == i18n.label("sweep_best_line", "en")]
    assert list(best.get_ydata()) == [1.25, 1.25]


def test_the_parameters_figure_has_a_panel_per_parameter_log_for_a_log_range_choices_in_order():
    fig = params_figure(ROWS, SPACE, "eval_loss", "en")
    lr, rank = fig.axes
    assert (lr.get_xscale(), rank.get_xscale()) == ("log", "linear")
    assert lr.get_xlabel() == i18n.label("learning_rate", "en")
    assert [t.get_text() for t in rank.get_xticklabels()] == ["4", "8", "16"]
    xs = sorted(x for c in rank.collections for x, _ in c.get_offsets())
    assert xs == [0, 1, 1, 2]  # ranks 4, 8, 8, 16 at their choice's position
    assert len(params_figure([], SPACE, "eval_loss", "en").axes) == 2  # before the first trial: empty panels


def test_figures_are_redrawn_only_when_a_trial_or_the_language_changed():
    key = figure_key(ROWS, "en")
    assert figure_key(list(reversed(ROWS)), "en") == key
    assert figure_key(ROWS, "zh") != key
    moved = [*ROWS[:3], {**ROWS[3], "intermediate": {5: 1.1, 10: 0.9}}]  # the running trial reported again
    assert figure_key(moved, "en") != key
    later = [{**row, "duration_s": 99.0} for row in ROWS]  # only the clock moved
    assert figure_key(later, "en") == key


@pytest.fixture
def ui(tmp_path):
    return UIContext(saves_dir=tmp_path / "saves", data_dir="data", cwd=tmp_path)


def test_the_runs_table_groups_trial_jobs_under_their_sweep(ui, tmp_path):
    saves = tmp_path / "saves"
    store = ui.store
    plain = store.add("train", saves / "run_a", saves / "run_a/config.yaml", saves / "run_a/train.log", tmp_path)
    sweep = saves / "sweep_1"
    driver = store.add("sweep", sweep, sweep / "sweep.yaml", sweep / "sweep.log", tmp_path, {"base_config": "x"})
    trials = []
    for n in range(2):
        run = sweep / "trials" / f"{n:03d}"
        meta = {"sweep": str(sweep), "trial": n}
        trials.append(store.add("train", run, run / "config.yaml", run / "train.log", tmp_path, meta))
        if n == 0:  # a plain run queued between the two trials
            other = store.add("train", saves / "run_b", saves / "run_b/c.yaml", saves / "run_b/t.log", tmp_path)
    orphan = saves / "sweep_gone"  # trials whose sweep job is not in the store (a CLI sweep, another store)
    lone = store.add(
        "train",
        orphan / "trials/000",
        orphan / "c.yaml",
        orphan / "t.log",
        tmp_path,
        {"sweep": str(orphan), "trial": 0},
    )

    headers, rows, _ = run_rows(ui, "en")
    ids = [row[0] for row in rows]
    assert ids == [lone.id, other.id, driver.id, trials[1].id, trials[0].id, plain.id]
    column = RUN_COLUMNS.index("col_sweep")
    assert headers[column] == i18n.label("col_sweep", "en")
    cells = {row[0]: row[column] for row in rows}
    assert cells[driver.id] == "sweep_1"
    assert cells[trials[1].id] == i18n.text("sweep_trial_cell", "en", sweep="sweep_1", n=1)
    assert cells[lone.id] == i18n.text("sweep_trial_cell", "en", sweep="sweep_gone", n=0)
    assert cells[plain.id] == cells[other.id] == ""


def test_the_tab_reads_the_study_again_only_when_it_changed_and_a_running_trials_clock_moves(tmp_path, monkeypatch):
    import optuna

    from tuneforge.sweep import folder
    from tuneforge.webui.tabs import sweep as sweep_tab

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=folder.STUDY_NAME, storage=folder.storage_url(tmp_path))
    done = study.ask()
    done.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
    study.tell(done, 1.5)
    running = study.ask()
    running.suggest_float("learning_rate", 1e-5, 1e-3, log=True)

    reads = []
    real = sweep_tab.trial_rows
    monkeypatch.setattr(sweep_tab, "trial_rows", lambda d: reads.append(d) or real(d))
    first = sweep_tab.study_trials(tmp_path)
    assert [row["state"] for row in first] == ["COMPLETE", "RUNNING"] and len(reads) == 1
    clock = sweep_tab.time.time()
    monkeypatch.setattr(sweep_tab.time, "time", lambda: clock + 10)
    later = sweep_tab.study_trials(tmp_path)
    assert len(reads) == 1  # nothing changed: no read
    assert later[0] == first[0]
    assert later[1]["duration_s"] == pytest.approx(first[1]["duration_s"] + 10, abs=1)  # the running one's clock
    monkeypatch.setattr(sweep_tab.time, "time", lambda: clock + 10 + sweep_tab.REREAD_S)
    assert len(sweep_tab.study_trials(tmp_path)) == 2 and len(reads) == 2  # read again after a while anyway
    study.tell(running, 0.5)
    assert [row["state"] for row in sweep_tab.study_trials(tmp_path)] == ["COMPLETE", "COMPLETE"]
    assert len(reads) == 3
