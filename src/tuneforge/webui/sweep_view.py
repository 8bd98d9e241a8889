"""What the Sweep tab shows of a sweep: its bar (trials finished of n_trials), the trials table with the best row
starred, the best-so-far line, the metric per trial and each searched parameter against the metric (matplotlib
figures, drawn only when a trial changed); and the Runs tab's grouping of trial jobs under their sweep."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

from tuneforge.jobs.progress import format_seconds
from tuneforge.webui import i18n, render

STATES = ("COMPLETE", "PRUNED", "RUNNING", "FAIL", "WAITING")  # trial_rows' states; i18n keys trial_<state>
FINISHED = ("COMPLETE", "PRUNED")  # what counts toward n_trials (a failed trial is run again)
COLOURS = {"COMPLETE": "#2563eb", "PRUNED": "#d97706", "RUNNING": "#9ca3af", "FAIL": "#dc2626"}
MARKERS = {"COMPLETE": "o", "PRUNED": "x", "RUNNING": "o", "FAIL": "v"}
BEST = "★"
MAX_PARAM_PLOTS = 6  # a figure with more panels draws each too small to read


def fmt_value(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def last_value(row: dict) -> float | None:
    """A trial's metric: its value, else (pruned, running) its last reported intermediate value."""
    if row.get("value") is not None:
        return row["value"]
    steps = row.get("intermediate") or {}
    return steps[max(steps, key=int)] if steps else None


def trial_table(rows: list[dict], params: list[str], metric: str, best: dict | None, lang: str):
    """(headers, cells) of the trials table: trial number (★ on the best), state, metric, duration, parameters."""
    headers = [i18n.label("col_trial", lang), i18n.label("col_state", lang), metric, i18n.label("col_duration", lang)]
    headers += [i18n.label(key, lang) for key in params]
    best_number = best["number"] if best else None
    cells = []
    for row in sorted(rows, key=lambda r: r["number"]):
        number = f"{BEST} {row['number']}" if row["number"] == best_number else str(row["number"])
        state = i18n.label(f"trial_{row['state'].lower()}", lang) if row["state"] in STATES else row["state"]
        cells.append(
            [number, state, fmt_value(row.get("value")), format_seconds(row.get("duration_s"))]
            + [fmt_value(row.get("params", {}).get(key)) for key in params]
        )
    return headers, cells


def best_text(best: dict | None, metric: str, lang: str) -> str:
    if best is None:
        return i18n.label("sweep_no_best", lang)
    params = ", ".join(f"{key} = {fmt_value(value)}" for key, value in best.get("params", {}).items())
    return i18n.text("sweep_best", lang, n=best["number"], metric=metric, value=fmt_value(best["value"]), params=params)


def bar_html(status: str, rows: list[dict], n_trials: int, lang: str, title: str = "") -> str:
    """The sweep's bar: finished trials of n_trials (a pruned or failed trial is finished too), and how many pruned."""
    done = sum(row["state"] in FINISHED for row in rows)
    pruned = sum(row["state"] == "PRUNED" for row in rows)
    total = max(n_trials, 1)
    pct = min(100.0, 100.0 * done / total)
    label = i18n.text("sweep_progress", lang, done=done, total=n_trials, pruned=pruned)
    return render.bar_html(status, lang, title, label, pct, css_class="tf-progress tf-sweep-bar", data={"done": done})


def figure_key(rows: list[dict], lang: str) -> str:
    """What the figures show: when it is unchanged, the page keeps the drawn ones (a timer ticks every 2 s)."""
    parts = [(r["number"], r["state"], last_value(r), sorted(r.get("params", {}).items())) for r in rows]
    return repr((lang, sorted(parts, key=lambda p: p[0])))


CJK_FONT_FILES = ("wqy", "notosanscjk", "droidsansfallback")  # file names of CJK fonts Debian installs


@functools.cache
def _fonts() -> list[str]:
    """Matplotlib's default font, then a CJK one when installed (zh / ja / ko labels draw as boxes without it).
    Matplotlib's font list is cached on first use: a font installed later (fonts-wqy-zenhei) is added here."""
    from matplotlib import font_manager

    # WenQuanYi has one weight (500): matplotlib would log "Failed to find font weight normal" for every size
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    for path in font_manager.findSystemFonts():
        if any(tag in Path(path).name.lower().replace("-", "") for tag in CJK_FONT_FILES):
            font_manager.fontManager.addfont(path)
    have = {f.name for f in font_manager.fontManager.ttflist}
    cjk = ("WenQuanYi Zen Hei", "Noto Sans CJK JP", "Noto Sans CJK SC", "Droid Sans Fallback")
    return ["DejaVu Sans", *(name for name in cjk if name in have)]


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure  # heavy; no pyplot: no global figure state in the server's threads

    fig = Figure(figsize=(width, height), dpi=90, layout="constrained")
    return fig


