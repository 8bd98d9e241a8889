"""sweep.yaml: the metric, the sampler, the pruner and the parameter space, checked before the first trial.

Every `params:` key must be a key of the train config, and every value the space can give (low, high, each choice)
must pass the same checks `tuneforge train` applies to a config (config/loader.load_config on base + that value).
Each problem is one UserError naming `sweep.yaml:<key>` and its fix.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuneforge.config.loader import known_keys, load_config, suggest
from tuneforge.errors import UserError
from tuneforge.evaluate.tasks import load_task

METRICS = ("eval_loss", "eval_accuracy", "train_loss")
EVAL_TASK_PREFIX = "eval:"  # eval:<task>: the average accuracy `tuneforge eval` measures after training
DIRECTIONS = ("minimize", "maximize")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
RANGE_KEYS = ("low", "high", "log", "step")
# Keys a trial cannot take from the space: each trial's folder is the sweep's to choose.
NOT_SEARCHABLE = {"output_dir": "each trial trains into its own folder under the sweep's output_dir"}
TOP_KEYS = (
    "metric",
    "direction",
    "n_trials",
    "sampler",
    "seed",
    "pruner",
    "pruner_startup_trials",
    "pruner_warmup_steps",
    "output_dir",
    "params",
)


@dataclass
class SweepSpec:
    metric: str
    direction: str
    n_trials: int
    sampler: str
    seed: int | None
    pruner: str
    output_dir: str | None
    params: dict[str, dict]  # key -> {low, high[, log][, step]} or {choices: [...]}, as written (numbers typed)
    pruner_startup_trials: int = 2  # median: trials that finish before any is pruned (Optuna's default is 5)
    pruner_warmup_steps: int = 0  # median: steps of a trial before it may be pruned
    kinds: dict[str, str] = field(default_factory=dict)  # key -> "int" | "float" | "choice"


def default_direction(metric: str) -> str:
    return "maximize" if metric == "eval_accuracy" or metric.startswith(EVAL_TASK_PREFIX) else "minimize"


def load_sweep_spec(path: str | Path, base_config: dict | None = None) -> SweepSpec:
    """Read and check a sweep.yaml (against `base_config`, the flat train config, when given)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("sweep file not found", where=str(path), fix="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=str(path), fix="fix the syntax") from exc
    return parse_sweep_spec(data, base_config or {}, where=str(path))


def parse_sweep_spec(data: dict, base_config: dict, where: str = "sweep.yaml") -> SweepSpec:
    """The spec from a sweep.yaml mapping; `base_config` is the flat train config each trial starts from."""
    if not isinstance(data, dict):
        raise UserError("a sweep file must hold a mapping of key: value", where=where, fix="see docs/sweep.md")
    for key in data:
        if key not in TOP_KEYS:
            close = suggest(str(key), TOP_KEYS)
            raise UserError(
                f"unknown key '{key}'", where=f"{where}:{key}", fix=f"did you mean '{close}'?" if close else _KEYS_FIX
            )
    metric = _metric(data.get("metric", "eval_loss"), where)
    direction = _choice(data, "direction", DIRECTIONS, default_direction(metric), where)
    sampler = _choice(data, "sampler", SAMPLERS, "tpe", where)
    pruner = _choice(data, "pruner", PRUNERS, "median", where)
    params_in = data.get("params")
    if not isinstance(params_in, dict) or not params_in:
        raise UserError(
            "params must map train config keys to a space",
            where=f"{where}:params",
            fix="e.g. params: {learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}}",
        )
    base = _checked_base(base_config)
    known = known_keys()
    params, kinds = {}, {}
    for key, space in params_in.items():
        params[key], kinds[key] = _space(str(key), space, known, base, f"{where}:params.{key}")
    spec = SweepSpec(
        metric=metric,
        direction=direction,
        n_trials=0,
        sampler=sampler,
        seed=_int(data, "seed", None, where, minimum=0),
        pruner=pruner,
        output_dir=data.get("output_dir") or _default_output_dir(base),
        params=params,
        pruner_startup_trials=_int(data, "pruner_startup_trials", 2, where, minimum=0),
        pruner_warmup_steps=_int(data, "pruner_warmup_steps", 0, where, minimum=0),
        kinds=kinds,
    )
    spec.n_trials = _n_trials(data, spec, where)
    _check_metric_needs(spec, base, where)
    return spec


_KEYS_FIX = "the keys are: " + ", ".join(TOP_KEYS)


def _metric(value: Any, where: str) -> str:
    metric = str(value)
    if metric.startswith(EVAL_TASK_PREFIX):
        if not metric[len(EVAL_TASK_PREFIX) :].strip():
            raise UserError("eval: needs a task", where=f"{where}:metric", fix="e.g. metric: eval:sample")
        return metric
    if metric not in METRICS:
        shown = ", ".join(METRICS) + ", eval:<task>"
        raise UserError(f"unknown metric '{metric}'", where=f"{where}:metric", fix=f"use one of: {shown}")
    return metric


def eval_task(metric: str) -> str | None:
    """The benchmark of an `eval:<task>` metric (a folder under task_dir, as `tuneforge eval task=...`), else None."""
    return metric[len(EVAL_TASK_PREFIX) :].strip() if metric.startswith(EVAL_TASK_PREFIX) else None


def _choice(data: dict, key: str, allowed: tuple, default: str, where: str) -> str:
    value = str(data.get(key) or default).lower()
    if value not in allowed:
        raise UserError(f"'{value}' is not one of: {', '.join(allowed)}", where=f"{where}:{key}", fix="pick one")
    return value


def _int(data: dict, key: str, default, where: str, minimum: int):
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"expected a whole number ≥ {minimum}, got {value!r}", where=f"{where}:{key}", fix="fix it")
    return value


