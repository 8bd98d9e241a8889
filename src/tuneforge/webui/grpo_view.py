"""GRPO in the Train tab, beside the loss curve: reward (the weighted sum and each reward function), KL and completion
length against the step, from trainer_log.jsonl; and the latest sample completions with their rewards, from
completions.jsonl. Both are read on the loss curve's timer; a run without GRPO metrics keeps the panel hidden."""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.utils.run_folder import completions_path, read_records
from tuneforge.webui import i18n
from tuneforge.webui.jobs_view import draw_curves
from tuneforge.webui.render import thin

REWARD, KL, LENGTH = "reward", "kl", "completions/mean_length"  # the trainer_log.jsonl keys (TRL's names)
_PER_FUNCTION = re.compile(r"^rewards/(.+)/mean$")
MAX_SAMPLES = 16  # rows a logging step writes at most
TAIL_BYTES, MAX_TAIL_BYTES = 1 << 18, 1 << 24  # completions.jsonl is read from its end, a larger piece when needed
CELL = "white-space:pre-wrap;word-break:break-word;max-height:9em;overflow:auto"


@dataclass
class GrpoCurves:
    """The GRPO curves of one run: `rewards` maps REWARD (the weighted sum) and each function's name to its points."""

    rewards: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    kl: list[tuple[int, float]] = field(default_factory=list)
    length: list[tuple[int, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rewards or self.kl or self.length)


def _number(value) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def grpo_curves(records: list[dict]) -> GrpoCurves:
    """The GRPO metrics of trainer_log.jsonl records; empty for a run of another stage."""
    out = GrpoCurves()
    for row in records:
        step = int(row.get("step") or 0)
        for key, raw in row.items():
            value = _number(raw)
            if value is None:
                continue
            if key == REWARD:
                out.rewards.setdefault(REWARD, []).append((step, value))
            elif match := _PER_FUNCTION.match(key):
                out.rewards.setdefault(match.group(1), []).append((step, value))
            elif key == KL:
                out.kl.append((step, value))
            elif key == LENGTH:
                out.length.append((step, value))
    if REWARD in out.rewards:  # the sum first: the legend's first entry
        out.rewards = {REWARD: out.rewards.pop(REWARD), **out.rewards}
    return out


def reward_frame(curves: GrpoCurves, lang: str = i18n.DEFAULT_LANG):
    """A long table (step, reward, series) for gr.LinePlot: the sum named in `lang`, each function by its name."""
    import pandas as pd

    rows = []
    for name, points in curves.rewards.items():
        series = i18n.label("series_reward", lang) if name == REWARD else name
        rows.extend({"step": s, "reward": v, "series": series} for s, v in thin(points))
    return pd.DataFrame(rows, columns=["step", "reward", "series"])


def single_frame(points: list[tuple[int, float]], column: str):
    """(step, <column>) for a one-line gr.LinePlot (KL, completion length)."""
    import pandas as pd

    return pd.DataFrame(thin(points), columns=["step", column])


def latest_completions(run_dir: str | Path) -> tuple[int | None, list[dict]]:
    """(step, rows) of the last logged step in completions.jsonl, read from the file's end; (None, []) when there is
    none. A line still being written is skipped."""
    path = completions_path(run_dir)
    if not path.is_file():
        return None, []
    size, want = path.stat().st_size, TAIL_BYTES
    while True:
        start = max(0, size - want)
        with path.open("rb") as f:
            f.seek(start)
            lines = f.read(size - start).split(b"\n")
        rows = [row for row in map(_completion_row, lines[1:] if start else lines) if row is not None]
        if rows:
            step = rows[-1]["step"]
            group = []
            for row in reversed(rows):
                if row["step"] != step:
                    break
                group.append(row)
            # the step's first row may lie before this piece: read a larger one
            if len(group) < len(rows) or start == 0 or want >= MAX_TAIL_BYTES:
                return step, group[::-1][-MAX_SAMPLES:]
        elif start == 0 or want >= MAX_TAIL_BYTES:
            return None, []
        want *= 4


def _completion_row(line: bytes) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool)
    return row if ok else None


def _score(value) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.3f}"


