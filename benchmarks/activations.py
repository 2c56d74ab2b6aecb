"""The transcendental activations, per element: tinygrad_edu vs PyTorch on 10^6 elements.

``erf``, ``gelu`` (exact and tanh forms) and ``sigmoid`` -- with ``relu`` as the floor: what
an op costs when its arithmetic is free -- each forward alone (no graph recorded) and forward
plus backward (``grad`` of the output against a gradient of ones), in float32 and float64, on
one array of normal values of standard deviation 2 (GELU's and the gates' usual range).
Contenders, timed round-robin in the same process:

* ``tinygrad_edu`` -- ``x.erf()``, ``F.gelu(x)``, ``F.gelu(x, approximate="tanh")``,
  ``x.sigmoid()``, ``x.relu()``;
* ``torch`` -- the same functions in PyTorch (when installed; CPU, one thread).

Prints, per op and dtype, the fastest of ``--repeats`` rounds in nanoseconds per element (the
least disturbed round: the machine may be shared), our time over PyTorch's, and the spread of
our rounds (median / fastest: how noisy the machine was); then the instruction sets NumPy and
PyTorch dispatch to, which set these speeds. Run:

    python benchmarks/activations.py [--size 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from report import instruction_sets, markdown_table

import tinygrad_edu as tg
from tinygrad_edu.nn import functional as F

OURS: dict[str, Callable[[tg.Tensor], tg.Tensor]] = {
    "erf": lambda x: x.erf(),
    "gelu": F.gelu,
    "gelu (tanh)": lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(),
}


def torch_functions() -> dict[str, Callable] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return {
        "erf": torch.erf,
        "gelu": torch.nn.functional.gelu,
        "gelu (tanh)": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
    }


def our_passes(fn: Callable, x: np.ndarray) -> tuple[Callable[[], None], Callable[[], None]]:
    """The forward alone, and forward plus backward, of ``fn`` on ``x``."""
    leaf, ones = tg.Tensor(x, requires_grad=True), tg.Tensor(np.ones_like(x))

    def forward() -> None:
        with tg.no_grad():
            fn(leaf)

    def forward_backward() -> None:
        tg.grad(fn(leaf), [leaf], grad_outputs=ones)

    return forward, forward_backward


def torch_passes(fn: Callable, x: np.ndarray) -> tuple[Callable[[], None], Callable[[], None]]:
    import torch

    leaf = torch.tensor(x, requires_grad=True)
    ones = torch.ones_like(leaf)

    def forward() -> None:
        with torch.no_grad():
            fn(leaf)

    def forward_backward() -> None:
        torch.autograd.grad(fn(leaf), [leaf], ones)

    return forward, forward_backward


def time_rounds(calls: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """``repeats`` timings of one call of each contender, round-robin (a slow spell of the
    machine hits all of them alike)."""
    for call in calls.values():
        call()  # warm up
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> dict[tuple[str, str, str, str], float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="elements per array")
    parser.add_argument("--repeats", type=int, default=7, help="rounds (the fastest counts)")
    args = parser.parse_args(argv)

    theirs = torch_functions()
    calls: dict[tuple[str, str, str, str], Callable[[], None]] = {}
    for dtype in (np.float32, np.float64):
        x = (np.random.default_rng(0).standard_normal(args.size) * 2).astype(dtype)
        for op, fn in OURS.items():
            contenders = {"tinygrad_edu": our_passes(fn, x)}
            if theirs is not None:
                contenders["torch"] = torch_passes(theirs[op], x)
            for who, (forward, forward_backward) in contenders.items():
                calls[(op, dtype.__name__, who, "fwd")] = forward
                calls[(op, dtype.__name__, who, "fwd+bwd")] = forward_backward
    samples = time_rounds(calls, args.repeats)
    best = {key: min(values) / args.size for key, values in samples.items()}

    def cell(op: str, dtype: str, who: str, passes: str) -> str:
        seconds = best.get((op, dtype, who, passes))
        return "" if seconds is None else f"{seconds * 1e9:.1f}"

    def ratio(op: str, dtype: str, passes: str) -> str:
        reference = best.get((op, dtype, "torch", passes))
        if reference is None:
            return ""
        return f"**{best[(op, dtype, 'tinygrad_edu', passes)] / reference:.1f}x**"

    rows = []
    for dtype in ("float32", "float64"):
        for op in OURS:
            ours = samples[(op, dtype, "tinygrad_edu", "fwd+bwd")]
            rows.append(
                [op, dtype]
                + [cell(op, dtype, who, "fwd") for who in ("tinygrad_edu", "torch")]
                + [ratio(op, dtype, "fwd")]
                + [cell(op, dtype, who, "fwd+bwd") for who in ("tinygrad_edu", "torch")]
                + [ratio(op, dtype, "fwd+bwd"), f"{float(np.median(ours)) / min(ours):.2f}"]
            )
    title = (
        f"Activations on {args.size:,} elements, ns per element "
        f"(fastest of {args.repeats} rounds; spread = median / fastest of ours, fwd+bwd)"
    )
    header = ["op", "dtype", "ours fwd", "torch fwd", "vs torch", "ours fwd+bwd",
              "torch fwd+bwd", "vs torch", "spread"]  # fmt: skip
    print(markdown_table(title, header, rows))
    if theirs is None:
        print("\ntorch not installed (pip install torch==2.13.0): no reference column")
    print(f"\n{instruction_sets()}")
    return best


if __name__ == "__main__":
    main()
