"""Backpropagation through time: a training step of nn.LSTM, nn.GRU and nn.RNN vs PyTorch.

The step: the gradients cleared, forward over a sequence of T steps (batch 32, input 64, hidden
128 by default, time-major), the loss ``mean(output ** 2)`` over every step's output, backward
through all T steps (nothing truncated): the LSTM at each ``--steps``, the GRU, the Elman RNN and
a float64 LSTM at ``--also-at``. Both frameworks hold the same weights (PyTorch's
``state_dict`` loaded into ours) and read the same input, which needs no gradient. Contenders,
timed in alternating rounds in one process:

* ``tinygrad_edu`` -- the step as a user writes it: the engine records ~16 nodes per LSTM step
  and the sweep walks them back;
* ``compiled`` -- the same step through ``tinygrad_edu.compile``: its NumPy kernels replayed with
  no Tensor, node or sweep, so ``tinygrad_edu`` minus ``compiled`` is the engine's bookkeeping and
  ``compiled`` is what NumPy needs for the arithmetic;
* ``torch`` -- PyTorch's own layer on the CPU (fused gate kernels), when installed.

Printed per configuration and contender: the time per time step (the fastest round's step time
divided by T), the spread (median round / fastest: how noisy the shared machine was), the ratio
against PyTorch, the peak memory and the memory per time step, the nodes per time step of our
graph (counted back from the loss), and how far our gradients are from PyTorch's (largest
difference over all parameters, relative to the largest gradient element).

**Memory**, measured the same way for ours and PyTorch's: each (configuration, contender) runs
in a fresh child process that builds the layer and the input, resets the peak resident set (``5``
written to ``/proc/self/clear_refs``), notes the resident set, runs one step and reports the
growth of the peak over that baseline (``VmHWM - VmRSS``), with glibc told to hand large freed
blocks back to the system (``MALLOC_MMAP_THRESHOLD_``), for NumPy's arrays and PyTorch's alike.
That peak includes what a first step allocates once (PyTorch's thread pools and oneDNN's
primitives, the parameters' gradients), so the memory *per time step* is the difference from the
same child run on a single time step: ``(peak(T) - peak(1)) / (T - 1)``. It is chiefly the
activations saved for the backward sweep, one set per time step, so it should not depend on T;
the line below the table checks that for the LSTM rows. (A baseline taken after warm-up steps
would be smaller and wrong: the heap keeps the freed blocks of those steps, which the measured
step then reuses unseen.) Linux only; elsewhere the memory columns read n/a.

The table's title gives the instruction set PyTorch's kernels use
(``torch.backends.cpu.get_cpu_capability()``) and NumPy's BLAS (its build and, with
threadpoolctl installed, the kernels it chose for this CPU). ``--threads N`` sets both BLAS and
PyTorch thread counts (before NumPy is imported); ``--clock cpu`` measures process CPU time,
steadier on a loaded machine with one thread.

    python benchmarks/bptt.py [--steps 25 100 200] [--also-at 100] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 100, 200], help="LSTM T")
    parser.add_argument(
        "--also-at", type=int, default=100, help="T of the GRU, RNN and float64 LSTM rows (0: none)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and PyTorch threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--memory-of", nargs=4, default=None, help=argparse.SUPPRESS)  # child
    return parser.parse_args(argv)


ARGS = parse(None if __name__ == "__main__" else [])
if ARGS.threads is not None and "numpy" not in sys.modules:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402
from report import (  # noqa: E402
    instruction_sets,
    markdown_table,
    reset_peak,
    status_kib,
    timed_rounds,
)

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.compile import compile as compile_step  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


@dataclass(frozen=True)
class Config:
    """One row group of the table: which layer, how many time steps, which float type."""

    kind: str  # "LSTM", "GRU" or "RNN"
    steps: int
    dtype: str  # "float32" or "float64"

    def input(self, args: argparse.Namespace) -> np.ndarray:
        rng = np.random.default_rng(0)
        shape = (self.steps, args.batch, args.input)
        return rng.standard_normal(shape).astype(self.dtype)


def loss_of(output):
    """The loss on every step's output, the same expression in both frameworks."""
    return (output * output).mean()


