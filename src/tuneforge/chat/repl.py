"""`tuneforge chat`: an interactive terminal chat, or answers to --query / piped lines."""

from __future__ import annotations

import sys

HELP = "Type a message and press Enter. 'clear' forgets the history, 'exit' quits."


def _answer(engine, history: list[dict], query: str, out) -> None:
    history.append({"role": "user", "content": query})
    out.write("Assistant: ")
    out.flush()
    pieces = []
    for piece in engine.stream(history):
        pieces.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    history.append({"role": "assistant", "content": "".join(pieces)})


def run_chat(engine, queries: list[str] | None = None, stream_in=None, out=None) -> None:
    """Each --query is answered on its own; otherwise lines are one conversation, as typed."""
    stream_in = stream_in or sys.stdin
    out = out or sys.stdout
    if queries:
        for query in queries:
            out.write(f"User: {query}\n")
            _answer(engine, [], query, out)
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
            history = []
            out.write("History cleared.\n")
            continue
        if not interactive:
            out.write(f"User: {query}\n")
        _answer(engine, history, query, out)
