"""A reasoning model's reply split into thinking and answer: whole, and streamed with the thought words cut across
tokens at every position; the prompt that already opens the thought; per-request thinking without touching the
shared template; the CLI chat showing the thinking apart and '/think on|off'."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from tuneforge.chat.engine import HuggingFaceEngine, to_conversation
from tuneforge.chat.reasoning import (
    CONTENT,
    REASONING,
    ReasoningSplitter,
    is_reasoning,
    prompt_closes_thought,
    prompt_opens_thought,
    split_pieces,
    split_reasoning,
    thought_tags,
)
from tuneforge.chat.repl import run_chat

REPLY = "<think>\nThe user greets me.\nI greet back.\n</think>\n\nHello, friend!"
CASES = [
    (REPLY, False, ("The user greets me.\nI greet back.", "Hello, friend!")),
    ("Hello, friend!", False, (None, "Hello, friend!")),  # no thought: all answer, as written
    ("  Hi <think> there", False, (None, "  Hi <think> there")),  # the opening word only counts at the start
    ("<think>\nstill thinking\n", False, ("still thinking", "")),  # unfinished: all reasoning so far
    ("<think>\nalmost\n</thi", False, ("almost\n</thi", "")),  # a cut closing word is reasoning text
    ("<think>\n\n</think>\n\nAt once.", False, ("", "At once.")),  # the empty thought
    ("<thi", False, (None, "<thi")),  # a reply that stops inside the opening word
    ("plan\n</think>\n\nDone.", True, ("plan", "Done.")),  # the prompt ended with <think>
    ("plan", True, ("plan", "")),
    ("<think>\na < b </think>x", False, ("a < b", "x")),
]


@pytest.mark.parametrize(("text", "in_thought", "expected"), CASES)
def test_split_reasoning_whole(text, in_thought, expected):
    assert split_reasoning(text, in_thought=in_thought) == expected


def _streamed(text: str, cuts: list[int], in_thought: bool = False, tags=("<think>", "</think>")):
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    splitter = ReasoningSplitter(tags, in_thought)
    parts = list(split_pieces(pieces, splitter))
    reasoning = "".join(t for k, t in parts if k == REASONING)
    return (reasoning if splitter.thought else None), "".join(t for k, t in parts if k == CONTENT), parts


@pytest.mark.parametrize(("text", "in_thought", "expected"), CASES)
def test_every_two_piece_cut_streams_the_same_split(text, in_thought, expected):
    for cut in range(len(text) + 1):  # the thought words cut at every position, whitespace too
        reasoning, answer, _ = _streamed(text, [cut], in_thought)
        assert (reasoning, answer) == expected, cut


def test_one_character_tokens_route_each_piece_as_soon_as_it_is_known():
    reasoning, answer, parts = _streamed(REPLY, list(range(1, len(REPLY))))
    assert (reasoning, answer) == CASES[0][2]
    kinds = [k for k, _ in parts]
    assert kinds == sorted(kinds, key=lambda k: k == CONTENT)  # all reasoning first, then all content
    assert all(t for _, t in parts)  # no empty pieces
    # "<think>\n" + "The user" streams before the thought is over: nothing waits longer than it must
    splitter = ReasoningSplitter()
    assert splitter.feed("<thi") == [] and splitter.feed("nk>\nThe user") == [(REASONING, "The user")]
    assert splitter.feed(" greets\n</th") == [(REASONING, " greets")]  # "\n</th" may be the closing word
    assert splitter.feed("ink>\n\nHel") == [(CONTENT, "Hel")]
    assert splitter.feed("\n</think> again") == [(CONTENT, "\n</think> again")]  # the answer is the answer
    assert splitter.flush() == []


def test_a_tag_split_in_the_middle_of_multi_character_tokens():
    tokens = ["<", "th", "ink", ">\nI", " think", ".\n<", "/", "think", ">", "\n", "\nAn", "swer"]
    reasoning, answer, parts = _streamed("".join(tokens), [sum(map(len, tokens[:i])) for i in range(1, len(tokens))])
    assert (reasoning, answer) == ("I think.", "Answer")
    assert parts[0] == (REASONING, "I") and parts[-1] == (CONTENT, "swer")


def test_other_families_thought_words_are_matched_stripped():
    @dataclass
    class Gemma4Like:
        thought_words = ("<|channel>thought\n", "<channel|>")
        kind = "reasoning"

    tags = thought_tags(Gemma4Like())
    assert tags == ("<|channel>thought", "<channel|>") and is_reasoning(Gemma4Like())
    text = "<|channel>thought\nlet me see<channel|>It is 4."
    assert split_reasoning(text, tags) == ("let me see", "It is 4.")
    assert _streamed(text, list(range(1, len(text))), tags=tags)[:2] == ("let me see", "It is 4.")


def test_the_prompt_tells_whether_the_reply_starts_inside_a_thought():
    tags = ("<think>", "</think>")
    assert prompt_opens_thought("<|im_start|>assistant\n<think>\n", tags)
    assert not prompt_opens_thought("<|im_start|>assistant\n<think>\n\n</think>\n\n", tags)
    assert prompt_closes_thought("<|im_start|>assistant\n<think>\n\n</think>\n\n", tags)
    assert not prompt_closes_thought("<|im_start|>assistant\n", tags)


def test_templates_without_a_reasoning_kind_are_not_split():
    @dataclass
    class Plain:
        name: str = "qwen"

    assert not is_reasoning(Plain()) and thought_tags(Plain()) == ("<think>", "</think>")
    assert list(split_pieces(["<think>", "x"], None)) == [(CONTENT, "<think>"), (CONTENT, "x")]


@dataclass
class SharedTemplate:
    enable_thinking: bool | None = True
    kind: str = "reasoning"


def test_per_request_thinking_uses_a_copy_and_leaves_the_shared_template_alone():
    engine = object.__new__(HuggingFaceEngine)  # only the template is needed here
    engine.template = SharedTemplate()
    off = engine.template_for_request(False)
    assert off.enable_thinking is False and off is not engine.template
    assert engine.template.enable_thinking is True  # the next request still thinks
    assert engine.template_for_request(None) is engine.template is engine.template_for_request(True)


def test_reasoning_content_of_an_assistant_message_becomes_its_reasoning():
    conv = to_conversation(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!", "reasoning_content": "be kind"},
            {"role": "user", "content": "again"},
        ]
    )
    assert (conv.messages[1].content, conv.messages[1].reasoning) == ("Hello!", "be kind")


class PartsEngine:
    """Writes a reasoning reply in 4-character pieces, split as the real engine splits; records enable_thinking."""

    def __init__(self, reply: str = REPLY):
        self.reply, self.seen = reply, []

    def stream_parts(self, messages, system=None, tools=None, *, enable_thinking=None, **gen):
        self.seen.append((list(messages), enable_thinking))
        reply = self.reply if enable_thinking is not False else "Hello, friend!"
        yield from split_pieces([reply[i : i + 4] for i in range(0, len(reply), 4)], ReasoningSplitter())


def test_cli_chat_shows_the_thinking_apart_and_think_switches_it():
    engine, out = PartsEngine(), io.StringIO()
    run_chat(engine, stream_in=io.StringIO("hi\n/think off\nagain\n/think maybe\n/think on\nlast\n"), out=out)
    assert out.getvalue() == (
        "User: hi\n"
        "Thinking: The user greets me.\nI greet back.\n"
        "Assistant: Hello, friend!\n"
        "Thinking off.\n"
        "User: again\n"
        "Assistant: Hello, friend!\n"
        "Use '/think on' or '/think off'.\n"
        "Thinking on.\n"
        "User: last\n"
        "Thinking: The user greets me.\nI greet back.\n"
        "Assistant: Hello, friend!\n"
    )
    assert [thinking for _, thinking in engine.seen] == [None, False, True]
    # the history keeps the answer as content and the thinking apart, for the template to keep or drop
    assert engine.seen[1][0][1] == {
        "role": "assistant",
        "content": "Hello, friend!",
        "reasoning_content": "The user greets me.\nI greet back.",
    }
    assert engine.seen[2][0][3] == {"role": "assistant", "content": "Hello, friend!"}


def test_cli_chat_dims_the_thinking_on_a_terminal_and_queries_take_the_flag():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    engine, out = PartsEngine(), Tty()
    run_chat(engine, queries=["hi"], out=out, enable_thinking=True)
    assert out.getvalue() == (
        "User: hi\n\033[2mThinking: The user greets me.\nI greet back.\033[0m\nAssistant: Hello, friend!\n"
    )
    assert engine.seen[0][1] is True
