"""The folder a benchmark writes: results.json (the scores) and results.log (the table), for both backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

RESULTS_FILE = "results.json"
LOG_FILE = "results.log"


def default_save_dir(cfg: RunConfig) -> str:
    return str(Path("saves") / "eval" / (cfg.evaluation.task or "task"))


def check_save_dir(save_dir: str | Path, overwrite: bool) -> Path:
    path = Path(save_dir)
    if (path / RESULTS_FILE).is_file() and not overwrite:
        raise UserError(
            f"save_dir already holds {RESULTS_FILE}",
            where=f"save_dir ({save_dir})",
            fix="choose a new save_dir, or set overwrite_output_dir: true to replace it",
        )
    if path.exists() and not path.is_dir():
        raise UserError("save_dir is a file", where=f"save_dir ({save_dir})", fix="choose a folder path")
    return path


def write_results(save_dir: Path, results_json: str, table: str) -> None:
    """results.json (the JSON text given) and results.log (the table)."""
    save_dir.mkdir(parents=True, exist_ok=True)
    (save_dir / RESULTS_FILE).write_text(results_json + "\n", encoding="utf-8")
    (save_dir / LOG_FILE).write_text(table + "\n", encoding="utf-8")
