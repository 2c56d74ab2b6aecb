"""One input-space gradient-ascent iteration of VGG16: tinygrad_edu vs PyTorch on the CPU.

The iteration is the filter-visualisation step: forward 128x128 images to ``block5_conv3``, take
the mean activation of one filter per image, and compute its gradient with respect to the input
(weights frozen). The filters are the ones each image excites most, so the gradients are not all
zero. Three contenders run the same weights (random, or ``--weights PATH`` for a Keras/PyTorch
file) in the same process, in alternating rounds: tinygrad_edu on its NumPy kernels
(``numpy``), on the fused kernels of the ``jit`` extra (``jit``, when numba is installed), and
PyTorch; ours frozen (``Module.freeze``) as the visualisation CLI runs them. Printed:

* the instruction set PyTorch's kernels use and the SIMD extensions and BLAS NumPy found;
* the first call of the fused kernels, in a fresh process with an empty on-disk cache (numba
  compiles every kernel) and again with the cache filled (it loads them);
* per batch size, the minimum time per iteration over ``--rounds`` rounds and the spread
  (max/min), per contender, and the ratio of the minima against PyTorch;
* the peak memory of the iteration, measured the same way for every contender in a fresh child
  process per contender: after one warm-up iteration, the growth of the peak resident set
  (``VmHWM``, reset first) over the resident set, during two iterations, with glibc told to
  return freed memory (``MALLOC_MMAP_THRESHOLD_``); and beside it the re-laid-out kernels ours
  keep between iterations (:mod:`tinygrad_edu.kernels.fast.layout_cache`), which the warm-up
  made: memory the process holds on top of the weights, which PyTorch does not;
* with ``--layers``, a per-layer table: forward and backward of each layer as the network runs
  it (convolution with bias and ReLU, then its input gradient through the ReLU's mask; max
  pooling and its scatter), for each contender, same inputs.

``VGG16.forward`` runs each convolution and its ReLU as one fused op, as the visualisation does.
Ends with one dated Markdown table, the one docs/performance.md quotes.

The machine is shared, so absolute times drift; compare ratios from one run. ``--threads N``
sets both BLAS and PyTorch thread counts (before NumPy is imported); ``--clock cpu`` measures
process CPU time instead of wall time, which is steadier on a loaded machine with one thread.

    python benchmarks/vgg_iteration.py [--batch 1 4 16] [--rounds 3] [--weights PATH] [--layers]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import subprocess
import sys
import tempfile
import time

LAYER = "block5_conv3"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--weights", default=None, help="weights file (default: random weights)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS and PyTorch threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--layers", action="store_true", help="print the per-layer table")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--filters", default=None, help=argparse.SUPPRESS)  # the child's filters
    parser.add_argument("--compile-time", action="store_true", help=argparse.SUPPRESS)  # child
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
from torch_vgg import torch_features  # noqa: E402

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.kernels import conv as kernels  # noqa: E402
from tinygrad_edu.kernels import jit, pooling  # noqa: E402
from tinygrad_edu.kernels.fast.layout_cache import LAYOUTS  # noqa: E402
from tinygrad_edu.kernels.jit.preload import preload  # noqa: E402
from tinygrad_edu.models.vgg import vgg16  # noqa: E402


def ours_step(forward, x: np.ndarray, filters: np.ndarray, fused: bool | None = None):
    """Our iteration; ``fused=False`` on the NumPy kernels, ``True`` on the ``jit`` extra's."""

    def step() -> np.ndarray:
        with kernel_path(fused):
            image = tg.Tensor(x, requires_grad=True)
            activation = forward(image)
            loss = activation[np.arange(x.shape[0]), filters].mean(axis=(1, 2)).sum()
            (g,) = tg.grad(loss, [image])
            return g.data

    return step


def kernel_path(fused: bool | None) -> contextlib.AbstractContextManager[None]:
    """The fused kernels on (``True``), off (``False``) or as they are (``None``)."""
    return contextlib.nullcontext() if fused is None else jit.using(fused)


def torch_step(model, x: np.ndarray, filters: np.ndarray):
    import torch

    net = torch_features(model, LAYER)
    chosen = torch.from_numpy(filters)

    def step() -> np.ndarray:
        image = torch.from_numpy(x).requires_grad_(True)
        activation = net(image)
        loss = activation[torch.arange(x.shape[0]), chosen].mean(dim=(1, 2)).sum()
        (g,) = torch.autograd.grad(loss, [image])
        return g.numpy()

    return step


