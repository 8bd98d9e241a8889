"""GRPO's built-in rewards and the reward registry: exact rewards for exact completions, one-line errors."""

from __future__ import annotations

import json
import pickle
from fractions import Fraction

import pytest

from tuneforge.config.grpo_checks import parse_reward_weights
from tuneforge.errors import UserError
from tuneforge.train.rewards import RewardSettings, build_reward_funcs
from tuneforge.train.rewards.answers import answers_match, as_number, completion_text, final_answer
from tuneforge.train.rewards.builtins import AccuracyReward, FormatReward, LengthReward, ToolCallReward


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("3 + 4 = 7. So the answer is \\boxed{7}.", "7"),
        ("\\boxed{\\frac{1}{2}} and later 9", "\\frac{1}{2}"),  # boxed wins over a later number
        ("\\boxed{a{b}c}", "a{b}c"),  # balanced braces
        ("Tom has 12 apples, then 5 more: 17 apples.", "17"),  # the last number
        ("It costs 1,234 dollars", "1,234"),
        ("温度是−5度", "-5"),  # unicode minus
        ("答案是１２", "12"),  # full-width digits
        ("no numbers here", None),
        ("cut off \\boxed{12", "12"),  # an unclosed box is not an answer; the last number is
    ],
)
def test_final_answer(text, answer):
    assert final_answer(text) == answer


@pytest.mark.parametrize(
    ("text", "value"),
    [("17", 17), ("$17$", 17), ("1,234", 1234), ("-3.50", Fraction(-7, 2)), ("3/4", Fraction(3, 4))]
    + [("\\frac{3}{4}", Fraction(3, 4)), ("\\dfrac{-1}{2}", Fraction(-1, 2)), ("\\text{12}", 12), ("12.", 12)]
    + [("x", None), ("1/0", None), ("\\sqrt{4}", None)],
)
def test_as_number(text, value):
    assert as_number(text) == value


def test_answers_match_numbers_and_text_without_math_verify():
    assert answers_match("17.0", "17", use_math_verify=False)
    assert answers_match("\\frac{1}{2}", "0.5", use_math_verify=False)
    assert not answers_match("18", "17", use_math_verify=False)
    assert answers_match("Paris.", " paris", use_math_verify=False)
    assert not answers_match("\\sqrt{4}", "2", use_math_verify=False)  # only math_verify knows this one


def test_answers_match_symbolic_with_math_verify():
    pytest.importorskip("math_verify")
    assert answers_match("\\sqrt{4}", "2", use_math_verify=True)
    assert not answers_match("\\sqrt{5}", "2", use_math_verify=True)


def test_completion_text_reads_conversational_completions():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"


def test_accuracy_reward_per_row():
    reward = AccuracyReward()
    completions = [
        "<think>2 + 3 is 6? no, 5. Maybe 9</think>The answer is \\boxed{5}.",
        "<think>It is 5</think>I think 4",  # thoughts are not the answer
        "The answer is 12",
        "whatever",
    ]
    rewards = reward(["p"] * 4, completions, answer=["5", "5", "", "3"], completion_ids=[[1]] * 4)
    assert rewards == [1.0, 0.0, None, 0.0]  # None: a row without an answer is left out of the sum


def test_accuracy_reward_without_answer_column_is_one_line():
    with pytest.raises(UserError, match="needs an 'answer' column"):
        AccuracyReward()(["p"], ["1"], completion_ids=[[1]])
    assert AccuracyReward("solution")(["p"], ["x = 4"], solution=["4"]) == [1.0]


@pytest.mark.parametrize(
    ("completion", "reward"),
    [
        ("<think>\nadd them\n</think>\n\n5", 1.0),
        ("  <think>a</think>b", 1.0),
        ("<think></think>5", 0.0),  # an empty thought
        ("<think>a</think>  ", 0.0),  # no answer after it
        ("5 <think>a</think>b", 0.0),  # text before the block
        ("<think>a</think>b<think>c</think>d", 0.0),  # two blocks
        ("<think>a", 0.0),  # never closed
        ("just 5", 0.0),
    ],
)
def test_format_reward(completion, reward):
    assert FormatReward()(["Q"], [completion]) == [reward]


