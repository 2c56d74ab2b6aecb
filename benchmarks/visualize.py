"""The write-up's filter-visualisation workload: tinygrad_edu vs a PyTorch one-at-a-time loop.

The workload per layer: 200 filters (or all, when fewer) x 20 ascent steps on 128x128 images, with
the write-up's early stop for filters whose loss falls to 0 or below. tinygrad_edu runs its batched
ascent (``visualize_filters``); the reference is the write-up's loop written in PyTorch -- one
filter at a time, the same start noise, the same update and stopping rule. Prints both times and
the ratio; ``--ours document`` times tinygrad_edu on the write-up's five layers instead, to compare
with PyTorch's time for the single ``--layer``.

``--document`` runs the issue's end-to-end comparison instead: the write-up's visualisation of 16
``block3_conv3`` filters, 20 steps, through the ``tinygrad-edu visualize`` command line in a
fresh process (start-up, weight loading, ascent, PNG and summary included; with the ``jit``
extra installed, once on its fused kernels -- loading them from numba's disk cache, or compiling
them on a first run -- and once with ``TINYGRAD_EDU_JIT=0`` on the NumPy kernels), against PyTorch
running the write-up's one-filter-at-a-time loop on the same filters (loop only: PyTorch's start-up
and weight loading are not counted). ``--repeat`` runs it several times and prints min and
spread; ``--clock cpu`` times CPU instead of wall time (steadier on a loaded machine; set
``OPENBLAS_NUM_THREADS=1`` to give both sides one thread). ``--document-paths`` times that
workload's ascent in one process, alternating the NumPy kernels and the jit extra's fused ones.

    python benchmarks/visualize.py --weights PATH [--layer block5_conv3] [--ours document]
    python benchmarks/visualize.py --weights PATH --document [--repeat 3]
    python benchmarks/visualize.py --weights PATH --document-paths [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import instruction_sets, markdown_table
from torch_vgg import torch_features

from tinygrad_edu.cli.visualize import resolve_layers
from tinygrad_edu.kernels import jit
from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis import visualize_filters
from tinygrad_edu.vis.filters import filter_indices
from tinygrad_edu.vis.images import grey_noise


def torch_loop(
    model, layer: str, filters: list[int], steps: int, size: int, seed: int, cpu: bool = False
) -> tuple[float, int]:
    """The write-up's algorithm in PyTorch; returns (seconds, filters kept)."""
    import torch

    net = torch_features(model, layer)
    if "OPENBLAS_NUM_THREADS" in os.environ:  # --threads: the same count on both sides
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    now = time.process_time if cpu else time.perf_counter
    kept = 0
    start = now()
    for f in filters:
        start_image = grey_noise(model.input_space, f, size, seed)[None].astype(np.float32)
        x = torch.from_numpy(start_image)
        loss_value = 0.0
        for _ in range(steps):
            x.requires_grad_(True)
            loss = net(x)[0, f].mean()
            (g,) = torch.autograd.grad(loss, [x])
            loss_value = float(loss.detach())
            with torch.no_grad():
                x = x + g / (g.pow(2).mean().sqrt() + 1e-7)  # the script's K.epsilon()
            if loss_value <= 0:
                break
        kept += loss_value > 0
    return now() - start, kept


def cli_seconds(
    weights: str,
    layer: str,
    filters: int,
    steps: int,
    out: Path,
    cpu: bool = False,
    fused: bool = True,
) -> float:
    """Wall (or CPU) time of ``tinygrad-edu visualize`` in a fresh process, this checkout's
    package; ``fused=False`` sets ``TINYGRAD_EDU_JIT=0`` (the NumPy kernels)."""
    root = Path(__file__).resolve().parents[1]
    launcher = "import sys; from tinygrad_edu.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", launcher]
    command += ["visualize", "--weights", weights, "--layers", layer, "--filters", str(filters)]
    command += ["--steps", str(steps), "--out", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(root), TINYGRAD_EDU_JIT="1" if fused else "0")
    start, children = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, env=env, cwd=root, capture_output=True)
    return _children_cpu() - children if cpu else time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def document_workload(weights: str | None, repeat: int, cpu: bool = False) -> None:
    """The issue's third workload: 16 block3_conv3 filters, 20 steps, CLI end to end vs PyTorch."""
    if weights is None:
        raise SystemExit("--document needs --weights (the write-up's workload uses real weights)")
    layer, filters, steps = "block3_conv3", 16, 20
    model = vgg16(weights).freeze()
    chosen = filter_indices(model, layer, filters)
    paths = {"NumPy kernels": False} | ({"jit kernels": True} if jit.available() else {})
    ours: dict[str, list[float]] = {name: [] for name in paths}
    theirs = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeat):  # interleaved: the machine's load falls on every contender
            for name, fused in paths.items():
                ours[name].append(
                    cli_seconds(weights, layer, filters, steps, Path(out), cpu, fused)
                )
            with contextlib.suppress(ImportError):
                theirs.append(torch_loop(model, layer, chosen, steps, 128, seed=0, cpu=cpu)[0])
    clock = "CPU" if cpu else "wall"
    title = f"The write-up's visualisation: {filters} {layer} filters, {steps} steps, 128x128"
    rows = []
    for name, seconds in ours.items():
        ratio = f"**{min(seconds) / min(theirs):.2f}x**" if theirs else "n/a"
        rows.append([f"`tinygrad-edu visualize`, {name} (fresh process, end to end)",
                     _summary(seconds), ratio])  # fmt: skip
    if theirs:
        rows.append(["PyTorch, one filter at a time (loop only)", _summary(theirs), ""])
    else:
        rows.append(["PyTorch", "not installed (pip install torch==2.13.0): no reference", ""])
    header = ["", "time", "vs PyTorch (min / min)"]
    print(markdown_table(f"{title}, {clock} clock; {instruction_sets()}", header, rows))


