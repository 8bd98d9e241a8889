"""A user's reward function from a Python file: called as TRL calls it, every failure one line naming file and
function (and the row, when a call fails)."""

from __future__ import annotations

import textwrap

import pytest

from tuneforge.config.grpo_checks import is_file_spec
from tuneforge.errors import UserError
from tuneforge.train.rewards import RewardSettings, build_reward_funcs
from tuneforge.train.rewards.user_file import load_user_reward

TRL_EXTRAS = {"completion_ids": [[5, 6], [7]], "trainer_state": "state", "log_extra": print, "log_metric": print}


def write(folder, text, name="my_rewards.py"):
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_user_function_gets_prompts_completions_and_the_row_columns(tmp_path):
    write(
        tmp_path,
        """
        SEEN = {}

        def score(prompts, completions, answer, **kwargs):
            SEEN.update(prompts=prompts, completions=completions, answer=answer, keys=sorted(kwargs))
            return [float(c.strip() == a) for c, a in zip(completions, answer)]
        """,
    )
    (func,) = build_reward_funcs("my_rewards.py:score", RewardSettings(base_dir=tmp_path))
    assert func.__name__ == "score"  # TRL logs rewards/score/mean
    rewards = func(prompts=["1+1?", "2+2?"], completions=["2", "5"], answer=["2", "4"], **TRL_EXTRAS)
    assert rewards == [1.0, 0.0]
    seen = func.func.__globals__["SEEN"]
    assert seen["prompts"] == ["1+1?", "2+2?"] and seen["completions"] == ["2", "5"] and seen["answer"] == ["2", "4"]
    assert seen["keys"] == ["completion_ids", "log_extra", "log_metric", "trainer_state"]


def test_a_function_without_kwargs_gets_only_what_it_names(tmp_path):
    path = write(tmp_path, "def score(completions, completion_ids):\n    return [len(i) for i in completion_ids]\n")
    func = load_user_reward(f"{path}:score")  # an absolute path
    assert func(prompts=["a", "b"], completions=["x", "y"], answer=["1", "2"], **TRL_EXTRAS) == [2.0, 1.0]


def test_none_means_not_applicable_and_ints_become_floats(tmp_path):
    write(tmp_path, "def score(completions, **kw):\n    return [None, 1]\n")
    func = load_user_reward("my_rewards.py:score", tmp_path)
    assert func(prompts=["a", "b"], completions=["x", "y"], **TRL_EXTRAS) == [None, 1.0]


def test_is_file_spec():
    assert is_file_spec("my_rewards.py:score") and is_file_spec("C:/x/r.py:f")
    assert not is_file_spec("accuracy") and not is_file_spec("r.txt:f")


@pytest.mark.parametrize(
    ("text", "spec", "expected"),
    [
        (None, "missing.py:score", "reward file not found: .*missing.py"),
        ("def score(:\n    pass\n", "my_rewards.py:score", r"my_rewards.py:1: syntax error in reward file"),
        ("import no_such_module_xyz\n", "my_rewards.py:score", r"my_rewards.py:score: importing .*ModuleNotFoundError"),
        (
            "def helper(c):\n    return c\n",
            "my_rewards.py:score",
            r"my_rewards.py:score: .* defines no 'score'.*helper",
        ),
        ("score = 3\n", "my_rewards.py:score", r"my_rewards.py:score: 'score' in .* is a int, not a function"),
        ("", "my_rewards.py:", "is not 'file.py:function'"),
    ],
)
def test_loading_errors_name_the_file_and_function(tmp_path, text, spec, expected):
    if text is not None:
        write(tmp_path, text)
    with pytest.raises(UserError, match=expected) as exc:
        build_reward_funcs(spec, RewardSettings(base_dir=tmp_path))
    one_line(exc)


def test_a_raising_function_names_the_row_it_fails_on(tmp_path):
    write(tmp_path, "def score(completions, answer, **kw):\n    return [1.0 / int(a) for a in answer]\n")
    func = load_user_reward("my_rewards.py:score", tmp_path)
    with pytest.raises(UserError) as exc:
        func(prompts=["p"] * 3, completions=["a", "b", "c"], answer=["1", "0", "2"], **TRL_EXTRAS)
    assert one_line(exc) == (
        f"{tmp_path}/my_rewards.py:score: reward function raised ZeroDivisionError: float division by zero "
        "(row 1 of the batch, completion 'b') — fix the function (it is called with lists: one entry per completion)"
    )
    # rows that carry their source ("file:line") are named by it
    with pytest.raises(UserError, match=r"\(row 1 \(math\.json:7\)\)"):
        func(prompts=["p", "p"], completions=["a", "b"], answer=["1", "0"], source=["math.json:3", "math.json:7"])


def test_a_batch_only_failure_says_so(tmp_path):
    write(tmp_path, "def score(completions, **kw):\n    assert len(completions) == 1\n    return [0.0]\n")
    func = load_user_reward("my_rewards.py:score", tmp_path)
    with pytest.raises(UserError, match="AssertionError.*a batch of 2 completions; each one alone works"):
        func(prompts=["p", "p"], completions=["a", "b"])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return [1.0]", "returned 1 rewards for 2 completions"),
        ("return 1.0", "returned a float, not a list"),
        ("return [1.0, 'good']", r"returned 'good' \(str\) for row 1 of the batch, completion 'b'"),
        ("return [float('nan'), 1.0]", r"returned nan \(float\) for row 0"),
        ("return [True, 1.0]", r"returned True \(bool\) for row 0"),
    ],
)
def test_wrong_results_are_one_line(tmp_path, body, expected):
    write(tmp_path, f"def score(completions, **kw):\n    {body}\n")
    func = load_user_reward("my_rewards.py:score", tmp_path)
    with pytest.raises(UserError, match=f"my_rewards.py:score: reward function {expected}") as exc:
        func(prompts=["p", "p"], completions=["a", "b"], **TRL_EXTRAS)
    one_line(exc)


def test_two_files_with_the_same_name_stay_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "def score(completions, **kw):\n    return [1.0] * len(completions)\n", "r.py")
    write(tmp_path / "b", "def score(completions, **kw):\n    return [2.0] * len(completions)\n", "r.py")
    funcs = build_reward_funcs(["a/r.py:score", "b/r.py:score"], RewardSettings(base_dir=tmp_path))
    assert [f(prompts=["p"], completions=["c"]) for f in funcs] == [[1.0], [2.0]]
