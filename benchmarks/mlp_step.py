"""One training step of the worked example's 3-5-2-1 network: tinygrad_edu vs hand-written NumPy.

The step is the write-up's: forward on the 10 training colours, E = 1/2 sum (o - y)^2, backward,
full-batch SGD with lr 0.2. Contenders, timed round-robin in the same process:

* ``numpy (hand-derived)`` -- the write-up's step (``handderived.sgd_step``: deltas by formula);
* ``tinygrad_edu eager``   -- ``zero_grad``, forward, ``backward()``, ``SGD.step``;
* ``tinygrad_edu compiled`` -- the same step through ``tinygrad_edu.compile`` (recorded once,
  replayed as straight-line NumPy); checked to end bit for bit where the eager one ends;
* ``torch`` -- the same network in PyTorch (when installed; float64, CPU, one thread).

Prints, per contender, the fastest of ``--repeats`` rounds of the mean time per step (the least
disturbed round: the machine may be shared), the spread (median round / fastest: how noisy the
machine was), and the ratio of the fastest rounds against hand-written NumPy. Run:

    python benchmarks/mlp_step.py [--round-ms 3] [--repeats 60]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from report import markdown_table

import tinygrad_edu as tg
from tinygrad_edu.compile import compile as compile_step
from tinygrad_edu.models.text_color import (
    COLORS,
    LABELS,
    build_mlp,
    error,
    handderived,
    to_augmented,
)

LR = 0.2


def time_per_step(
    steps_by_name: dict[str, Callable[[], None]], round_seconds: float, repeats: int
) -> dict[str, list[float]]:
    """``repeats`` samples of the mean time per step, in seconds, for each contender.

    Every round times every contender in turn (round-robin), so a slow spell of the machine hits
    all of them alike. Each contender runs as many steps per round as fill ``round_seconds``:
    rounds of equal *duration* are equally likely to be interrupted on a shared machine, so the
    fastest round of each is an equally fair estimate of its undisturbed speed.
    """
    counts = {}
    for name, step in steps_by_name.items():
        for _ in range(20):  # warm up (and record, for the compiled step)
            step()
        start = time.perf_counter()
        for _ in range(20):
            step()
        counts[name] = max(1, round(round_seconds / ((time.perf_counter() - start) / 20)))
    samples: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            count = counts[name]
            start = time.perf_counter()
            for _ in range(count):
                step()
            samples[name].append((time.perf_counter() - start) / count)
    return samples


def numpy_step_factory(matrices: list[np.ndarray]) -> Callable[[], None]:
    state = [m.copy() for m in matrices]

    def step() -> None:
        state[:] = handderived.sgd_step(state, COLORS, LABELS, LR)

    return step


def engine_step_factory(model: tg.nn.Module) -> Callable[[], None]:
    optimizer = tg.optim.SGD(model.parameters(), lr=LR)
    x = tg.Tensor(COLORS)

    def step() -> None:
        optimizer.zero_grad()
        error(model(x), LABELS).backward()
        optimizer.step()

    return step


def compiled_step_factory(model: tg.nn.Module) -> Callable[[], None]:
    optimizer = tg.optim.SGD(model.parameters(), lr=LR)
    x, y = tg.Tensor(COLORS), tg.Tensor(LABELS)
    compiled = compile_step(lambda x, y: error(model(x), y), optimizer)
    return lambda: compiled(x, y)


def torch_step_factory(matrices: list[np.ndarray]) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    layers = []
    for m in matrices:
        linear = torch.nn.Linear(m.shape[1] - 1, m.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(m[:, :-1]))
            linear.bias.copy_(torch.from_numpy(m[:, -1]))
        layers += [linear, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = torch.from_numpy(COLORS.copy()), torch.from_numpy(LABELS.copy())

    def step() -> None:
        optimizer.zero_grad()
        (0.5 * ((model(x) - y) ** 2).sum()).backward()
        optimizer.step()

    return step


def compiled_matches_eager(steps: int = 100) -> bool:
    """Train two copies of the network, eagerly and compiled: bit-identical parameters after?"""
    eager_model, compiled_model = build_mlp(rng=0), build_mlp(rng=0)
    eager, compiled = engine_step_factory(eager_model), compiled_step_factory(compiled_model)
    for _ in range(steps):
        eager()
        compiled()
    return all(
        np.array_equal(p.data, q.data)
        for p, q in zip(eager_model.parameters(), compiled_model.parameters())
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-ms", type=float, default=3.0, help="duration of a timing round")
    parser.add_argument("--repeats", type=int, default=60, help="rounds (the fastest counts)")
    args = parser.parse_args(argv)

    matrices = to_augmented(build_mlp(rng=0))
    contenders = {
        "numpy (hand-derived)": numpy_step_factory(matrices),
        "tinygrad_edu eager": engine_step_factory(build_mlp(rng=0)),
        "tinygrad_edu compiled": compiled_step_factory(build_mlp(rng=0)),
    }
    torch_step = torch_step_factory(matrices)
    if torch_step is not None:
        contenders["torch"] = torch_step
    samples = time_per_step(contenders, args.round_ms / 1e3, args.repeats)
    best = {name: min(values) for name, values in samples.items()}
    reference = best["numpy (hand-derived)"]
    title = (
        "One training step of the 3-5-2-1 network on the write-up's 10 colours "
        f"(fastest of {args.repeats} rounds of ~{args.round_ms:g} ms; spread = median / fastest)"
    )
    rows = [
        [name, f"{seconds * 1e6:.1f} µs", f"{float(np.median(samples[name])) / seconds:.2f}",
         f"**{seconds / reference:.2f}x**"]
        for name, seconds in best.items()
    ]  # fmt: skip
    if "torch" not in best:
        rows.append(["torch", "not installed (pip install torch==2.13.0)", "", ""])
    print(markdown_table(title, ["step", "time", "spread", "vs NumPy"], rows))
    print(
        "\ncompiled and eager parameters equal bit for bit after 100 steps: "
        f"{compiled_matches_eager()}"
    )
    return best


if __name__ == "__main__":
    main()