def document_paths(weights: str | None, repeat: int) -> None:
    """The document workload's ascent (``visualize_filters``: 16 ``block3_conv3`` filters, 20
    steps, one batch of 16) in this process on the NumPy kernels and on the jit extra's fused
    kernels, alternating: the kernels' share of the CLI time, without its start-up."""
    if weights is None:
        raise SystemExit("--document-paths needs --weights")
    if not jit.available():
        raise SystemExit("--document-paths needs the jit extra: pip install 'tinygrad_edu[jit]'")
    layer, filters, steps = "block3_conv3", 16, 20
    model = vgg16(weights).freeze()
    times: dict[str, list[float]] = {"NumPy kernels": [], "jit kernels": []}
    for _ in range(repeat):
        for name in times:
            with jit.using(name == "jit kernels"):
                start = time.perf_counter()
                visualize_filters(model, layer, filters, steps, size=128, batch=filters)
                times[name].append(time.perf_counter() - start)
    numpy_best = min(times["NumPy kernels"])
    rows = [[name, _summary(seconds), f"**{min(seconds) / numpy_best:.2f}x**"]
            for name, seconds in times.items()]  # fmt: skip
    title = f"The write-up's ascent in one process: {filters} {layer} filters, {steps} steps"
    title += f", wall clock; {instruction_sets()}"
    print(markdown_table(title, ["", "time", "vs NumPy kernels"], rows))


def _summary(seconds: list[float]) -> str:
    spread = max(seconds) / min(seconds)
    return f"{min(seconds):.1f} s (min of {len(seconds)}, spread {spread:.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", default=None, help="VGG16 weights file (default: random weights)"
    )
    parser.add_argument("--layer", default="block5_conv3", help="layer of the PyTorch reference")
    parser.add_argument(
        "--ours", nargs="+", default=None, help="layers for tinygrad_edu (default: --layer)"
    )
    parser.add_argument("--filters", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--document", action="store_true", help="the issue's CLI workload")
    parser.add_argument(
        "--document-paths", action="store_true", help="its ascent in-process, both kernel paths"
    )
    parser.add_argument("--repeat", type=int, default=3, help="--document: runs (default 3)")
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="--document: what to time"
    )
    args = parser.parse_args(argv)
    if args.document:
        return document_workload(args.weights, args.repeat, args.clock == "cpu")
    if args.document_paths:
        return document_paths(args.weights, args.repeat)

    model = (vgg16(args.weights) if args.weights else vgg16(rng=0)).freeze()
    ours_layers = resolve_layers(args.ours or [args.layer])
    rows, total = [], 0.0
    for layer in ours_layers:
        start = time.perf_counter()
        kept = visualize_filters(
            model, layer, args.filters, args.steps, size=args.size, batch=args.batch
        )
        seconds = time.perf_counter() - start
        total += seconds
        scanned = len(filter_indices(model, layer, args.filters))
        rows.append([f"tinygrad_edu, {layer}", f"{seconds:.1f} s", f"{len(kept)} / {scanned}"])
    if len(ours_layers) > 1:
        rows.append([f"**tinygrad_edu, all {len(ours_layers)} layers**", f"**{total:.1f} s**", ""])
    try:
        filters = filter_indices(model, args.layer, args.filters)
        seconds, kept = torch_loop(model, args.layer, filters, args.steps, args.size, seed=0)
        torch_row = f"PyTorch, one filter at a time, {args.layer}"
        rows.append([torch_row, f"{seconds:.1f} s", f"{kept} / {len(filters)}"])
    except ImportError:
        rows.append(["PyTorch", "not installed (pip install torch==2.13.0): no reference", ""])
    title = (
        f"Filter visualisation, {args.filters} filters (or all) x {args.steps} steps per layer, "
        f"{args.size}x{args.size}, batches of {args.batch}, wall clock"
    )
    print(markdown_table(title, ["", "time", "filters kept"], rows))


if __name__ == "__main__":
    main()
