"""The microscope's throughput: in-process, on 2 local Dask workers, and projected to N machines.

Renders the same subset -- the first ``--filters-per-layer`` filters of every one of VGG16's 13
convolutions, classic mode, the document's 128x128 and 20 steps -- once in this process and
once on a 2-worker Dask ``LocalCluster`` (``tinygrad-edu microscope --workers 2``), into fresh
folders, and checks that the two runs wrote byte-identical PNGs. It also times Dask's one-off
costs (starting the cluster, scattering the network to every worker) and its per-task overhead.

**Why a subset, and why per layer.** A trained layer's filter indices carry no order (training
treats every permutation of a layer's channels alike), so its first filters are a fair sample
of it. But layers differ twice over: a step costs more the deeper the layer (the image runs
through every layer below it), and filters die -- their activation falls to zero and the ascent
stops -- at rates that differ from layer to layer. So the script measures, for each layer, the
seconds of one batched step and how many steps each sampled filter lived, then replays the
ascent's batching (16 slots, a finished filter's slot refilled at once) over the whole layer
with those lifetimes, to project the whole atlas (4,224 filters). On a cluster a task refills
slots only among its own filters, so the projection cuts each layer into the microscope's tasks
for the given number of workers and schedules them on the workers in order, as Dask does.

The model, for N machines running k workers each (W = N k):

    T(N) = start + W x scatter_per_copy + makespan(task seconds + per-task overhead, W workers)

    python benchmarks/microscope.py --weights PATH [--filters-per-layer 32]
    python benchmarks/microscope.py --quick      # a smoke run: random weights, tiny images

``--paths`` measures something else: the same subset rendered in this process on the NumPy
kernels and on the ``jit`` extra's fused kernels (one after the other, fresh folders), their
filters per second, and how far apart the two sets of PNGs are: the paths' convolutions differ
in float32 roundoff (Winograd F(2x2, 3x3) against F(4x4, 3x3)), which the ascent may carry
into a pixel level here and there.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from report import instruction_sets, markdown_table

from tinygrad_edu.kernels import jit
from tinygrad_edu.kernels.fast import threads
from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis.ascent import AscentSettings
from tinygrad_edu.vis.atlas.plan import BATCH, layer_key, make_plan, tasks
from tinygrad_edu.vis.atlas.run import render, render_task, task_key
from tinygrad_edu.vis.atlas.store import picture_path
from tinygrad_edu.vis.targets import Target, as_target

#: machines of the projection (each like this one), and the workers per machine compared
MACHINES = (1, 2, 4, 8, 16, 32)
WORKERS = 2
#: layers rendered a second time on the workers, with the kernels in 1 share
COMPARED = ("block3_conv1", "block4_conv1")


@dataclass
class Layer:
    """What the runs measured of one layer."""

    name: str
    channels: int
    lifetimes: list[int]  # steps each sampled filter ran, in filter order
    here: float = 0.0  # seconds of one batched step in this process
    worker: float = 0.0  # ... on a Dask worker while the other worker runs too

    def whole(self) -> list[int]:
        """Lifetimes for the whole layer: the sample's, repeated."""
        return [self.lifetimes[i % len(self.lifetimes)] for i in range(self.channels)]


def steps_taken(lifetimes: Sequence[int], batch: int = BATCH) -> int:
    """Batched steps the classic ascent takes for filters living ``lifetimes`` steps, in order:
    ``batch`` slots, each refilled with the next filter as soon as its filter stops."""
    pending, running, count = deque(lifetimes), [], 0
    while pending or running:
        while pending and len(running) < batch:
            running.append(pending.popleft())
        count += 1
        running = [left - 1 for left in running if left > 1]
    return count


def makespan(durations: Sequence[float], workers: int) -> float:
    """Wall time of ``durations`` handed out in order to whichever of ``workers`` is free first."""
    free = [0.0] * workers
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


# ---------------------------------------------------------------------------- measuring
def run_here(model, out: Path, plan_args: dict) -> tuple[float, dict[int, float]]:
    """Render in this process; (wall seconds, time of each saved filter from the start)."""
    stamps: dict[int, float] = {}
    start = time.perf_counter()
    render(model, out, **plan_args, progress=lambda done, _: stamps.update({done: _since(start)}))
    return time.perf_counter() - start, stamps