def float64_reference(model, x: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """The iteration in float64 (Winograd F(2x2, 3x3) is exact there up to ~1e-15)."""
    wide = copy.deepcopy(model)
    for parameter in wide.parameters():
        parameter.data = parameter.data.astype(np.float64)
    return ours_step(lambda t: wide(t, until=LAYER), x.astype(np.float64), filters)()


def mib(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.0f} MiB"


def clock(kind: str):
    return time.process_time if kind == "cpu" else time.perf_counter


def peak_growth_mib(
    name: str, filters: np.ndarray, args: argparse.Namespace
) -> tuple[float, float] | None:
    """(peak memory of the iteration, re-laid-out kernels kept) of contender ``name`` (MiB),
    measured in a fresh child process."""
    import subprocess

    command = [sys.executable, __file__, "--memory-of", name, "--batch", str(len(filters))]
    command += ["--filters", ",".join(str(f) for f in filters)]
    command += ["--size", str(args.size)] + (["--weights", args.weights] if args.weights else [])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        peak, layouts = done.stdout.strip().splitlines()[-1].split()
        return float(peak), float(layouts)
    except (ValueError, IndexError):
        return None


def _memory_child(contenders: dict, name: str) -> None:
    """Child process: print the peak resident-set growth over two iterations after a warm-up,
    and the re-laid-out kernels the warm-up made (MiB).

    The fused kernels are loaded first (numba and its compiler are code, not the iteration's
    data; with a filled disk cache, the compiled kernels are loaded, not compiled)."""
    step = contenders[name]
    if name.endswith("jit"):
        load_fused_kernels()
    layouts = LAYOUTS.nbytes
    step()  # the warm-up: kernels laid out, buffers allocated once
    layouts = LAYOUTS.nbytes - layouts
    reset_peak()
    before = status_kib("VmRSS")
    step()
    step()
    print((status_kib("VmHWM") - before) / 1024, layouts / 2**20)


def layer_jobs(w: np.ndarray, b: np.ndarray, side: int, batch: int, rng) -> dict:
    """Forward and backward of one conv + ReLU layer as the network runs it, per contender."""
    k, c = w.shape[:2]
    # ours get NHWC memory seen as NCHW, as inside the network; PyTorch its NCHW
    x = rng.standard_normal((batch, side, side, c)).astype(np.float32).transpose(0, 3, 1, 2)
    g = rng.standard_normal((batch, side, side, k)).astype(np.float32).transpose(0, 3, 1, 2)

    def ours() -> None:
        y = kernels.conv2d(x, w, 1, 1, b, relu=True)
        kernels.conv2d_input_grad(g, w, (side, side), 1, 1, mask=y)

    jobs = both_paths(ours)
    torch = optional_torch()
    if torch is not None:
        xt, gt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, g))
        wt, bt = torch.from_numpy(w), torch.from_numpy(b)

        def theirs() -> None:
            image = xt.detach().requires_grad_(True)
            y = torch.relu(torch.nn.functional.conv2d(image, wt, bt, padding=1))
            torch.autograd.grad(y, [image], gt)

        jobs["torch"] = theirs
    return jobs


def pool_jobs(side: int, channels: int, batch: int, rng) -> dict:
    """Forward and backward of one 2x2 max pooling, per contender."""
    x = rng.standard_normal((batch, side, side, channels)).astype(np.float32)
    x = x.transpose(0, 3, 1, 2)
    g = rng.standard_normal((batch, side // 2, side // 2, channels)).astype(np.float32)
    g = g.transpose(0, 3, 1, 2)

    def ours() -> None:
        _, choice = pooling.max_pool2d(x, 2, 2)
        pooling.max_pool2d_scatter(g, choice, x.shape, 2, 2)

    jobs = both_paths(ours)
    torch = optional_torch()
    if torch is not None:
        xt, gt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, g))

        def theirs() -> None:
            image = xt.detach().requires_grad_(True)
            torch.autograd.grad(torch.nn.functional.max_pool2d(image, 2), [image], gt)

        jobs["torch"] = theirs
    return jobs


def optional_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def both_paths(job) -> dict:
    """``job`` on the NumPy kernels and, with numba installed, on the fused ones."""
    jobs = {"numpy": with_path(job, False)}
    if jit.available():
        jobs["jit"] = with_path(job, True)
    return jobs


def with_path(job, fused: bool):
    def run() -> None:
        with kernel_path(fused):
            job()

    return run


