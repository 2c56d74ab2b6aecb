"""The one table a benchmark prints: Markdown, dated, with the machine it ran on.

docs/performance.md and README quote these tables as printed, so a figure in the docs is always
one benchmark's output on one day, never a figure retyped from a log.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence

import numpy as np


def machine() -> str:
    """The facts a reader needs to compare a table with their own run."""
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    parts = [f"{os.cpu_count()} cores", f"threads {threads}", f"Python {platform.python_version()}"]
    parts.append(f"NumPy {np.__version__}")
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__.split('+')[0]}")
    except ImportError:
        parts.append("no PyTorch")
    return ", ".join(parts)


def markdown_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """``title`` with today's date and time (UTC) and the machine, then a Markdown table."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"**{title}** ({stamp}; {machine()})", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
