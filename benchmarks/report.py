"""What every benchmark shares: the one table it prints (Markdown, dated, with the machine it
ran on, its instruction sets), its alternating timed rounds, and the process memory it reads.

docs/performance.md and README quote these tables as printed, so a figure in the docs is always
one benchmark's output on one day, never a figure retyped from a log.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence

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


def instruction_sets() -> str:
    """PyTorch's CPU capability, and what ``numpy.show_runtime()`` reports: the SIMD
    extensions NumPy dispatches to (beyond its baseline) and the BLAS libraries loaded, with the
    kernels each chose."""
    parts = []
    try:
        import torch

        parts.append(f"PyTorch kernels: {torch.backends.cpu.get_cpu_capability()}")
    except ImportError:
        pass
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    parts.append(f"NumPy SIMD: {' '.join(found) or 'baseline only'}")
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{lib['internal_api']} {lib['version']} ({lib.get('architecture', '?')} kernels)"
                for lib in threadpool_info() if lib.get("user_api") == "blas"]  # fmt: skip
    except ImportError:
        blas = []
    # NumPy's OpenBLAS, and any other BLAS the process loaded (PyTorch may bring its own)
    parts.append(f"BLAS loaded: {', '.join(blas) or 'unknown (threadpoolctl not installed)'}")
    return "; ".join(parts)


def timed_rounds(
    contenders: dict[str, Callable[[], object]], rounds: int, now
) -> dict[str, list[float]]:
    """Alternating rounds; in each, every contender runs once untimed, then once timed.

    The untimed run absorbs the previous contender's wind-down: idle worker threads (OpenMP's,
    BLAS's) spin for a while after their last task and would steal the next one's cores."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, step in contenders.items():
            step()
            start = now()
            step()
            times[name].append(now() - start)
    return times


def status_kib(field: str) -> int:
    """A field of this process's /proc status in KiB (VmRSS, VmHWM: the resident set, its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def reset_peak() -> None:
    """Start this process's peak resident set (VmHWM) again from the current one, so a peak
    measured afterwards is not one an earlier phase (loading weights, importing) reached."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
