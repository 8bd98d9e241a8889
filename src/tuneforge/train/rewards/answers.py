"""The final answer of a completion and whether it equals the dataset's answer (the `accuracy` reward's core).

The final answer is the last `\\boxed{...}` in the text, or else its last number. Two answers that both read as numbers
(`17`, `-3.50`, `1,234`, `3/4`, `\\frac{3}{4}`, full-width digits) are compared as numbers; anything else goes to
math_verify when it is installed (symbolic equality: `\\sqrt{4}` = `2`), else to our normalised text equality.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?")
_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$")
_WRAPPERS = ("\\text{", "\\mathrm{", "\\textbf{")


def completion_text(completion) -> str:
    """A completion as TRL passes it: text for plain prompts, or [{"role": "assistant", "content": ...}] for
    conversational ones (the last message's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        return content if isinstance(content, str) else ""
    return "" if completion is None else str(completion)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip()
    return None  # not closed: the completion was cut off


def final_answer(text: str) -> str | None:
    """`\\boxed{...}` if there is one, else the last number in the text, else None."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def as_number(text: str) -> Fraction | None:
    """'1,234' → 1234, '-3.50' → -7/2, '\\frac{3}{4}' or '3/4' → 3/4, '$17$' → 17; None when it is not a number."""
    s = unicodedata.normalize("NFKC", str(text)).replace("\u2212", "-").strip().strip("$").strip()
    for wrapper in _WRAPPERS:
        if s.startswith(wrapper) and s.endswith("}"):
            s = s[len(wrapper) : -1].strip()
    s = s.removeprefix("\\$").rstrip(".").replace(" ", "")
    frac = _FRAC.match(s)
    if frac:
        return Fraction(int(frac[1]), int(frac[2])) if int(frac[2]) else None
    if not _NUMBER.fullmatch(s):
        return None
    s = s.replace(",", "")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def normalise(text: str) -> str:
    """Text for comparison when an answer is not a number: NFKC, no `$`, spaces or trailing period, lower case."""
    s = unicodedata.normalize("NFKC", str(text)).strip().strip("$").rstrip(".")
    return re.sub(r"\s+", "", s).lower()


def answers_match(predicted: str, gold: str, *, use_math_verify: bool | None = None) -> bool:
    """Whether a final answer equals the gold answer: as numbers when both are numbers; else symbolically with
    math_verify (`use_math_verify` None = when installed); else as normalised text."""
    a, b = as_number(predicted), as_number(gold)
    if a is not None and b is not None:
        return a == b
    if use_math_verify is None:
        use_math_verify = math_verify_installed()
    if use_math_verify:
        from math_verify import parse, verify  # optional: `pip install math-verify`

        pred, ref = parse(f"${predicted}$"), parse(f"${gold}$")
        if pred and ref:
            return bool(verify(ref, pred))
    return normalise(predicted) == normalise(gold)


def math_verify_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None