def _since(start: float) -> float:
    return time.perf_counter() - start


def lifetimes(out: Path, layer: str, count: int) -> list[int]:
    """Steps each of the first ``count`` filters of ``layer`` ran (its record's curve)."""
    return [
        len(json.loads((out / layer / f"{f:04d}.json").read_text())["curve"]) for f in range(count)
    ]


def identical_pngs(first: Path, second: Path) -> tuple[int, int]:
    """(PNGs equal byte for byte, PNGs of ``first``)."""
    pictures = sorted(first.glob("*/*.png"))
    same = sum(p.read_bytes() == (second / p.relative_to(first)).read_bytes() for p in pictures)
    return same, len(pictures)


def pixel_differences(first: Path, second: Path) -> tuple[int, int, int, float]:
    """(PNGs equal byte for byte, PNGs of ``first``, the largest difference of a pixel level
    between two same-named PNGs, the mean absolute difference over all their levels)."""
    from PIL import Image

    pictures = sorted(first.glob("*/*.png"))
    same, largest, total, levels = 0, 0, 0.0, 0
    for picture in pictures:
        other = second / picture.relative_to(first)
        same += picture.read_bytes() == other.read_bytes()
        a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (picture, other))
        difference = np.abs(a - b)
        largest, total = max(largest, int(difference.max())), total + float(difference.sum())
        levels += difference.size
    return same, len(pictures), largest, total / max(levels, 1)


def nothing(i: int) -> int:
    """A task that does no work: what is left of its time is Dask's."""
    return i


def tiny_task_seconds(client, target, layer: str, repeat: int) -> tuple[float, float]:
    """(seconds of a one-filter, one-step, 8x8 render_task here, its round trip on the
    cluster), each the median of ``repeat``, one task at a time."""
    settings = AscentSettings(1, 1.0, 8, 1, 0)
    partitions = threads.workers()
    here = []
    for f in range(repeat):
        start = time.perf_counter()
        render_task(target, layer, (f,), settings, "classic", partitions)
        here.append(_since(start))
    remote = client.scatter(target, broadcast=True, hash=False)
    there = []
    for f in range(repeat):
        start = time.perf_counter()
        client.submit(render_task, remote, layer, (f,), settings, "classic", partitions).result()
        there.append(_since(start))
    client.cancel([remote])
    return statistics.median(here), statistics.median(there)


def run_on_cluster(args, model, target: Target, plan, plan_args: dict, out: Path) -> dict:
    """Start a LocalCluster as ``--workers 2`` does, time its one-off costs and per-task
    overhead, render the subset on it; the measurements and the task stream."""
    from distributed import Client, LocalCluster, get_task_stream, wait

    start = time.perf_counter()
    environment = dict(os.environ)  # Dask sets OPENBLAS_NUM_THREADS=1 etc. here for its workers
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    os.environ.clear()
    os.environ.update(environment)
    client = Client(cluster)
    client.wait_for_workers(WORKERS)
    measured = {"start": _since(start)}
    with cluster, client:
        start = time.perf_counter()
        remote = client.scatter(target, broadcast=True, hash=False)
        wait(remote)
        measured["scatter"] = _since(start)
        client.cancel([remote])
        start = time.perf_counter()
        client.gather(client.map(nothing, range(args.trivial_tasks), pure=False))
        measured["trivial"] = _since(start) / args.trivial_tasks
        here, there = tiny_task_seconds(client, target, target_layers(target)[0], args.tiny_tasks)
        measured["tiny_here"], measured["tiny_there"] = here, there
        with get_task_stream(client) as stream:
            start = time.perf_counter()
            render(model, out, **plan_args, client=client)
            measured["wall"] = _since(start)
        measured["stream"] = stream.data
        measured["one_partition"] = one_partition(client, target, plan, args.compare_layers)
    return measured