def _n_trials(data: dict, spec: SweepSpec, where: str) -> int:
    if spec.sampler != "grid":
        return _int({"n_trials": data.get("n_trials", 10)}, "n_trials", 10, where, minimum=1)
    size = math.prod(len(values) for values in grid_space(spec, where).values())
    n_trials = _int({"n_trials": data.get("n_trials", size)}, "n_trials", size, where, minimum=1)
    if n_trials > size:
        raise UserError(
            f"n_trials {n_trials} is more than the grid's {size} points",
            where=f"{where}:n_trials",
            fix=f"set n_trials ≤ {size}, or leave it out (the whole grid)",
        )
    return n_trials


def _checked_base(base_config: dict) -> dict:
    """The base config, loaded once with the train checks: its own errors name its own keys."""
    base = dict(base_config)
    load_config(None, base)
    return base


def _default_output_dir(base: dict) -> str | None:
    out = base.get("output_dir")
    return f"{str(out).rstrip('/')}-sweep" if out else None


def number_kind(tp: Any) -> type | None:
    """int or float for a numeric schema type (Optional unwrapped); None for anything else (bool included)."""
    options = [tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
    if bool in options:
        return None
    if float in options:
        return float
    return int if int in options else None


def _space(key: str, space: Any, known: dict, base: dict, where: str) -> tuple[dict, str]:
    if key not in known:
        close = suggest(key, known)
        fix = f"did you mean '{close}'?" if close else "see docs/config.md for the keys"
        raise UserError(f"unknown train config key '{key}'", where=where, fix=fix)
    if key in NOT_SEARCHABLE:
        raise UserError(f"{key} cannot be searched", where=where, fix=NOT_SEARCHABLE[key])
    if not isinstance(space, dict):
        raise UserError(
            "a space is a mapping", where=where, fix="write {low: A, high: B} (with log / step) or {choices: [...]}"
        )
    if "choices" in space:
        return _choices_space(key, space, base, where), "choice"
    return _range_space(key, space, known[key][1], base, where)


def _choices_space(key: str, space: dict, base: dict, where: str) -> dict:
    extra = set(space) - {"choices"}
    choices = space["choices"]
    if extra:
        raise UserError(f"choices take no {', '.join(sorted(extra))}", where=where, fix="keep only choices: [...]")
    if not isinstance(choices, list) or not choices:
        raise UserError("choices must be a non-empty list", where=where, fix="e.g. choices: [4, 8, 16]")
    for value in choices:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise UserError(f"choice {value!r} is not a number, text or boolean", where=where, fix="list plain values")
        _check_value(key, value, base, where)
    return {"choices": list(choices)}


def _range_space(key: str, space: dict, tp: Any, base: dict, where: str) -> tuple[dict, str]:
    extra = set(space) - set(RANGE_KEYS)
    if extra or "low" not in space or "high" not in space:
        raise UserError(
            f"a range takes low, high, log, step (got {', '.join(map(str, space)) or 'nothing'})",
            where=where,
            fix="write {low: A, high: B} (with log: true or step: S), or {choices: [...]}",
        )
    kind = number_kind(tp)
    if kind is None:
        raise UserError(f"{key} is not a number: it has no range", where=where, fix="list its values as choices")
    low, high, step, log = space["low"], space["high"], space.get("step"), bool(space.get("log", False))
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise UserError("low, high and step must be numbers", where=where, fix="e.g. {low: 1.0e-5, high: 1.0e-3}")
    if kind is int and any(isinstance(v, float) and not float(v).is_integer() for v in numbers):
        raise UserError(f"{key} is a whole number", where=where, fix="use whole numbers for low, high and step")
    as_int = kind is int
    low, high = (int(low), int(high)) if as_int else (float(low), float(high))
    step = None if step is None else (int(step) if as_int else float(step))
    if low > high:
        raise UserError(f"low {low} is above high {high}", where=where, fix="swap them")
    if log and low <= 0:
        raise UserError("a log range needs low > 0", where=where, fix="raise low above 0, or drop log")
    if step is not None and step <= 0:
        raise UserError("step must be > 0", where=where, fix="use a positive step")
    if log and step is not None and not (as_int and step == 1):
        raise UserError("a log range takes no step", where=where, fix="drop log or drop step")
    if step is not None and not _multiple(high - low, step):
        raise UserError(f"high - low is not a multiple of step {step}", where=where, fix="adjust high or step")
    for value in (low, high):
        _check_value(key, value, base, where)
    out = {"low": low, "high": high, **({"log": True} if log else {}), **({"step": step} if step is not None else {})}
    return out, "int" if as_int else "float"


def _multiple(span: float, step: float) -> bool:
    ratio = span / step
    return abs(ratio - round(ratio)) < 1e-9 * max(1.0, abs(ratio))


def _check_value(key: str, value: Any, base: dict, where: str) -> None:
    """The value passes the train config's own checks on the base config (one load per value)."""
    try:
        load_config(None, {**base, key: value})
    except UserError as exc:
        raise UserError(f"{key}={value!r}: {exc.message}", where=where, fix=exc.fix) from exc


def grid_space(spec: SweepSpec, where: str = "sweep.yaml") -> dict[str, list]:
    """The grid sampler's points per key: the choices, or low..high by step; a range without step is refused."""
    points = {}
    for key, space in spec.params.items():
        if "choices" in space:
            points[key] = list(space["choices"])
            continue
        step = space.get("step")
        if step is None:
            raise UserError(
                "the grid sampler needs a step (or choices) for every parameter",
                where=f"{where}:params.{key}",
                fix=f"add step: to {key}, list choices, or use sampler: tpe",
            )
        count = round((space["high"] - space["low"]) / step) + 1
        values = [space["low"] + i * step for i in range(count)]
        points[key] = [int(v) for v in values] if spec.kinds[key] == "int" else [round(v, 12) for v in values]
    return points


def _check_metric_needs(spec: SweepSpec, base: dict, where: str) -> None:
    """What the metric needs from the base config: we refuse rather than add an evaluation the user did not ask for."""
    task = eval_task(spec.metric)
    if task is not None:
        _check_task(spec, task, base, where)
    if not spec.metric.startswith("eval_"):
        return
    values = {**base, **{k: (s.get("choices") or [s.get("low")])[0] for k, s in spec.params.items()}}
    cfg = load_config(None, values)
    if not (cfg.data.val_size > 0 or cfg.data.eval_dataset):
        raise UserError(
            f"metric {spec.metric} needs an evaluation set, and the base config has none",
            where=f"{where}:metric",
            fix="add val_size: 0.1 (or eval_dataset: NAME) to the train config, or use metric: train_loss",
        )
    if spec.metric == "eval_accuracy" and not cfg.finetuning.compute_accuracy:
        raise UserError(
            "metric eval_accuracy needs compute_accuracy: true in the train config",
            where=f"{where}:metric",
            fix="add compute_accuracy: true, or use metric: eval_loss",
        )
    if spec.pruner != "none" and str(cfg.training.get("eval_strategy", "steps")).lower().endswith("no"):
        raise UserError(
            f"pruner {spec.pruner} judges each evaluation, and eval_strategy is no",
            where=f"{where}:pruner",
            fix="set eval_strategy: steps with eval_steps: N in the train config, or pruner: none",
        )


def _check_task(spec: SweepSpec, task: str, base: dict, where: str) -> None:
    """eval:<task>: the benchmark's files load (with the base config's task_dir / n_shot); no pruner, as the accuracy
    is measured once, after training."""
    if spec.pruner != "none":
        raise UserError(
            f"{spec.metric} is measured once, after training: there is nothing for pruner {spec.pruner} to judge",
            where=f"{where}:pruner",
            fix="set pruner: none, or use metric: eval_loss to prune on the evaluations during training",
        )
    cfg = load_config(None, base)
    if cfg.model.adapter_name_or_path:
        raise UserError(
            f"{spec.metric} scores a trial's own adapter, and the train config stacks it on adapter_name_or_path",
            where=f"{where}:metric",
            fix="use metric: eval_loss, or run `tuneforge eval` on the trials yourself",
        )
    try:
        load_task(task, cfg.evaluation.task_dir, cfg.evaluation.n_shot)
    except UserError as exc:
        raise UserError(exc.message, where=f"{where}:metric ({exc.where})", fix=exc.fix) from exc