def layers(config: Config, args: argparse.Namespace):
    """Our layer and, when PyTorch is installed, its layer with the same weights."""
    ours = getattr(tg.nn, config.kind)(args.input, args.hidden, rng=0, dtype=np.dtype(config.dtype))
    if torch is None:
        return ours, None
    torch.manual_seed(0)
    theirs = getattr(torch.nn, config.kind)(args.input, args.hidden)
    theirs = theirs.double() if config.dtype == "float64" else theirs
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def steps_for(config: Config, args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """The training step of each contender (PyTorch's only when installed)."""
    ours, theirs = layers(config, args)
    x = config.input(args)
    x_ours = tg.Tensor(x)

    def eager() -> None:
        ours.zero_grad()
        loss_of(ours(x_ours)[0]).backward()

    compiled_loss = compile_step(lambda x: loss_of(ours(x)[0]))

    def compiled() -> None:
        ours.zero_grad()
        compiled_loss(x_ours)

    steps = {"tinygrad_edu": eager, "compiled": compiled}
    if theirs is not None:
        x_theirs = torch.from_numpy(x)

        def reference() -> None:
            theirs.zero_grad()
            loss_of(theirs(x_theirs)[0]).backward()

        steps["torch"] = reference
    return steps


def nodes_per_step(config: Config, args: argparse.Namespace) -> float:
    """Nodes of our graph from the loss back to the parameters, per time step."""
    ours, _ = layers(config, args)
    loss = loss_of(ours(tg.Tensor(config.input(args)))[0])
    seen, stack = set(), [loss]
    while stack:
        tensor = stack.pop()
        if tensor._node is not None and id(tensor) not in seen:
            seen.add(id(tensor))
            stack.extend(tensor._node.inputs)
    return len(seen) / config.steps


def gradient_error(config: Config, args: argparse.Namespace) -> float | None:
    """Largest difference between our and PyTorch's parameter gradients, relative to the
    largest gradient element (``None`` without PyTorch)."""
    ours, theirs = layers(config, args)
    if theirs is None:
        return None
    x = config.input(args)
    loss_of(ours(tg.Tensor(x))[0]).backward()
    loss_of(theirs(torch.from_numpy(x))[0]).backward()
    ours_grads = dict(ours.named_parameters())
    differences, scale = [], []
    for name, p in theirs.named_parameters():
        reference = p.grad.numpy()
        differences.append(np.abs(ours_grads[name].grad.data - reference).max())
        scale.append(np.abs(reference).max())
    return float(max(differences) / max(scale))


# ----------------------------------------------------------------------------- memory
def _memory_child(name: str, config: Config, args: argparse.Namespace) -> None:
    """Child process: print the peak resident-set growth (KiB) of the first step."""
    step = steps_for(config, args)[name]
    reset_peak()
    before = status_kib("VmRSS")
    step()
    print(status_kib("VmHWM") - before)


_PEAKS: dict[tuple[str, Config], float | None] = {}


def peak_growth_kib(name: str, config: Config, args: argparse.Namespace) -> float | None:
    """Peak memory of contender ``name`` on ``config`` (KiB), measured once in a fresh process."""
    if (name, config) not in _PEAKS:
        _PEAKS[name, config] = _measure_peak(name, config, args)
    return _PEAKS[name, config]


def _measure_peak(name: str, config: Config, args: argparse.Namespace) -> float | None:
    command = [sys.executable, __file__, "--memory-of", name, config.kind, str(config.steps)]
    command += [config.dtype, "--batch", str(args.batch), "--input", str(args.input)]
    command += ["--hidden", str(args.hidden)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------- time
def configs(args: argparse.Namespace) -> list[Config]:
    rows = [Config("LSTM", steps, "float32") for steps in args.steps]
    if args.also_at:
        rows += [Config(kind, args.also_at, "float32") for kind in ("GRU", "RNN")]
        rows.append(Config("LSTM", args.also_at, "float64"))
    return rows


def per_step_kib(name: str, config: Config, args: argparse.Namespace) -> float | None:
    """Memory per time step: the peak's growth from one time step to ``config.steps``."""
    one = Config(config.kind, 1, config.dtype)
    peak, base = peak_growth_kib(name, config, args), peak_growth_kib(name, one, args)
    if peak is None or base is None or config.steps == 1:
        return None
    return (peak - base) / (config.steps - 1)


def linear_growth(args: argparse.Namespace) -> str:
    """The memory per time step of the float32 LSTM at every T: constant if growth is linear."""
    parts = []
    for name in ("tinygrad_edu", "torch"):
        figures = [per_step_kib(name, Config("LSTM", t, "float32"), args) for t in args.steps]
        if None not in figures:
            parts.append(f"{name} " + ", ".join(f"{f:.0f}" for f in figures) + " KiB")
    steps = ", ".join(str(t) for t in args.steps)
    return f"Memory per time step of the float32 LSTM at T = {steps}: " + "; ".join(parts)


def main(args: argparse.Namespace = ARGS) -> dict:
    if args.memory_of is not None:
        name, kind, steps, dtype = args.memory_of
        return _memory_child(name, Config(kind, int(steps), dtype), args)
    if torch is not None:
        torch.set_num_threads(args.threads or 2)
    now = time.process_time if args.clock == "cpu" else time.perf_counter
    rows, results = [], {}
    for config in configs(args):
        steps = steps_for(config, args)
        for step in steps.values():  # warm-up; the compiled step records its first two calls
            step()
            step()
        times = timed_rounds(steps, args.rounds, now)
        best = {name: min(values) / config.steps for name, values in times.items()}
        nodes, error = nodes_per_step(config, args), gradient_error(config, args)
        for name, seconds in best.items():
            measured = name != "compiled"  # the memory of ours and PyTorch's, not of the replay
            peak = peak_growth_kib(name, config, args) if measured else None
            per_step = per_step_kib(name, config, args) if measured else None
            ours = name == "tinygrad_edu"
            ratio = f"**{seconds / best['torch']:.2f}x**" if "torch" in best else "n/a"
            rows.append(
                [config.kind, config.steps, config.dtype, name, f"{seconds * 1e3:.3f} ms",
                 f"{np.median(times[name]) / config.steps / seconds:.2f}",
                 ratio if name != "torch" else "",
                 "" if not measured else "n/a" if peak is None else f"{peak / 1024:.1f} MiB",
                 "" if not measured else "n/a" if per_step is None else f"{per_step:.0f} KiB",
                 f"{nodes:.1f}" if ours else "", f"{error:.1e}" if ours and error else ""]
            )  # fmt: skip
        results[config] = {"seconds_per_step": best, "nodes_per_step": nodes}
    header = ["layer", "T", "dtype", "", "per step", "spread", "vs PyTorch", "peak memory",
              "per step", "nodes per step", "grad error"]  # fmt: skip
    title = (
        f"BPTT training step (forward over T steps, loss on every output, backward), batch "
        f"{args.batch}, input {args.input}, hidden {args.hidden}, {args.clock} clock, fastest of "
        f"{args.rounds} rounds (spread = median / fastest); {instruction_sets()}"
    )
    if torch is None:
        title += "; PyTorch not installed (pip install torch==2.13.0): no reference"
    print(markdown_table(title, header, rows))
    print("\n" + linear_growth(args))
    return results


if __name__ == "__main__":
    main()
