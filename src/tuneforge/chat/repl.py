"""`tuneforge chat`: an interactive terminal chat, or answers to --query / piped lines. A reasoning model's thinking
is shown apart from its answer: on a "Thinking: " line (dim on a terminal), then "Assistant: " and the answer.
Pictures (--image, or '/image PATH' typed in the chat) go with the next message, as OpenAI image_url parts."""

from __future__ import annotations

import sys

from tuneforge.chat.vision_inputs import image_part
from tuneforge.errors import UserError

HELP = (
    "Type a message and press Enter. 'clear' forgets the history, '/think on' or '/think off' switches a reasoning "
    "model's thinking, '/image PATH' attaches a picture to your next message, 'exit' quits."
)
DIM, PLAIN = "\033[2m", "\033[0m"


class _Reply:
    """Writes one reply's parts as they come: the thinking (once it starts) apart, then the answer."""

    def __init__(self, out):
        self.out, self.shown = out, None  # shown: the kind of the part written last
        self.tty = bool(getattr(out, "isatty", lambda: False)())

    def write(self, kind: str, text: str) -> None:
        if kind != self.shown:
            if kind == "reasoning":
                self.out.write(f"{DIM}Thinking: " if self.tty else "Thinking: ")
            else:
                self.out.write((f"{PLAIN}\n" if self.tty else "\n") if self.shown else "")
                self.out.write("Assistant: ")
            self.shown = kind
        self.out.write(text)
        self.out.flush()

    def end(self) -> None:
        if self.shown != "content":
            self.write("content", "")  # a reply without an answer still gets its "Assistant: " line
        self.out.write("\n")
        self.out.flush()


def _answer(
    engine, history: list[dict], query: str, out, enable_thinking: bool | None = None, images: list[dict] = ()
) -> None:
    """`images`: image_url parts that go before the text of this message (LLaMA-Factory puts pictures first)."""
    history.append({"role": "user", "content": [*images, {"type": "text", "text": query}] if images else query})
    reply, parts = _Reply(out), {"reasoning": [], "content": []}
    for kind, text in engine.stream_parts(history, enable_thinking=enable_thinking):
        parts[kind].append(text)
        reply.write(kind, text)
    reply.end()
    message = {"role": "assistant", "content": "".join(parts["content"])}
    if parts["reasoning"]:
        message["reasoning_content"] = "".join(parts["reasoning"])  # the template keeps or drops it, as in training
    history.append(message)


def _think_command(query: str) -> bool:
    """'/think on' → True, '/think off' → False."""
    word = query.split(maxsplit=1)[1].strip().lower() if " " in query else ""
    if word not in ("on", "off"):
        raise ValueError(word)
    return word == "on"


def run_chat(
    engine,
    queries: list[str] | None = None,
    stream_in=None,
    out=None,
    enable_thinking: bool | None = None,
    images: list[str] | None = None,
) -> None:
    """Each --query is answered on its own; otherwise lines are one conversation, as typed. `enable_thinking`:
    a reasoning model thinks or not (None: as the config's enable_thinking says); '/think on|off' switches it.
    `images` (file paths): the pictures of the first query, or of the first message typed."""
    stream_in = stream_in or sys.stdin
    out = out or sys.stdout
    pending = [image_part(path) for path in images or []]
    if queries:
        for query in queries:
            out.write(f"User: {query}\n")
            _answer(engine, [], query, out, enable_thinking, pending)
            pending = []
        return
    interactive = stream_in.isatty()
    if interactive:
        out.write(HELP + "\n")
    history: list[dict] = []
    while True:
        if interactive:
            try:
                line = input("\nUser: ")
            except EOFError:
                break
        else:
            line = stream_in.readline()
            if not line:
                break
        query = line.strip()
        if not query:
            continue
        if query == "exit":
            break
        if query == "clear":
            history, pending = [], []
            out.write("History cleared.\n")
            continue
        if query == "/image" or query.startswith("/image "):
            path = query[len("/image") :].strip()
            try:
                if not path:
                    raise UserError("no picture given", where="/image", fix="type '/image PATH'")
                pending.append(image_part(path, "/image"))
                out.write(f"Image attached to your next message: {path}\n")
            except UserError as exc:
                out.write(f"{exc.one_line()}\n")
            continue
        if query == "/think" or query.startswith("/think "):
            try:
                enable_thinking = _think_command(query)
                out.write(f"Thinking {'on' if enable_thinking else 'off'}.\n")
            except ValueError:
                out.write("Use '/think on' or '/think off'.\n")
            continue
        if not interactive:
            out.write(f"User: {query}\n")
        try:
            _answer(engine, history, query, out, enable_thinking, pending)
        except UserError as exc:  # e.g. a picture for a text-only model: say why, forget the message, go on
            history.pop()
            out.write(f"{exc.one_line()}\n")
        pending = []
