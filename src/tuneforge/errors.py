"""The one error type a user sees: what went wrong, where, and how to fix it."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user. Printed as one line on stderr; the CLI exits with code 2.

    `where` names the place (a config field, `file:line`, a folder); `fix` says what to do.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text = f"{text} — {self.fix}"
        return text.replace("\n", " ")
