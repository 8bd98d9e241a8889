"""Turn YAML / command-line values into the types a field declares, or say clearly why not."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from tuneforge.config.fields import choices
from tuneforge.errors import UserError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _options(tp) -> tuple[list, bool]:
    """The concrete types of a (possibly Optional / Union) annotation, and whether None is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args, len(args) < len(typing.get_args(tp))
    return [tp], tp is Any


def coerce(value: Any, tp: Any, where: str) -> Any:
    allowed = choices(tp)
    if allowed is not None:
        return _choose(value, allowed, where)
    options, nullable = _options(tp)
    if value is None:
        return None
    if nullable and isinstance(value, str) and value.strip().lower() in ("none", "null", "~"):
        return None
    for option in options:  # a value that already has one of the declared types is kept as it is
        if isinstance(option, type) and type(value) is option:
            return value
    errors = []
    for option in options:
        try:
            return _coerce_one(value, option)
        except (TypeError, ValueError) as exc:
            errors.append(str(exc))
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise UserError(f"expected {names}, got {value!r}", where=where, fix="correct the value")


def _choose(value: Any, allowed: list, where: str) -> Any:
    """A `Literal[...]` field: the value read as its choices' type (a YAML "4" is 4, `none` is None where None is a
    choice), then checked against them."""
    kinds = tuple(dict.fromkeys(type(c) for c in allowed))  # NoneType among them when None is a choice
    value = coerce(value, typing.Union[kinds], where)  # noqa: UP007 - a Union built from a tuple of types
    if value not in allowed:
        shown = ", ".join(str(c) for c in allowed)
        raise UserError(f"'{value}' is not one of: {shown}", where=where, fix="pick one of those")
    return value


def _coerce_one(value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (list, typing.List):  # noqa: UP006
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError("not a list")
        return [_coerce_one(v, item) for v in value]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            raise TypeError("not a mapping")
        return value
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ValueError(f"not one of {typing.get_args(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("not a boolean")
    if tp is int:
        if isinstance(value, bool):
            raise TypeError("bool is not int")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise TypeError("not an int")
    if tp is float:
        if isinstance(value, bool):
            raise TypeError("bool is not float")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())  # YAML reads 1e-4 as a string
        raise TypeError("not a number")
    if tp is str:
        if isinstance(value, (dict, list)):
            raise TypeError("not a string")
        return str(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value).value if not isinstance(value, tp) else value.value
    return value
