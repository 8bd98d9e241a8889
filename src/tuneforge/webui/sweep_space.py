"""The Sweep tab's search space: which Train-form fields may be searched, the range a row starts from (the form's
current value), and the rows the user ticked → the `sweep.yaml` dict `tuneforge sweep` reads (Optuna's forms:
{low, high, log}, {low, high, step}, {choices})."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from tuneforge.errors import UserError
from tuneforge.webui import form

# numeric form fields that change the data or the bookkeeping, not the training: a metric across them compares
# different things (another validation split, fewer samples) or nothing at all (log / save cadence)
NOT_SEARCHED = frozenset(
    {"max_samples", "val_size", "logging_steps", "save_steps", "early_stopping_steps"}
    | {"image_max_pixels", "image_min_pixels"}
)
CATEGORICAL = ("lr_scheduler_type", "pref_loss", "loss_type", "importance_sampling_level")  # choices only
METRICS = ("eval_loss", "eval_accuracy", "train_loss")  # and eval:<task>, typed into the box
DIRECTIONS = ("auto", "minimize", "maximize")  # auto: the sweep picks it from the metric
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")


def is_numeric(key: str) -> bool:
    """An int / float field, shown as a Number box or (may be empty, a learning rate) as text."""
    k = form.kind(key)
    return k in ("int", "float") or (k == "text" and form.is_text_number(key))


def is_int(key: str) -> bool:
    tp = str(form.schema()[key]["type"])
    return "int" in tp and "float" not in tp


@functools.cache
def searchable() -> list[str]:
    """The Train form's fields the tab offers, in the form's order. A function: the schema loads transformers."""
    return [k for k in form.TRAIN_FORM if (is_numeric(k) and k not in NOT_SEARCHED) or k in CATEGORICAL]


@functools.cache
def groups() -> tuple[tuple[str, list[str]], ...]:
    """The tab's boxes: (i18n key of the box title, its rows), as the Train form groups them."""
    keys = searchable()
    return (
        ("acc_sweep_train", [k for k in keys if k in form.TRAIN or k in form.OTHER]),
        ("acc_method", [k for k in keys if k in form.LORA or k in form.FREEZE or k in form.OFT]),
        ("acc_pref", [k for k in keys if k in form.STAGE_FIELDS]),
    )


@dataclass
class Row:
    """One row of the tab: search this field? and its range (text boxes: numbers as the user typed them)."""

    on: bool = False
    low: str = ""
    high: str = ""
    log: bool = False
    step: str = ""
    choices: str = ""


def _fmt(x: float, integer: bool) -> str:
    return str(int(x)) if integer else f"{x:g}"


def default_range(key: str, value: Any) -> tuple[str, str, bool]:
    """(low, high, log) a row starts from, around the Train form's value: a learning rate a decade either side on a
    log scale, another positive number half to double, a zero 0 to a small value; ("", "", False) for a choice."""
    if key in CATEGORICAL:
        return "", "", False
    integer = is_int(key)
    try:
        number = form.from_widget(key, value)
    except UserError:
        number = None
    if number is None:
        number = form.default(key)
    if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number) or number < 0:
        return "", "", False
    if number == 0:
        return "0", "10" if integer else "0.1", False
    if "learning_rate" in key:
        return _fmt(number / 10, False), _fmt(number * 10, False), True
    low = max(1, number // 2) if integer else number / 2
    return _fmt(low, integer), _fmt(number * 2, integer), False


def _number(key: str, text: str, what: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise UserError(
            f"{what} '{text}' is not a number", where=f"sweep: {key}", fix="write a number, e.g. 1e-4"
        ) from None
    if not math.isfinite(number):
        raise UserError(f"{what} '{text}' is not a finite number", where=f"sweep: {key}", fix="write a number")
    if is_int(key):
        if not number.is_integer():
            raise UserError(f"{what} '{text}' is not a whole number", where=f"sweep: {key}", fix="e.g. 4")
        return int(number)
    return number


def param_entry(key: str, row: Row) -> dict:
    """One `params:` entry of sweep.yaml from a ticked row; a UserError naming the field when it is not a range."""
    where = f"sweep: {key}"
    texts = [c.strip() for c in (row.choices or "").split(",") if c.strip()]
    if texts:
        if key in CATEGORICAL:
            allowed = form.schema()[key].get("choices")
            wrong = [c for c in texts if allowed and c not in allowed]
            if wrong:
                raise UserError(f"'{wrong[0]}' is not a choice", where=where, fix=f"use {', '.join(map(str, allowed))}")
            return {"choices": list(dict.fromkeys(texts))}
        return {"choices": list(dict.fromkeys(_number(key, c, "choice") for c in texts))}
    if key in CATEGORICAL:
        raise UserError("no choices given", where=where, fix="write the values to try, comma separated")
    low_text, high_text, step_text = (str(v or "").strip() for v in (row.low, row.high, row.step))
    if not low_text or not high_text:
        raise UserError("a range needs low and high", where=where, fix="fill both, or write choices")
    low, high = _number(key, low_text, "low"), _number(key, high_text, "high")
    if low >= high:
        raise UserError(f"low {low} is not below high {high}", where=where, fix="swap them, or write choices")
    entry: dict[str, Any] = {"low": low, "high": high}
    if row.log:
        if low <= 0:
            raise UserError("a log scale needs low > 0", where=where, fix="raise low, or untick log")
        if step_text:
            raise UserError("a log scale takes no step", where=where, fix="clear the step, or untick log")
        entry["log"] = True
    elif step_text:
        step = _number(key, step_text, "step")
        if step <= 0:
            raise UserError(f"step {step} is not positive", where=where, fix="e.g. 1")
        entry["step"] = step
    return entry


def build_spec(
    rows: dict[str, Row],
    values: dict[str, Any],
    metric: str,
    direction: str,
    n_trials,
    sampler: str,
    pruner: str,
    seed=None,
) -> dict:
    """The sweep.yaml dict: the settings and an entry for each ticked row. `values`: the Train form's values (a
    field the form's method or stage does not use cannot be searched: every trial would train the same)."""
    metric = (metric or "").strip()
    if not metric:
        raise UserError("no metric", where="sweep: metric", fix=f"pick one of {', '.join(METRICS)} or eval:<task>")
    try:
        trials = int(n_trials)
    except (TypeError, ValueError):
        trials = 0
    if trials < 1 or trials != n_trials:
        raise UserError(f"n_trials {n_trials!r} is not a positive whole number", where="sweep: n_trials", fix="e.g. 6")
    params = {}
    for key, row in rows.items():
        if not row.on:
            continue
        if not form.relevant(key, values):
            method, stage = values.get("finetuning_type"), values.get("stage")
            raise UserError(
                f"{key} is not used by finetuning_type {method} / stage {stage}",
                where=f"sweep: {key}",
                fix="untick it, or change the method / stage in the Train tab",
            )
        params[key] = param_entry(key, row)
    if not params:
        raise UserError("no field to search", where="sweep", fix="tick 'search' on at least one row")
    spec: dict[str, Any] = {"metric": metric, "n_trials": trials, "sampler": sampler, "pruner": pruner}
    if direction and direction != "auto":
        spec["direction"] = direction
    if seed not in (None, ""):
        spec["seed"] = int(seed)
    spec["params"] = params
    return spec
