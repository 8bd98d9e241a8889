"""The loss plot of a run, drawn from its JSONL log (both named in utils/run_folder.py)."""

from __future__ import annotations

from pathlib import Path

from tuneforge.utils import run_folder


def plot_loss(output_dir: str | Path) -> Path | None:
    records = run_folder.read_records(output_dir)
    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    evals = [(r["step"], r["eval_loss"]) for r in records if r.get("eval_loss") is not None]
    if not train:
        return None
    import matplotlib  # heavy, and only a run that plots needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(*zip(*train, strict=True), label="train loss", color="#1f77b4", alpha=0.5)
    if len(train) >= 5:
        ax.plot([s for s, _ in train], _smooth([v for _, v in train]), label="train loss (smoothed)", color="#1f77b4")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss", color="#d62728")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"training loss of {Path(output_dir).name}")
    ax.legend()
    ax.grid(alpha=0.3)
    out = run_folder.plot_path(output_dir)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def _smooth(values: list[float], weight: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard draws it."""
    out, last = [], 0.0
    for i, value in enumerate(values, 1):
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight**i))
    return out
