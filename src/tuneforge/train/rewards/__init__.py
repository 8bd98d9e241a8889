"""GRPO's reward functions by name: the built-ins (`accuracy`, `format`, `length`, `tool_call`) and user functions
from Python files (`my_rewards.py:score`); `reward_weights` are parsed in config/grpo_checks.py.

`build_reward_funcs("accuracy,format", RewardSettings(...))` → the callables GRPOTrainer takes as `reward_funcs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuneforge.config.grpo_checks import (
    BUILTIN_REWARDS,
    is_file_spec,
    split_reward_specs,
    unknown_builtin,
)
from tuneforge.errors import UserError
from tuneforge.train.rewards.builtins import AccuracyReward, FormatReward, LengthReward, ToolCallReward
from tuneforge.train.rewards.user_file import load_user_reward

__all__ = [
    "BUILTIN_REWARDS",
    "RewardSettings",
    "build_reward_funcs",
    "is_file_spec",
    "split_reward_specs",
]


@dataclass
class RewardSettings:
    """What the built-ins need from the run: the template's thought words and tool format, the answer column, the
    length target; `base_dir` is where relative reward-file paths start (the config file's folder)."""

    thought_words: tuple[str, str] = ("<think>", "</think>")
    tool_format: str = "default"
    answer_column: str = "answer"
    tools_column: str = "tools"
    target_length: int = 512
    length_unit: str = "tokens"
    base_dir: str | Path | None = None


def build_reward_funcs(specs: str | list[str] | None, settings: RewardSettings | None = None) -> list:
    """One callable per entry: a built-in by name, or a user function from 'file.py:function'."""
    settings = settings or RewardSettings()
    names = split_reward_specs(specs)
    if not names:
        raise UserError(
            "GRPO needs at least one reward function",
            where="reward_funcs",
            fix=f"name built-ins ({', '.join(BUILTIN_REWARDS)}) or 'file.py:function'",
        )
    return [_build_one(name, settings) for name in names]


def _build_one(name: str, s: RewardSettings):
    if is_file_spec(name):
        return load_user_reward(name, s.base_dir)
    if name == "accuracy":
        return AccuracyReward(s.answer_column, s.thought_words)
    if name == "format":
        return FormatReward(s.thought_words)
    if name == "length":
        return LengthReward(s.target_length, s.length_unit)
    if name == "tool_call":
        return ToolCallReward(s.tool_format, s.tools_column)
    raise unknown_builtin(name)
