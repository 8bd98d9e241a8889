"""Stop strings on streamed text: pass text on as soon as it cannot be the start of a stop string."""

from __future__ import annotations


def held_back(text: str, words: list[str]) -> int:
    """Length of the longest end of `text` that is the beginning of one of `words` (it must wait for more)."""
    best = 0
    for word in words:
        for k in range(min(len(word) - 1, len(text)), best, -1):
            if text.endswith(word[:k]):
                best = k
                break
    return best


class StopFilter:
    """Feed pieces in, get the text before the first stop string out; `hit` says a stop string ended the text."""

    def __init__(self, stops: list[str] | None):
        self.stops = [s for s in stops or [] if s]
        self.buffer = ""
        self.hit = False

    def feed(self, piece: str) -> str:
        if self.hit:
            return ""
        self.buffer += piece
        found = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.buffer, self.hit = self.buffer[: min(found)], "", True
            return out
        keep = held_back(self.buffer, self.stops)
        out, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep :]
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out
