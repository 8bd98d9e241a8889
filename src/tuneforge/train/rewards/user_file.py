"""A reward function of the user's, from a Python file: `reward_funcs: my_rewards.py:score`.

It is called as TRL calls every reward function: `score(prompts, completions, **columns)`, where the columns are
`completion_ids`, `trainer_state`, `log_extra`, `log_metric` and every other column of the dataset (one value per
completion). A function without `**kwargs` receives only the arguments it names. It returns one float (or None:
"does not apply") per completion. Whatever goes wrong — loading it or calling it — is one UserError line naming
the file and the function, and, for a call, the row.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import numbers
import sys
from pathlib import Path

from tuneforge.errors import UserError

FIX_SPEC = "write reward_funcs as 'path/to/file.py:function_name'"
FIX_RETURN = "return a list with one float (or None) per completion"


def load_user_reward(spec: str, base_dir: str | Path | None = None) -> UserRewardFunction:
    """The function `name` of the file in `spec` ('path.py:name'; a relative path is taken from `base_dir`, default
    the current folder), wrapped so that its failures are one line."""
    path_text, _, name = spec.rpartition(":")
    if not path_text.endswith(".py") or not name.isidentifier():
        raise UserError(f"reward function '{spec}' is not 'file.py:function'", where="reward_funcs", fix=FIX_SPEC)
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    where = f"{path}:{name}"
    if not path.is_file():
        raise UserError(f"reward file not found: {path}", where="reward_funcs", fix=FIX_SPEC)
    module = _import_file(path, where)
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise UserError(
            f"{path} defines no '{name}'",
            where=where,
            fix=f"functions defined there: {', '.join(defined) or '(none)'}",
        )
    func = getattr(module, name)
    if not callable(func):
        raise UserError(f"'{name}' in {path} is a {type(func).__name__}, not a function", where=where, fix=FIX_SPEC)
    return UserRewardFunction(func, name=name, where=where)


def _import_file(path: Path, where: str):
    # A name of its own per file, so two files with the same stem do not replace each other in sys.modules.
    module_name = f"tuneforge_user_reward_{path.stem}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[module_name]
        raise UserError(f"syntax error in reward file: {e.msg}", where=f"{path}:{e.lineno}", fix="fix the file") from e
    except Exception as e:
        del sys.modules[module_name]
        raise UserError(f"importing the reward file failed: {type(e).__name__}: {e}", where=where) from e
    return module


class UserRewardFunction:
    """A user's reward function, called as TRL calls one, with its failures turned into one line."""

    def __init__(self, func, *, name: str, where: str):
        self.func, self.__name__, self.where = func, name, where
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):  # builtins and some C callables have no signature: pass everything
            params = ()
        self._takes_all = not params or any(p.kind is p.VAR_KEYWORD for p in params)
        self._names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        every = {"prompts": prompts, "completions": completions, **columns}
        kwargs = every if self._takes_all else {k: v for k, v in every.items() if k in self._names}
        try:
            rewards = self.func(**kwargs)
        except Exception as e:
            row = self._failing_row(kwargs, every, len(completions))
            raise UserError(
                f"reward function raised {type(e).__name__}: {e} ({row})",
                where=self.where,
                fix="fix the function (it is called with lists: one entry per completion)",
            ) from e
        return self._checked(rewards, len(completions), every)

    def _checked(self, rewards, expected: int, columns: dict) -> list[float | None]:
        if not isinstance(rewards, list | tuple):
            got = type(rewards).__name__
            raise UserError(f"reward function returned a {got}, not a list", where=self.where, fix=FIX_RETURN)
        if len(rewards) != expected:
            msg = f"reward function returned {len(rewards)} rewards for {expected} completions"
            raise UserError(msg, where=self.where, fix=FIX_RETURN)
        out: list[float | None] = []
        for i, value in enumerate(rewards):
            if value is None:
                out.append(None)
            elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
                out.append(float(value))
            else:
                raise UserError(
                    f"reward function returned {value!r} ({type(value).__name__}) for {_row_label(i, columns)}",
                    where=self.where,
                    fix=FIX_RETURN + ", finite numbers only",
                )
        return out

    def _failing_row(self, kwargs: dict, every: dict, n: int) -> str:
        """The first row the function fails on alone, or 'the whole batch' when each row alone works."""
        for i in range(n):
            row = {k: v[i : i + 1] if isinstance(v, list) and len(v) == n else v for k, v in kwargs.items()}
            try:
                self.func(**row)
            except Exception:
                return _row_label(i, every)
        return f"a batch of {n} completions; each one alone works"


def _row_label(i: int, columns: dict) -> str:
    """'row 3 (data.json:12)' when the rows carry their source, else 'row 3 of the batch'."""
    sources = columns.get("source")
    if isinstance(sources, list) and i < len(sources) and sources[i]:
        return f"row {i} ({sources[i]})"
    completions = columns.get("completions")
    text = completions[i] if isinstance(completions, list) and i < len(completions) else None
    shown = f", completion {str(text)[:40]!r}" if isinstance(text, str) else ""
    return f"row {i} of the batch{shown}"
