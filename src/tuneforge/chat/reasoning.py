"""A reasoning model's reply split into its thinking and its answer, whole or as the tokens stream in.

The thought is found by the template's thought words, stripped ("<think>", "</think>"), as LLaMA-Factory's Web UI
does: a reply that begins with the opening word thinks until the closing word, the rest is the answer; a reply
without the opening word is all answer; an unfinished thought is all reasoning. When the prompt itself ends with the
opening word (DeepSeek-R1 and Qwen3-style generation prompts), the reply starts inside the thought. Whitespace around
the thought and before the answer is dropped, so "<think>\\nx\\n</think>\\n\\ny" is ("x", "y")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tuneforge.chat.stops import held_back
from tuneforge.data.template_engine import DEFAULT_THOUGHT_WORDS, REASONING_KINDS

REASONING, CONTENT = "reasoning", "content"


def thought_tags(template) -> tuple[str, str]:
    """The template's thought words, stripped: what marks a thought in generated text."""
    opening, closing = getattr(template, "thought_words", None) or DEFAULT_THOUGHT_WORDS
    return opening.strip(), closing.strip()


def is_reasoning(template) -> bool:
    """Whether the template is a reasoning one (LF's template_class), so its replies are split."""
    return getattr(template, "kind", "plain") in REASONING_KINDS


def prompt_opens_thought(prompt_text: str, tags: tuple[str, str]) -> bool:
    """Whether a generation prompt ends with the opening thought word: the reply then starts inside the thought."""
    return bool(tags[0]) and prompt_text.rstrip().endswith(tags[0])


def prompt_closes_thought(prompt_text: str, tags: tuple[str, str]) -> bool:
    """Whether a generation prompt ends with the closing thought word (thinking was switched off in the prompt)."""
    return bool(tags[1]) and prompt_text.rstrip().endswith(tags[1])


class ReasoningSplitter:
    """Feed the reply piece by piece; get back [(REASONING | CONTENT, text)] as soon as the text is known to belong
    to one of them. Text that may be the start of a thought word, or whitespace that may end the thought, waits."""

    def __init__(self, tags: tuple[str, str] = ("<think>", "</think>"), in_thought: bool = False):
        self.opening, self.closing = tags
        self.state = "thought" if in_thought else "start"  # start → thought → answer, or start → answer
        self.thought = in_thought  # a thought was seen (reasoning is not None)
        self.lead = True  # whitespace at the start of the thought / of the answer after it is dropped
        self.buffer = ""

    def feed(self, piece: str) -> list[tuple[str, str]]:
        self.buffer += piece
        out: list[tuple[str, str]] = []
        if self.state == "start":
            text = self.buffer.lstrip()
            if len(text) < len(self.opening) and self.opening.startswith(text):
                return out  # may still become the opening word
            if text.startswith(self.opening):
                self.state, self.thought, self.buffer = "thought", True, text[len(self.opening) :]
            else:  # no thought: the reply is the answer, as written
                self.state, self.lead = "answer", False
        if self.state == "thought":
            if self.lead:
                self.buffer = self.buffer.lstrip()
                self.lead = not self.buffer
            end = self.buffer.find(self.closing)
            if end < 0:
                cut = len(self.buffer) - held_back(self.buffer, [self.closing])
                cut = len(self.buffer[:cut].rstrip())  # whitespace waits: it may precede the closing word
                self._emit(out, REASONING, self.buffer[:cut])
                self.buffer = self.buffer[cut:]
                return out
            self._emit(out, REASONING, self.buffer[:end].rstrip())
            self.state, self.lead, self.buffer = "answer", True, self.buffer[end + len(self.closing) :]
        if self.state == "answer":
            if self.lead:
                self.buffer = self.buffer.lstrip()
                self.lead = not self.buffer
            self._emit(out, CONTENT, self.buffer)
            self.buffer = ""
        return out

    def flush(self) -> list[tuple[str, str]]:
        """The text still held back, at the end of the reply."""
        out: list[tuple[str, str]] = []
        text, self.buffer = self.buffer, ""
        if self.state == "thought":
            self._emit(out, REASONING, text.rstrip())  # an unfinished thought: all reasoning so far
        elif self.state == "start" or not self.lead:
            self._emit(out, CONTENT, text)
        return out

    @staticmethod
    def _emit(out: list, kind: str, text: str) -> None:
        if text:
            out.append((kind, text))


def split_pieces(pieces: Iterable[str], splitter: ReasoningSplitter | None) -> Iterator[tuple[str, str]]:
    """(REASONING | CONTENT, text) for streamed pieces; all content when there is no splitter."""
    for piece in pieces:
        if splitter is None:
            if piece:
                yield CONTENT, piece
            continue
        yield from splitter.feed(piece)
    if splitter is not None:
        yield from splitter.flush()


def split_reasoning(
    text: str, tags: tuple[str, str] = ("<think>", "</think>"), in_thought: bool = False
) -> tuple[str | None, str]:
    """(reasoning, answer) of a whole reply; reasoning is None when the reply has no thought."""
    splitter = ReasoningSplitter(tags, in_thought)
    parts = [*splitter.feed(text), *splitter.flush()]
    reasoning = "".join(t for kind, t in parts if kind == REASONING)
    answer = "".join(t for kind, t in parts if kind == CONTENT)
    return (reasoning if splitter.thought else None), answer
