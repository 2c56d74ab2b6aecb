"""The command line's own errors."""

from __future__ import annotations


class CommandError(Exception):
    """A problem the user can fix (bad argument, missing file): printed without a traceback."""


class ScriptError(Exception):
    """The user's own script failed: ``report`` is its traceback, cut to the user's frames."""

    def __init__(self, report: str, status: int = 1) -> None:
        super().__init__(report)
        self.report, self.status = report, status