def layer_table(model, batch: int, size: int, rounds: int, now) -> None:
    """Forward + backward of every layer up to ``LAYER``, per contender (ms, min of rounds)."""
    rng = np.random.default_rng(0)
    side, channels, totals = size, 3, {}
    modules = dict(model.named_modules())
    lines = []
    for name in model.layer_names[: model.layer_names.index(LAYER) + 1]:
        if "_pool" in name:
            jobs = pool_jobs(side, channels, batch, rng)
            shape = f"{side:4d} {channels:4d}    "
            side //= 2
        else:
            conv = modules[model.keras_layers[name][0]]
            w, b = conv.weight.data, conv.bias.data
            jobs = layer_jobs(w, b, side, batch, rng)
            shape = f"{side:4d} {w.shape[1]:4d}->{w.shape[0]:<4d}"
            channels = w.shape[0]
        for job in jobs.values():
            job()
        best = {key: min(v) * 1e3 for key, v in timed_rounds(jobs, rounds, now).items()}
        for key, value in best.items():
            totals[key] = totals.get(key, 0.0) + value
        cells = " ".join(f"{best.get(key, float('nan')):8.1f}" for key in ("numpy", "jit", "torch"))
        lines.append(f"  {name:14s} {shape} {cells}")
    print(f"  per layer, forward + backward, batch {batch} (ms, min of {rounds}):")
    print(f"  {'layer':14s} {'H':>4s} {'C->K':>9s} {'numpy':>8s} {'jit':>8s} {'torch':>8s}")
    print("\n".join(lines))
    cells = " ".join(f"{totals.get(key, float('nan')):8.1f}" for key in ("numpy", "jit", "torch"))
    print(f"  {'total':14s} {'':14s} {cells}")


def load_fused_kernels() -> float:
    """Every fused kernel's first call, on the fused path (compiling or loading it); seconds."""
    with kernel_path(True):
        return preload()


def compile_seconds() -> tuple[float, float] | None:
    """The fused kernels' first call in a fresh process: with an empty on-disk cache (numba
    compiles them) and then with that cache filled (it loads them)."""
    if not jit.available():
        return None
    seconds = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            command = [sys.executable, __file__, "--compile-time"]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            seconds.append(float(done.stdout.strip().splitlines()[-1]))
    return seconds[0], seconds[1]


def main(args: argparse.Namespace = ARGS) -> dict:
    if args.compile_time:
        print(load_fused_kernels())
        return {}
    if args.memory_of is None:
        print(instruction_sets())
        compiled = compile_seconds()
        if compiled is not None:
            print(
                f"fused kernels' first call in a fresh process: {compiled[0]:.1f} s compiling "
                f"(empty cache), {compiled[1]:.2f} s loading them from the disk cache"
            )
    model = (vgg16(args.weights, rng=0) if args.weights else vgg16(rng=0)).freeze()
    try:
        import torch

        torch.set_num_threads(args.threads or 2)
    except ImportError:
        torch = None
    now = clock(args.clock)
    results, rows = {}, []
    for batch in args.batch:
        x = (
            np.random.default_rng(0)
            .uniform(-20, 20, (batch, 3, args.size, args.size))
            .astype(np.float32)
        )
        if args.filters is None:
            with tg.no_grad():
                response = model(tg.Tensor(x), until=LAYER).data.mean(axis=(2, 3))
            filters = response.argmax(axis=1)  # each image's most excited filter: a live gradient
        else:  # a memory child: the parent's filters, no forward before the measurement
            filters = np.array([int(f) for f in args.filters.split(",")])
        forward = lambda t: model(t, until=LAYER)  # noqa: E731
        contenders = {"tinygrad_edu numpy": ours_step(forward, x, filters, fused=False)}
        if jit.available():
            contenders["tinygrad_edu jit"] = ours_step(forward, x, filters, fused=True)
        if torch is not None:
            contenders["torch"] = torch_step(model, x, filters)
        if args.memory_of is not None:
            return _memory_child(contenders, args.memory_of)
        outputs = {name: step() for name, step in contenders.items()}  # warm-up, and a check
        memory = {name: peak_growth_mib(name, filters, args) for name in contenders}
        times = timed_rounds(contenders, args.rounds, now)
        best = {name: min(values) for name, values in times.items()}
        exact = float64_reference(model, x, filters)
        for name, seconds in best.items():
            error = np.abs(outputs[name] - exact).max() / np.abs(exact).max()
            ratio = f"**{seconds / best['torch']:.2f}x**" if "torch" in best else "n/a"
            peak, layouts = ("n/a", "n/a") if memory[name] is None else memory[name]
            rows.append(
                [batch, name, f"{seconds * 1e3:.1f} ms", f"{seconds / batch * 1e3:.1f} ms",
                 f"{max(times[name]) / seconds:.2f}", mib(peak), mib(layouts), f"{error:.1e}",
                 ratio if name != "torch" else ""]
            )  # fmt: skip
        if args.layers:
            layer_table(model, batch, args.size, args.rounds, now)
        results[batch] = best
    header = ["batch", "", "iteration", "per image", "spread", "peak memory", "kernel layouts"]
    header += ["error", "vs PyTorch"]
    title = (
        f"VGG16 ascent iteration to {LAYER}, {args.size}x{args.size}, {args.clock} clock, "
        f"min of {args.rounds} rounds (spread = max / min; error = max relative to float64)"
    )
    title += f"; {instruction_sets()}"
    if torch is None:
        title += "; PyTorch not installed (pip install torch==2.13.0): no reference"
    print(markdown_table(title, header, rows))
    return results


if __name__ == "__main__":
    main()