def _text_cell(value, rows: int = 1) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    span = f' rowspan="{rows}"' if rows > 1 else ""
    return f'<td{span}><div style="{CELL}">{html.escape(text)}</div></td>'


def completions_html(step: int | None, rows: list[dict], lang: str = i18n.DEFAULT_LANG) -> str:
    """The latest sample completions as an HTML table: prompt (one cell for a group's consecutive rows), completion,
    each reward function, the weighted reward and the advantage. Every text is escaped: completions are whatever
    the model wrote."""
    if step is None or not rows:
        return ""
    functions = list(dict.fromkeys(k for row in rows if isinstance(row.get("rewards"), dict) for k in row["rewards"]))
    heads = [
        i18n.label("samples_prompt", lang),
        i18n.label("samples_completion", lang),
        *functions,
        i18n.label("samples_reward", lang),
        i18n.label("samples_advantage", lang),
    ]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = []
    for i, row in enumerate(rows):
        rewards = row.get("rewards") if isinstance(row.get("rewards"), dict) else {}
        scores = [rewards.get(name) for name in functions] + [row.get("reward"), row.get("advantage")]
        prompt = row.get("prompt", "")
        cells = ""
        if i == 0 or rows[i - 1].get("prompt", "") != prompt:  # a group's completions share one prompt cell
            span = next((n for n, later in enumerate(rows[i:]) if later.get("prompt", "") != prompt), len(rows) - i)
            cells = _text_cell(prompt, span)
        cells += _text_cell(row.get("completion", ""))
        cells += "".join(f'<td style="text-align:right">{_score(v)}</td>' for v in scores)
        body.append(f"<tr>{cells}</tr>")
    caption = html.escape(i18n.text("samples_title", lang, step=step))
    return (
        f'<table class="tf-samples" data-step="{step}" style="width:100%;font-size:13px">'
        f'<caption style="text-align:left;font-weight:600">{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def grpo_monitor(run_dir: str | Path | None, lang: str):
    """What the GRPO panel shows for a run: (the panel shown?, KL frame, KL shown?, length frame, samples HTML,
    reward frame)."""
    curves = grpo_curves(read_records(run_dir)) if run_dir else GrpoCurves()
    step, rows = latest_completions(run_dir) if run_dir else (None, [])
    return (
        bool(curves) or bool(rows),
        single_frame(curves.kl, "kl"),
        bool(curves.kl),
        single_frame(curves.length, "length"),
        completions_html(step, rows, lang),
        reward_frame(curves, lang),
    )


def grpo_panel(ui) -> None:
    """The panel's components (hidden until a run logs GRPO metrics): reward, KL and completion-length charts in a
    row, the sample table under them. The charts carry their name as a title drawn inside them: a block label above
    a chart pushes its legend out of the box."""
    import gradio as gr

    chart = dict(how="title", x="step", height=360, show_label=False)
    with ui.control("grpo_box", gr.Column, how="none", visible=False):
        with gr.Row():
            ui.control("reward_plot", gr.LinePlot, y="reward", color="series", color_title=" ", **chart)
            ui.control("kl_plot", gr.LinePlot, y="kl", **chart)
            ui.control("length_plot", gr.LinePlot, y="length", **chart)
        ui.control("grpo_samples", gr.HTML, how="none")


def follow_grpo(ui, triggers: list, job_select, lang_in, **kw) -> None:
    """Refresh the GRPO panel on the loss curve's triggers, for the run `job_select` shows."""
    import gradio as gr

    e = ui.elems

    def tick(job_id, lang):
        job = ui.store.get(int(job_id)) if job_id not in (None, "") else None
        shown, kl, kl_shown, length, samples, rewards = grpo_monitor(job.run_dir if job else None, lang)
        if not shown:
            return gr.update(visible=False), gr.skip(), gr.skip(), gr.skip(), rewards
        return gr.update(visible=True), gr.update(value=kl, visible=kl_shown), length, samples, rewards

    outputs = [e["grpo_box"], e["kl_plot"], e["length_plot"], e["grpo_samples"], e["reward_plot"]]
    draw_curves(triggers, tick, [job_select, lang_in], outputs, **kw)
