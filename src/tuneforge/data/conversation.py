"""The one internal shape every dataset format is normalised to."""

from __future__ import annotations

from dataclasses import dataclass, field

# Roles follow LLaMA-Factory's sharegpt tags: a `function` turn is the assistant calling a tool
# (its content is the JSON of the call), an `observation` turn is the tool's answer.
USER, ASSISTANT, FUNCTION, OBSERVATION = "user", "assistant", "function", "observation"
PROMPT_ROLES = (USER, OBSERVATION)
RESPONSE_ROLES = (ASSISTANT, FUNCTION)


@dataclass
class Message:
    """One turn. `reasoning` is a reply's thinking given apart from its content (OpenAI-format
    `reasoning_content`); the template writes it inside its thought words. Thinking may also sit in `content`
    itself as a `<think>...</think>` block, as in LLaMA-Factory's sharegpt / alpaca data."""

    role: str
    content: str
    reasoning: str | None = None


@dataclass
class Conversation:
    """A system prompt, tool definitions (a JSON string), turns, and the images / videos the turns show.

    `messages` alternates prompt (user/observation) and response (assistant/function) turns and
    starts with a prompt. For pairwise data the last response is the chosen one and `rejected`
    holds the other; for KTO data `kto_tag` says whether the last response is desirable.
    """

    messages: list[Message]
    system: str = ""
    tools: str = ""
    rejected: Message | None = None
    kto_tag: bool | None = None
    source: str = ""  # "file:line" of the row, for error messages
    extra: dict = field(default_factory=dict)
    # The row's media, in the order of the `<image>` / `<video>` placeholders in the turns' text: resolved file
    # paths or `data:` URLs, never decoded pixels (data/media.py loads them when a batch is encoded). A video is a
    # file path or a list of frame image paths (LLaMA-Factory's pre-sampled frames).
    images: list[str] = field(default_factory=list)
    videos: list[str | list[str]] = field(default_factory=list)

    def pairs(self) -> list[tuple[Message, Message]]:
        """(prompt, response) pairs; a trailing prompt without a response is left out."""
        msgs = self.messages
        return [(msgs[i], msgs[i + 1]) for i in range(0, len(msgs) - 1, 2)]