def _points(rows: list[dict]) -> dict[str, list[tuple[dict, float]]]:
    """(row, metric) per state, for the trials that have a metric to draw."""
    out: dict[str, list[tuple[dict, float]]] = {}
    for row in sorted(rows, key=lambda r: r["number"]):
        value = last_value(row)
        if value is not None and math.isfinite(value) and row["state"] in COLOURS:
            out.setdefault(row["state"], []).append((row, value))
    return out


def _text_style(fig) -> None:
    for text in fig.findobj(lambda o: hasattr(o, "set_fontfamily")):
        text.set_fontfamily(_fonts())


def metric_figure(rows: list[dict], metric: str, direction: str, lang: str):
    """The metric per trial: finished trials as dots, pruned ones as crosses at their last reported value, the
    running one grey, and the best so far as a step line."""
    fig = _new_figure(6.5, 3.6)
    ax = fig.add_subplot()
    for state, points in _points(rows).items():
        ax.scatter(
            [row["number"] for row, _ in points],
            [value for _, value in points],
            c=COLOURS[state],
            marker=MARKERS[state],
            s=42,
            label=i18n.label(f"trial_{state.lower()}", lang),
            zorder=3,
        )
    complete = sorted((r["number"], r["value"]) for r in rows if r["state"] == "COMPLETE" and r["value"] is not None)
    if complete:
        pick = min if direction == "minimize" else max
        best, line = None, []
        for number, value in complete:
            best = value if best is None else pick(best, value)
            line.append((number, best))
        ax.step(*zip(*line, strict=True), where="post", color="#16a34a", label=i18n.label("sweep_best_line", lang))
    ax.set_xlabel(i18n.label("col_trial", lang))
    ax.set_ylabel(metric)
    ax.set_title(i18n.label("sweep_metric_plot", lang))
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _text_style(fig)
    return fig


def params_figure(rows: list[dict], space: dict[str, dict], metric: str, lang: str):
    """Each searched parameter against the metric, a panel per parameter (log axis for a log range; a choice's
    values in order): which values the good trials share."""
    keys = list(space)[:MAX_PARAM_PLOTS]
    cols = max(1, min(3, len(keys)))
    nrows = max(1, -(-len(keys) // cols))
    fig = _new_figure(max(5.0, 3.2 * cols), 2.8 * nrows + 0.4)
    points = _points(rows)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, cols, i + 1)
        entry = space[key] or {}
        choices = entry.get("choices")
        for state, pts in points.items():
            xs, ys = [], []
            for row, value in pts:
                x = row.get("params", {}).get(key)
                if x is None:
                    continue
                xs.append(choices.index(x) if choices and x in choices else x)
                ys.append(value)
            ax.scatter(xs, ys, c=COLOURS[state], marker=MARKERS[state], s=30, zorder=3)
        if choices:
            ax.set_xticks(range(len(choices)), [fmt_value(c) for c in choices])
        elif entry.get("log"):
            ax.set_xscale("log")
        ax.set_xlabel(i18n.label(key, lang))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(i18n.label("sweep_params_plot", lang))
    _text_style(fig)
    return fig


def group_sweeps(jobs: list, full_dir) -> list:
    """Jobs in the Runs table's order, each sweep's trial jobs (meta "sweep") right after its sweep job, or together
    where the first of them stands when no sweep job is in the list. `full_dir(path)`: a folder as one key."""
    trials: dict[str, list] = {}
    for job in jobs:
        if job.meta.get("sweep"):
            trials.setdefault(str(full_dir(job.meta["sweep"])), []).append(job)
    drivers = {str(full_dir(job.run_dir)) for job in jobs if job.kind == "sweep"}
    out, placed = [], set()
    for job in jobs:
        if job.kind == "sweep":
            out.append(job)
            key = str(full_dir(job.run_dir))
            if key not in placed:
                out.extend(trials.get(key, []))
                placed.add(key)
        elif job.meta.get("sweep"):
            key = str(full_dir(job.meta["sweep"]))
            if key not in drivers and key not in placed:
                out.extend(trials[key])
                placed.add(key)
        else:
            out.append(job)
    return out


def sweep_cell(job, lang: str) -> str:
    """The Runs table's sweep column: a sweep job's folder name; a trial's sweep folder and trial number."""
    if job.kind == "sweep":
        return Path(job.run_dir).name
    if job.meta.get("sweep"):
        return i18n.text("sweep_trial_cell", lang, sweep=Path(job.meta["sweep"]).name, n=job.meta.get("trial", "?"))
    return ""
