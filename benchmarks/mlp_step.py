"""One training step of the worked example's 3-5-2-1 network: tinygrad_edu vs hand-written NumPy.

The step is the document's: forward on the 10 training colours, E = 1/2 sum (o - y)^2, backward,
full-batch SGD with lr 0.2. Contenders, timed round-robin in the same process:

* ``numpy (hand-derived)`` -- the document's step (``handderived.sgd_step``: deltas by formula);
* ``tinygrad_edu eager``   -- ``zero_grad``, forward, ``backward()``, ``SGD.step``;
* ``tinygrad_edu compiled`` -- the same step through ``tinygrad_edu.compile`` (recorded once,
  replayed as straight-line NumPy); checked to end bit for bit where the eager one ends;
* ``torch`` -- the same network in PyTorch (when installed; float64, CPU, one thread).

Prints, per contender, the minimum over ``--repeats`` rounds of the mean time per step (the
least disturbed round: the machine may be shared), the spread (slowest round / fastest), and the
ratio of minima against hand-written NumPy. Run:

    python benchmarks/mlp_step.py [--steps 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

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
    steps_by_name: dict[str, Callable[[], None]], steps: int, repeats: int
) -> dict[str, list[float]]:
    """``repeats`` samples of the mean time per step, in seconds, for each contender.

    Every round times every contender in turn (round-robin), so a slow spell of the machine hits
    all of them alike and the ratios stay fair.
    """
    for step in steps_by_name.values():
        for _ in range(min(steps, 50)):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            samples[name].append((time.perf_counter() - start) / steps)
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timing run")
    parser.add_argument("--repeats", type=int, default=7, help="timing runs (minimum is reported)")
    args = parser.parse_args(argv)

    matrices = to_augmented(build_mlp(rng=0))
    eager_model, compiled_model = build_mlp(rng=0), build_mlp(rng=0)
    contenders = {
        "numpy (hand-derived)": numpy_step_factory(matrices),
        "tinygrad_edu eager": engine_step_factory(eager_model),
        "tinygrad_edu compiled": compiled_step_factory(compiled_model),
    }
    torch_step = torch_step_factory(matrices)
    if torch_step is not None:
        contenders["torch"] = torch_step
    samples = time_per_step(contenders, args.steps, args.repeats)
    best = {name: min(values) for name, values in samples.items()}
    reference = best["numpy (hand-derived)"]
    print(
        f"one training step of the 3-5-2-1 network on 10 colours: minimum of {args.repeats} "
        f"rounds of {args.steps} steps; spread = slowest round / fastest"
    )
    for name, seconds in best.items():
        spread = max(samples[name]) / seconds
        print(
            f"  {name:22s} {seconds * 1e6:8.1f} us   spread {spread:4.2f}   "
            f"{seconds / reference:5.2f}x numpy"
        )
    if "torch" not in best:
        print("  torch                  not installed (pip install torch==2.13.0)")
    same = all(
        np.array_equal(p.data, q.data)
        for p, q in zip(eager_model.parameters(), compiled_model.parameters())
    )
    print(f"compiled and eager parameters equal bit for bit after the same steps: {same}")
    eager, compiled = best["tinygrad_edu eager"], best["tinygrad_edu compiled"]
    print(f"compiled step speed-up over eager: {eager / compiled:.2f}x")
    return best


if __name__ == "__main__":
    main()
