"""The built-in rewards, in TRL's reward-function form: `reward(prompts, completions, **columns) -> list[float | None]`.

TRL's GRPOTrainer (1.16) calls each with `prompts`, `completions` (text, or [{"role": "assistant", "content"}] for
conversational prompts), `completion_ids` (token ids), every other dataset column as a list (one value per
completion), and `trainer_state`, `log_extra`, `log_metric`. None means "does not apply to this row": TRL leaves that
reward out of the row's sum. Each is a small class so its settings travel with it (picklable) and its `__name__`
names its curve (`rewards/<name>/mean`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tuneforge.data.tool_formats import get_tool_format, tools_from_json
from tuneforge.errors import UserError
from tuneforge.train.rewards.answers import answers_match, completion_text, final_answer

LENGTH_UNITS = ("tokens", "chars")


class AccuracyReward:
    """1.0 when the completion's final answer (`\\boxed{}` or the last number) equals the row's answer column, 0.0
    when it does not, None when the row has no answer. Reads the text after the thinking block when there is one."""

    __name__ = "accuracy"

    def __init__(self, answer_column: str = "answer", thought_words: tuple[str, str] = ("<think>", "</think>")):
        self.answer_column = answer_column
        self.close = thought_words[1]

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        if self.answer_column not in columns:
            raise UserError(
                f"the accuracy reward needs an '{self.answer_column}' column, and the data has none",
                where="reward_funcs",
                fix="map the answer column in dataset_info.json ('columns': {'answer': ...})",
            )
        out: list[float | None] = []
        for completion, gold in zip(completions, columns[self.answer_column], strict=True):
            if gold is None or str(gold).strip() == "":
                out.append(None)
                continue
            text = completion_text(completion).rpartition(self.close)[2]  # the answer, not the thoughts
            found = final_answer(text)
            out.append(1.0 if found is not None and answers_match(found, str(gold)) else 0.0)
        return out


class FormatReward:
    """1.0 when the completion is one thinking block (`<think>…</think>` by default: the template's thought words)
    with something in it, then a non-empty answer; else 0.0. When the prompt already ends with the opening word (a
    template that opens the thought for the model), the completion starts inside the block."""

    __name__ = "format"

    def __init__(self, thought_words: tuple[str, str] = ("<think>", "</think>")):
        self.open, self.close = (w.strip() for w in thought_words)
        start, end = re.escape(self.open), re.escape(self.close)
        self._pattern = re.compile(rf"\s*{start}(?P<thought>.*?){end}(?P<answer>.*)", re.DOTALL)

    def __call__(self, prompts, completions, **columns) -> list[float]:
        return [self.score(p, c) for p, c in zip(prompts, completions, strict=True)]

    def score(self, prompt, completion) -> float:
        text = completion_text(completion)
        if isinstance(prompt, str) and prompt.rstrip().endswith(self.open) and self.open not in text:
            text = self.open + text
        match = self._pattern.fullmatch(text)
        if not match or self.open in match["thought"] or self.close in match["answer"] or self.open in match["answer"]:
            return 0.0
        return 1.0 if match["thought"].strip() and match["answer"].strip() else 0.0


class LengthReward:
    """A soft length penalty: 0.0 up to `target` (in `unit`: "tokens" counts the completion's token ids, "chars"
    its characters), then falling linearly to -1.0 at twice the target, and -1.0 beyond."""

    __name__ = "length"

    def __init__(self, target: int = 512, unit: str = "tokens"):
        if isinstance(target, bool) or not isinstance(target, int) or target < 1:
            raise UserError(f"the length reward's target must be a positive integer, got {target!r}")
        if unit not in LENGTH_UNITS:
            raise UserError(f"the length reward's unit must be one of {LENGTH_UNITS}, got {unit!r}")
        self.target, self.unit = target, unit

    def __call__(self, prompts, completions, completion_ids=None, **columns) -> list[float]:
        if self.unit == "tokens" and completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        else:  # characters (or no ids given)
            lengths = [len(completion_text(c)) for c in completions]
        return [-min(1.0, max(0, n - self.target) / self.target) for n in lengths]


class ToolCallReward:
    """1.0 when the completion holds at least one tool call, in `tool_format` (tuneforge.data.tool_formats), and each
    call names a tool declared in the row's tools column with JSON-object arguments holding the tool's required
    parameters; 0.0 otherwise; None for a row that declares no tools."""

    __name__ = "tool_call"

    def __init__(self, tool_format: str = "default", tools_column: str = "tools"):
        self.format = get_tool_format(tool_format)  # an unknown name fails here, naming the known ones
        self.tools_column = tools_column

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        declared = columns.get(self.tools_column) or [None] * len(completions)
        return [self.score(c, tools) for c, tools in zip(completions, declared, strict=True)]

    def score(self, completion, tools: Any) -> float | None:
        specs = _tool_specs(tools)
        if not specs:
            return None
        calls = self.format.read_calls(completion_text(completion))
        if not isinstance(calls, list) or not calls:
            return 0.0
        for name, arguments in calls:
            if name not in specs:
                return 0.0
            try:
                args = json.loads(arguments)
            except json.JSONDecodeError:
                return 0.0
            if not isinstance(args, dict) or any(key not in args for key in specs[name]):
                return 0.0
        return 1.0


def _tool_specs(tools: Any) -> dict[str, list[str]]:
    """{tool name: its required parameters} from a row's tools (JSON text or a list; bare or OpenAI-wrapped)."""
    if not tools:
        return {}
    if isinstance(tools, str):
        try:
            tools = tools_from_json(tools)
        except UserError:
            return {}
    specs = {}
    for tool in tools if isinstance(tools, list) else [tools]:
        fn = tool.get("function", {}) if isinstance(tool, dict) and tool.get("type") == "function" else tool
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
            specs[fn["name"]] = [r for r in params.get("required", []) if isinstance(r, str)]
    return specs