def one_partition(client, target: Target, plan, layers: Sequence[str]) -> dict:
    """The same tasks of ``layers`` with the kernels cut into 1 share instead of the client's:
    seconds each task computed by (layer, first, last), and the PNGs."""
    from distributed import as_completed, get_task_stream

    remote = client.scatter(target, broadcast=True, hash=False)
    futures = {}
    with get_task_stream(client) as stream:
        for layer in layers:
            settings = plan.settings(layer)
            for chunk in tasks(plan.filters[layer], settings.batch, WORKERS):
                future = client.submit(
                    render_task, remote, layer, chunk, settings, plan.mode, 1, pure=False
                )
                futures[future] = (layer, chunk[0], chunk[-1])
        pngs = {}
        for future in as_completed(futures):
            pngs.update({(r.layer, r.filter): r.png for r in future.result()})
    client.cancel([*futures, remote])
    busy = {}
    for task in stream.data:
        where = next((w for f, w in futures.items() if f.key == task["key"]), None)
        if where is not None:
            busy[where] = sum(
                s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute"
            )
    return {"busy": busy, "pngs": pngs}


def target_layers(target: Target) -> list[str]:
    return list(target.layers)


def layer_tasks(plan, layer: str) -> dict[str, tuple[int, int]]:
    """The names the cluster run gives the tasks of ``layer`` (as ``render`` cuts them for
    :data:`WORKERS` workers), each with its (first, last) filter."""
    key = layer_key(plan.parameters, layer)
    chunks = tasks(plan.filters[layer], plan.settings(layer).batch, WORKERS)
    return {task_key(key, chunk, plan.shares): (chunk[0], chunk[-1]) for chunk in chunks}


def compute_seconds(stream: list[dict], names: dict[str, tuple[int, int]]) -> dict:
    """Seconds each of the tasks ``names`` computed, by (first, last) filter."""
    tasks_seen = {}
    for task in stream:
        span = names.get(str(task["key"]))
        if span is not None:
            busy = task["startstops"]
            tasks_seen[span] = sum(s["stop"] - s["start"] for s in busy if s["action"] == "compute")
    return tasks_seen


# ---------------------------------------------------------------------------- the model
def project(layers: list[Layer], workers: int, per_step: str, overhead: float) -> float:
    """Makespan of the whole atlas's tasks for ``workers`` workers (no one-off costs)."""
    durations = []
    for layer in layers:
        whole = layer.whole()
        for chunk in tasks(range(layer.channels), min(BATCH, layer.channels), workers):
            steps = steps_taken([whole[f] for f in chunk], min(BATCH, layer.channels))
            durations.append(steps * getattr(layer, per_step) + overhead)
    return makespan(durations, workers)


def task_count(layers: list[Layer], workers: int) -> int:
    return sum(len(tasks(range(lay.channels), min(BATCH, lay.channels), workers)) for lay in layers)


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


