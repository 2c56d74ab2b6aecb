"""One input-space gradient-ascent iteration of VGG16: tinygrad_edu vs PyTorch on the CPU.

The iteration is the filter-visualisation step: forward 128x128 images to ``block5_conv3``, take
the mean activation of one filter per image, and compute its gradient with respect to the input
(weights frozen). The filters are the ones each image excites most, so the gradients are not all
zero. Both frameworks run the same weights (random, or ``--weights PATH`` for a Keras/PyTorch
file) in the same process, in alternating rounds; ours frozen (``Module.freeze``) as the
visualisation CLI runs them. Printed per batch size:

* the minimum time per iteration over ``--rounds`` rounds and the spread (max/min), per
  contender, and the ratio of the minima against PyTorch;
* the peak memory of the iteration, measured the same way for both sides in a fresh child process
  per contender: growth of the peak resident set (``VmHWM``) over the resident set before the
  first of two iterations (so caches the iteration keeps, such as re-laid-out kernels, count),
  with glibc told to return freed memory (``MALLOC_MMAP_THRESHOLD_``);
* with ``--layers``, a per-layer table: forward and input gradient of each convolution, ours vs
  PyTorch (its ``conv2d`` and ``conv2d_input``), same inputs.

``VGG16.forward`` runs each convolution and its ReLU as one fused op, as the visualisation does.
Ends with one dated Markdown table, the one docs/performance.md quotes.

The machine is shared, so absolute times drift; compare ratios from one run. ``--threads N``
sets both BLAS and PyTorch thread counts (before NumPy is imported); ``--clock cpu`` measures
process CPU time instead of wall time, which is steadier on a loaded machine with one thread.

    python benchmarks/vgg_iteration.py [--batch 1 4 16] [--rounds 3] [--weights PATH] [--layers]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
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
    return parser.parse_args(argv)


ARGS = parse(None if __name__ == "__main__" else [])
if ARGS.threads is not None and "numpy" not in sys.modules:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402
from report import markdown_table  # noqa: E402
from torch_vgg import torch_features  # noqa: E402

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.kernels import conv as kernels  # noqa: E402
from tinygrad_edu.models.vgg import vgg16  # noqa: E402


def ours_step(forward, x: np.ndarray, filters: np.ndarray):
    def step() -> np.ndarray:
        image = tg.Tensor(x, requires_grad=True)
        activation = forward(image)
        loss = activation[np.arange(x.shape[0]), filters].mean(axis=(1, 2)).sum()
        (g,) = tg.grad(loss, [image])
        return g.data

    return step


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


def clock(kind: str):
    return time.process_time if kind == "cpu" else time.perf_counter


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def peak_growth_mib(name: str, batch: int, args: argparse.Namespace) -> float | None:
    """Peak memory of contender ``name`` (MiB), measured in a fresh child process."""
    import subprocess

    command = [sys.executable, __file__, "--memory-of", name, "--batch", str(batch)]
    command += ["--size", str(args.size)] + (["--weights", args.weights] if args.weights else [])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _memory_child(contenders: dict, name: str) -> None:
    """Child process: print the peak resident-set growth (MiB) over two iterations."""
    step = contenders[name]
    before = _status_kib("VmRSS")
    step()
    step()
    print((_status_kib("VmHWM") - before) / 1024)


def timed_rounds(contenders: dict, rounds: int, now) -> dict[str, list[float]]:
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


def layer_table(model, batch: int, size: int, rounds: int, now) -> None:
    """Forward and input gradient of every conv layer up to ``LAYER``: ours vs PyTorch."""
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"  per layer, batch {batch} (min of {rounds}, ms):")
    print(f"  {'layer':14s} {'H':>4s} {'C->K':>9s} {'fwd':>7s} {'torch':>7s} ", end="")
    print(f"{'in-grad':>8s} {'torch':>7s}  formulation")
    side = size
    modules = dict(model.named_modules())
    for name in model.layer_names[: model.layer_names.index(LAYER) + 1]:
        if "_pool" in name:
            side //= 2
            continue
        w = modules[model.keras_layers[name][0]].weight.data
        k, c = w.shape[:2]
        # ours get NHWC memory seen as NCHW, as inside the network; PyTorch its NCHW
        x = rng.standard_normal((batch, side, side, c)).astype(np.float32).transpose(0, 3, 1, 2)
        g = rng.standard_normal((batch, side, side, k)).astype(np.float32).transpose(0, 3, 1, 2)
        jobs = {
            "fwd": lambda x=x, w=w: kernels.conv2d(x, w, 1, 1),
            "grad": lambda g=g, w=w, s=side: kernels.conv2d_input_grad(g, w, (s, s), 1, 1),
        }
        if torch is not None:
            xt, gt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, g))
            wt = torch.from_numpy(w)
            jobs["t_fwd"] = lambda xt=xt, wt=wt: torch.nn.functional.conv2d(xt, wt, padding=1)
            jobs["t_grad"] = lambda xt=xt, wt=wt, gt=gt: torch.nn.grad.conv2d_input(
                xt.shape, wt, gt, padding=1
            )
        for job in jobs.values():
            job()
        best = {key: min(v) * 1e3 for key, v in timed_rounds(jobs, rounds, now).items()}
        way = kernels.forward_path(w.shape, x.shape, 1, 1)
        grad_way = kernels.input_grad_path(w.shape, g.shape, (side, side), 1, 1)
        print(f"  {name:14s} {side:4d} {c:4d}->{k:<4d} {best['fwd']:7.1f} ", end="")
        print(f"{best.get('t_fwd', float('nan')):7.1f} {best['grad']:8.1f} ", end="")
        print(f"{best.get('t_grad', float('nan')):7.1f}  {way} / {grad_way}")


def main(args: argparse.Namespace = ARGS) -> dict:
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
        with tg.no_grad():
            response = model(tg.Tensor(x), until=LAYER).data.mean(axis=(2, 3))
        filters = response.argmax(axis=1)  # each image's most excited filter: a live gradient
        contenders = {"tinygrad_edu": ours_step(lambda t: model(t, until=LAYER), x, filters)}
        if torch is not None:
            contenders["torch"] = torch_step(model, x, filters)
        if args.memory_of is not None:
            return _memory_child(contenders, args.memory_of)
        outputs = {name: step() for name, step in contenders.items()}  # warm-up, and a check
        memory = {name: peak_growth_mib(name, batch, args) for name in contenders}
        times = timed_rounds(contenders, args.rounds, now)
        best = {name: min(values) for name, values in times.items()}
        exact = float64_reference(model, x, filters)
        for name, seconds in best.items():
            error = np.abs(outputs[name] - exact).max() / np.abs(exact).max()
            ratio = f"**{seconds / best['torch']:.2f}x**" if "torch" in best else "n/a"
            peak = "n/a" if memory[name] is None else f"{memory[name]:.0f} MiB"
            rows.append(
                [batch, name, f"{seconds * 1e3:.1f} ms", f"{seconds / batch * 1e3:.1f} ms",
                 f"{max(times[name]) / seconds:.2f}", peak, f"{error:.1e}",
                 ratio if name != "torch" else ""]
            )  # fmt: skip
        if args.layers:
            layer_table(model, batch, args.size, args.rounds, now)
        results[batch] = best
    header = ["batch", "", "iteration", "per image", "spread", "peak memory", "error", "vs PyTorch"]
    title = (
        f"VGG16 ascent iteration to {LAYER}, {args.size}x{args.size}, {args.clock} clock, "
        f"min of {args.rounds} rounds (spread = max / min; error = max relative to float64)"
    )
    if torch is None:
        title += "; PyTorch not installed (pip install torch==2.13.0): no reference"
    print(markdown_table(title, header, rows))
    return results


if __name__ == "__main__":
    main()
