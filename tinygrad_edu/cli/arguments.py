"""Argument types and the parser class shared by the sub-commands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def positive_float(text: str) -> float:
    """A finite number > 0 (refuses ``nan``, ``inf``, zero and negatives)."""
    value = _float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text!r}")
    return value


def int_between(low: int, high: int, reason: str = "") -> Callable[[str], int]:
    """An argument type: an integer from ``low`` to ``high``; ``reason`` explains the limit.

    Every count or size that decides how much memory or time a command takes has an upper
    limit, checked before any work: ``--size 100000`` is a usage error, not a ``MemoryError``.
    """

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            because = f" ({reason})" if reason else ""
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}{because}, got {text!r}")
        return value

    return parse


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