# ---------------------------------------------------------------------------- main
def compare_paths(model, plan_args: dict, total: int) -> None:
    """Render the subset on the NumPy kernels, then on the fused ones; print both rates."""
    if not jit.available():
        print("the jit extra (numba) is not installed: only the NumPy kernels can run")
        return
    with tempfile.TemporaryDirectory() as folder:
        numpy_out, fused_out = Path(folder, "numpy"), Path(folder, "fused")
        with jit.numpy_path():
            numpy_wall, _ = run_here(model, numpy_out, plan_args)
        with jit.using(True):
            start = time.perf_counter()
            run_here(model, Path(folder, "warm-up"), {**plan_args, "filters": 1, "steps": 1})
            compile_seconds = _since(start)  # the fused kernels compiled, or loaded from cache
            fused_wall, _ = run_here(model, fused_out, plan_args)
        same, pictures, largest, mean = pixel_differences(numpy_out, fused_out)
    rows = [
        ["NumPy kernels", f"{numpy_wall:.1f} s", f"{total / numpy_wall:.3f}", "1.00x"],
        [
            "jit kernels (fused)",
            f"{fused_wall:.1f} s",
            f"{total / fused_wall:.3f}",
            f"{fused_wall / numpy_wall:.2f}x",
        ],
    ]
    title = (
        f"The microscope in this process on both kernel paths, {total} filters; PNGs "
        f"byte-identical: {same} of {pictures}, largest pixel difference {largest} of 255 "
        f"(mean {mean:.3f}); fused kernels ready in {compile_seconds:.1f} s "
        f"(a one-filter, one-step render: compiled or loaded from numba's cache); load average "
        f"{os.getloadavg()[0]:.1f} after; {instruction_sets()}"
    )
    print(markdown_table(title, ["kernels", "wall time", "filters per second", "time"], rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="VGG16 weights (default: random)")
    parser.add_argument(
        "--layers", nargs="+", metavar="L", help="measure these layers only (default: all 13)"
    )
    parser.add_argument("--filters-per-layer", type=int, default=32, metavar="N")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--trivial-tasks", type=int, default=200)
    parser.add_argument("--tiny-tasks", type=int, default=20)
    parser.add_argument(
        "--compare-layers",
        nargs="+",
        default=None,
        metavar="L",
        help="layers rendered again on the workers with the kernels in 1 share "
        f"(default: those of {', '.join(COMPARED)} measured, else the last layer)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2 filters, 2 steps, 16x16 images"
    )
    parser.add_argument(
        "--paths",
        action="store_true",
        help="in-process only, on the NumPy kernels and on the jit extra's fused kernels",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.filters_per_layer, args.steps, args.size = 2, 2, 16
        args.trivial_tasks, args.tiny_tasks = 20, 3

    load_before = os.getloadavg()[0]
    model = (vgg16(args.weights) if args.weights else vgg16(rng=0)).freeze()
    target = as_target(model)
    names = args.layers or target_layers(target)
    if args.compare_layers is None:
        args.compare_layers = [name for name in COMPARED if name in names] or names[-1:]
    plan_args = {
        "layers": names,
        "filters": args.filters_per_layer,
        "steps": args.steps,
        "size": args.size,
    }
    start = time.perf_counter()
    plan = make_plan(target, names, args.filters_per_layer, args.steps, args.size, "classic", 0)
    planning = _since(start)  # hashing the weights: part of each run, not of any layer
    sampled = {name: len(plan.filters[name]) for name in names}
    total = sum(sampled.values())
    print(
        f"subset: the first {args.filters_per_layer} filters of each of {len(names)} layers, "
        f"{total} filters, classic mode, {args.size}x{args.size}, {args.steps} steps; "
        f"load average {load_before:.1f}"
    )
    if args.paths:
        compare_paths(model, plan_args, total)
        return

    with tempfile.TemporaryDirectory() as folder:
        here_out, there_out = Path(folder, "here"), Path(folder, "cluster")
        here_wall, stamps = run_here(model, here_out, plan_args)
        print(f"in-process: {here_wall:.1f} s, {total / here_wall:.3f} filters/s")
        cluster = run_on_cluster(args, model, target, plan, plan_args, there_out)
        print(
            f"{WORKERS} Dask workers: {cluster['wall']:.1f} s, "
            f"{total / cluster['wall']:.3f} filters/s "
            f"({here_wall / cluster['wall']:.2f}x the in-process rate)"
        )
        same, pictures = identical_pngs(here_out, there_out)
        print(f"PNGs byte-identical between the two runs: {same} of {pictures}")
        layers, ends = [], 0
        names_of = {name: layer_tasks(plan, name) for name in names}
        previous = planning
        for name in names:
            ends += sampled[name]
            layer = Layer(name, target.channels(name), lifetimes(here_out, name, sampled[name]))
            batch = min(BATCH, layer.channels)
            layer.here = (stamps[ends] - previous) / steps_taken(layer.lifetimes, batch)
            previous = stamps[ends]
            busy = compute_seconds(cluster["stream"], names_of[name])
            worker_steps = sum(
                steps_taken(layer.lifetimes[first : last + 1], batch) for first, last in busy
            )
            layer.worker = sum(busy.values()) / worker_steps
            layers.append(layer)
        alternative = cluster["one_partition"]
        shared_busy = sum(
            seconds
            for name in args.compare_layers
            for seconds in compute_seconds(cluster["stream"], names_of[name]).values()
        )
        single_busy = sum(alternative["busy"].values())
        single_same = sum(
            png == (here_out / picture_path(layer, f)).read_bytes()
            for (layer, f), png in alternative["pngs"].items()
        )
        single_count = len(alternative["pngs"])
    print(
        f"{WORKERS} Dask workers, kernels in 1 share instead of {threads.workers()} "
        f"({', '.join(args.compare_layers)}): tasks computed {single_busy:.1f} s vs "
        f"{shared_busy:.1f} s ({single_busy / shared_busy:.2f}x); PNGs byte-identical to the "
        f"in-process run: {single_same} of {single_count}"
    )

    overhead = max(0.0, cluster["tiny_there"] - cluster["tiny_here"])
    scatter_copy = cluster["scatter"] / WORKERS
    print(
        f"Dask: cluster start {cluster['start']:.1f} s; scatter of the network to "
        f"{WORKERS} workers {cluster['scatter']:.2f} s; {cluster['trivial'] * 1e3:.2f} ms per "
        f"trivial task ({args.trivial_tasks} at once); a one-filter 8x8 render_task "
        f"{cluster['tiny_there'] * 1e3:.1f} ms round trip vs {cluster['tiny_here'] * 1e3:.1f} ms "
        f"here: {overhead * 1e3:.1f} ms overhead per task"
    )
    rows = [
        ["**measured**: the subset, " + f"{total} filters", "", ""],
        [
            "wall time, filters per second",
            f"{here_wall:.1f} s, {total / here_wall:.3f} /s",
            f"{cluster['wall']:.1f} s, {total / cluster['wall']:.3f} /s "
            f"({here_wall / cluster['wall']:.2f}x)",
        ],
        ["PNGs byte-identical", f"{same} of {pictures}", f"{same} of {pictures}"],
        [
            "one-off: cluster start; scatter of the network",
            "none",
            f"{cluster['start']:.1f} s; {cluster['scatter']:.2f} s to {WORKERS} workers",
        ],
        ["per-task overhead (round trip of a tiny task)", "none", f"{overhead * 1e3:.1f} ms"],
        [
            f"kernels in 1 share, not {threads.workers()} ({', '.join(args.compare_layers)})",
            "",
            f"task time {single_busy / shared_busy:.2f}x; PNGs identical to in-process: "
            f"{single_same} of {single_count}",
        ],
        ["**per layer**: seconds per batched step (16 images); mean steps a filter lived", "", ""],
    ]
    for layer in layers:
        mean = statistics.mean(layer.lifetimes)
        dead = sum(life < args.steps for life in layer.lifetimes) / len(layer.lifetimes)
        rows.append(
            [
                f"{layer.name} ({layer.channels} filters): lived {mean:.1f} steps, "
                f"{dead:.0%} stopped early",
                f"{layer.here:.3f} s",
                f"{layer.worker:.3f} s per worker: together "
                f"{WORKERS * layer.here / layer.worker:.2f}x the in-process rate",
            ]
        )
    whole = sum(layer.channels for layer in layers)
    alone = sum(steps_taken(lay.whole(), min(BATCH, lay.channels)) * lay.here for lay in layers)
    every = "the whole atlas" if len(names) == len(target.layers) else "the whole of these layers"
    rows.append([f"**projected**: {every}, {whole} filters", "", ""])
    rows.append(["1 machine, no Dask", hours(alone), ""])
    for machines in MACHINES:
        cells = []
        for per_machine, per_step in ((1, "here"), (WORKERS, "worker")):
            workers = machines * per_machine
            seconds = cluster["start"] + workers * scatter_copy
            seconds += project(layers, workers, per_step, overhead)
            cells.append(f"{hours(seconds)} ({task_count(layers, workers)} tasks)")
        rows.append([f"{machines} machine{'s' * (machines > 1)}", *cells])
    title = (
        f"The microscope on VGG16, classic mode, {args.size}x{args.size}, {args.steps} steps: "
        f"the first {args.filters_per_layer} filters of each of {len(names)} layers measured, "
        f"{every} projected; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    header = ["", "in-process; 1 worker per machine", f"{WORKERS} Dask workers per machine"]
    print(markdown_table(title, header, rows))


if __name__ == "__main__":
    main()
