"""HTML and tables the UI shows: the label-mask preview, the progress bar, loss-curve frames."""

from __future__ import annotations

import html
import re

from tuneforge.jobs.progress import Progress, format_seconds
from tuneforge.webui import i18n

_SPAN = re.compile(r"⟦(.*?)⟧|⟪(.*?)⟫", re.S)
TRAINED = "color:#15803d;background:#dcfce7;font-weight:600"
SHIFTED = "color:#15803d;background:#bbf7d0;text-decoration:underline"
MASKED = "color:#6b7280"


def preview_html(text: str) -> str:
    """`tuneforge preview` text (trained spans in ⟦ ⟧, learnt-in-place labels in ⟪ ⟫) as coloured HTML."""
    notes: list[str] = []  # header and summary lines, kept out of the span parsing

    def note(line: str) -> str:
        tag = "b" if line.startswith("── ") else "i"
        notes.append(f"<{tag}>{html.escape(line)}</{tag}>")
        return f"\x00{len(notes) - 1}\x00"

    lines = [note(ln) if ln.startswith(("── ", "tokens: ", "thinking: ")) else ln for ln in text.split("\n")]
    body = "\n".join(lines)
    parts, pos = [], 0
    for match in _SPAN.finditer(body):
        parts.append(_masked(body[pos : match.start()]))
        if match.group(1) is not None:
            parts.append(f'<span class="tf-trained" style="{TRAINED}">{html.escape(match.group(1))}</span>')
        else:
            parts.append(f'<span class="tf-shifted" style="{SHIFTED}">{html.escape(match.group(2))}</span>')
        pos = match.end()
    parts.append(_masked(body[pos:]))
    joined = re.sub("\x00(\\d+)\x00", lambda m: notes[int(m.group(1))], "".join(parts))
    return f'<pre class="tf-preview" style="white-space:pre-wrap;font-size:13px;margin-top:28px">{joined}</pre>'


def _masked(text: str) -> str:
    return f'<span style="{MASKED}">{html.escape(text)}</span>' if text else ""


def progress_html(p: Progress | None, status: str, lang: str, title: str = "", steps: bool = True) -> str:
    """A bar with status, step / total, percentage, elapsed and ETA (`steps=False`: status only, for eval / export)."""
    pct = 100.0 if status == "done" else (p.percentage if p else 0.0)
    step, total = (p.step, p.total_steps) if p else (0, 0)
    label = i18n.text(
        "progress_label",
        lang,
        step=step,
        total=total or "?",
        pct=f"{pct:.0f}",
        elapsed=format_seconds(p.elapsed if p else None),
        eta=format_seconds(0 if status == "done" else (p.remaining if p else None)),
    )
    return bar_html(status, lang, title, label if steps else "", pct, css_class="tf-progress", data={"step": step})


def bar_html(status: str, lang: str, title: str, label: str, pct: float, css_class: str, data: dict) -> str:
    """The bar the Train / Runs / Sweep views share: title · status on the left, `label` on the right, filled to
    `pct` in the status's colour; `data` becomes data-* attributes (what the browser tests read)."""
    colour = {"running": "#2563eb", "done": "#16a34a", "failed": "#dc2626", "aborted": "#d97706"}.get(status, "#9ca3af")
    status_text = i18n.label(f"status_{status}", lang) if status else ""
    attrs = "".join(f' data-{key}="{html.escape(str(value))}"' for key, value in data.items())
    return (
        f'<div class="{css_class}" data-status="{html.escape(status)}"{attrs}>'
        f'<div style="display:flex;justify-content:space-between;font-size:14px">'
        f"<span><b>{html.escape(title)}</b> · <span class='tf-status'>{html.escape(status_text)}</span></span>"
        f"<span>{html.escape(label)}</span></div>"
        f'<div style="background:#e5e7eb;border-radius:6px;height:12px;margin-top:4px">'
        f'<div style="width:{pct:.1f}%;background:{colour};height:12px;border-radius:6px"></div></div></div>'
    )


MAX_POINTS = 400  # per series: a browser redraws the plot every 1.5 s; a 100k-step run must not stall it


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most about `limit` evenly spaced points, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    stride = -(-len(points) // limit)
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def curve_frame(curves: dict[str, Progress], lang: str = i18n.DEFAULT_LANG):
    """A long table (step, loss, series) for gr.LinePlot: train and eval loss of one or several runs, the series
    named in `lang` (the legend shows these names)."""
    import pandas as pd

    rows = []
    several = len(curves) > 1
    for name, p in curves.items():
        for key, points in (("series_train", p.train_curve), ("series_eval", p.eval_curve)):
            series = i18n.label(key, lang)
            label = f"{name} · {series}" if several else series
            rows.extend({"step": s, "loss": v, "series": label} for s, v in thin(points))
    return pd.DataFrame(rows, columns=["step", "loss", "series"])


SERIES_COLOURS = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d")


def series_colours(names: list[str]) -> dict[str, str]:
    """A loss chart's colour map: vega's own colours, in the order of the series."""
    return {name: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, name in enumerate(names)}


def run_dir_html(shown: str, full: str) -> str:
    """A Runs-table cell: the short path, the full one on hover."""
    return f'<span class="tf-run-dir" title="{html.escape(full)}">{html.escape(shown)}</span>'