def test_format_reward_takes_the_template_thought_words_and_an_opened_prompt():
    seed = FormatReward(("<seed:think>", "</seed:think>"))
    assert seed(["Q"], ["<seed:think>x</seed:think>y"]) == [1.0]
    assert seed(["Q"], ["<think>x</think>y"]) == [0.0]
    # a template that opens the thought in the prompt: the completion starts inside it
    assert FormatReward()(["<|im_start|>assistant\n<think>\n"], ["x</think>y"]) == [1.0]
    assert FormatReward()(["<|im_start|>assistant\n"], ["x</think>y"]) == [0.0]


def test_length_reward_counts_tokens_or_characters():
    tokens = LengthReward(target=4, unit="tokens")
    ids = [[1] * 3, [1] * 4, [1] * 6, [1] * 8, [1] * 20]
    assert tokens(["p"] * 5, ["x"] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    chars = LengthReward(target=10, unit="chars")
    assert chars(["p"] * 3, ["a" * 10, "a" * 13, "a" * 40], completion_ids=[[1]] * 3) == [0.0, -0.3, -1.0]
    with pytest.raises(UserError, match="unit must be one of"):
        LengthReward(unit="words")
    with pytest.raises(UserError, match="positive integer"):
        LengthReward(target=0)


WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.mark.parametrize(
    ("completion", "reward"),
    [
        ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', 1.0),
        ('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', 1.0),
        ('<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>', 0.0),  # undeclared
        ('<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>', 0.0),  # required city missing
        ('<tool_call>\n{"name": "get_weather", "arguments": {"city": </tool_call>', 0.0),  # broken JSON
        ("It is sunny in Paris.", 0.0),  # no call
    ],
)
def test_tool_call_reward_qwen_format(completion, reward):
    tools = json.dumps([WEATHER])
    assert ToolCallReward("qwen")(["p"], [completion], tools=[tools]) == [reward]


def test_tool_call_reward_other_format_openai_tools_and_rows_without_tools():
    reward = ToolCallReward("default")
    call = 'Action: get_weather\nAction Input: {"city": "Paris"}'
    wrapped = [{"type": "function", "function": WEATHER}]  # a list, OpenAI-wrapped
    assert reward(["p"] * 3, [call, call, call], tools=[wrapped, "", None]) == [1.0, None, None]
    assert reward(["p"], [call]) == [None]  # no tools column at all
    with pytest.raises(UserError, match="unknown tool format 'qwen9'"):
        ToolCallReward("qwen9")


def test_registry_builds_builtins_with_the_run_settings_and_names_them():
    settings = RewardSettings(thought_words=("<seed:think>", "</seed:think>"), target_length=3, length_unit="chars")
    funcs = build_reward_funcs("accuracy, format,length,tool_call", settings)
    assert [f.__name__ for f in funcs] == ["accuracy", "format", "length", "tool_call"]  # TRL's metric names
    assert funcs[1](["Q"], ["<seed:think>a</seed:think>b"]) == [1.0]
    assert funcs[2](["Q"], ["abcdef"], completion_ids=[[1]]) == [-1.0]
    assert [type(f) for f in pickle.loads(pickle.dumps(funcs))] == [type(f) for f in funcs]


def test_registry_errors_are_one_line():
    with pytest.raises(UserError, match="unknown reward function 'acuracy' .*did you mean 'accuracy'"):
        build_reward_funcs(["acuracy"])
    with pytest.raises(UserError, match="at least one reward function"):
        build_reward_funcs(" , ")
    with pytest.raises(UserError, match="reward_funcs must be names"):
        build_reward_funcs([1])


def test_reward_weights():
    assert parse_reward_weights(None, 2) is None
    assert parse_reward_weights("1, 0.5", 2) == [1.0, 0.5]
    assert parse_reward_weights([2, 1.5], 2) == [2.0, 1.5]
    with pytest.raises(UserError, match="reward_weights: reward_weights has 1 weights for 2 rewards"):
        parse_reward_weights([1], 2)
    with pytest.raises(UserError, match="must be numbers, got 'x'"):
        parse_reward_weights("1, x", 2)
    with pytest.raises(UserError, match="must be numbers"):
        parse_reward_weights([True, 1], 2)
