"""Every filter of every VGG16 layer as a browsable atlas (a static site), here or on a cluster.

For each chosen layer (default: all 13 convolutions, 4,224 filters), gradient ascent renders
each filter's image -- the document's 'classic' algorithm or 'improved' -- and saves it at once
as <out>/<layer>/<NNNN>.png; <out>/index.html and one page per layer show them. Re-running the
same command renders only what is missing or was rendered with other parameters. --workers N
renders on N local Dask worker processes, --scheduler ADDRESS on an existing Dask cluster
(the 'cluster' extra: pip install 'dask[distributed]').
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..models.vgg import VGG16
from ..progress import progress_bar
from ..vis.atlas.plan import MAX_SIZE, MAX_STEPS
from ..vis.atlas.run import render
from .arguments import int_between, nonnegative_int
from .errors import CommandError
from .loading import frozen_vgg16

#: the most local worker processes (each holds a copy of the network)
MAX_WORKERS = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        required=True,
        help="a Keras .h5 / PyTorch .pth / .safetensors / .npz file of VGG16, or 'keras' / "
        "'torchvision' to download the canonical file into the cache",
    )
    p.add_argument("--out", type=Path, required=True, help="the atlas folder")
    p.add_argument(
        "--layers",
        nargs="+",
        metavar="L",
        help="conv layers such as block1_conv1 block5_conv3 (default: all 13)",
    )
    p.add_argument(
        "--filters",
        type=int_between(1, 512, "a VGG16 layer has at most 512 filters"),
        help="render the first N filters of each layer (default: all)",
        metavar="N",
    )
    p.add_argument(
        "--steps",
        type=int_between(1, MAX_STEPS),
        default=20,
        help="ascent steps per filter (default 20)",
    )
    p.add_argument(
        "--size",
        type=int_between(8, MAX_SIZE, "16 images of the largest size fill a few GiB"),
        default=128,
        help=f"image side in pixels, 8 to {MAX_SIZE} (default 128)",
        metavar="PX",
    )
    p.add_argument("--mode", choices=["classic", "improved"], default="classic", help="algorithm")
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the start noise (default 0)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int_between(1, MAX_WORKERS),
        metavar="N",
        help="render on N local Dask worker processes (on a 2-core machine one process, the "
        "default, is as fast: use it to try a cluster, or on machines with more cores)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="render on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_microscope)


def run_microscope(args: argparse.Namespace) -> int:
    if args.layers is not None:
        valid = VGG16(initialise=False).conv_layer_names
        unknown = [name for name in args.layers if name not in valid]
        if unknown:
            raise CommandError(f"unknown layer {unknown[0]!r}: choose from {', '.join(valid)}")
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file, not a folder")
    started = time.perf_counter()
    with (
        _client(args) as client,  # first: a wrong --scheduler address is told at once
        progress_bar(0, "filters", enabled=not args.no_progress, unit="filter") as bar,
    ):
        model = frozen_vgg16(args.weights)

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        result = render(
            model,
            args.out,
            layers=args.layers,
            filters=args.filters,
            steps=args.steps,
            size=args.size,
            mode=args.mode,
            seed=args.seed,
            client=client,
            progress=report,
        )
    seconds = time.perf_counter() - started
    rate = f", {result.rendered / seconds:.2f} filters/s" if result.rendered else ""
    print(
        f"rendered {result.rendered} filters ({result.kept} already done) in {seconds:.1f} s"
        f"{rate}; atlas: {args.out / 'index.html'}"
    )
    return 0


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[object]:
    """No client (in-process), a local cluster of ``--workers`` processes, or ``--scheduler``."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ImportError(
            "--workers and --scheduler need Dask (the 'cluster' extra): "
            "pip install 'dask[distributed]'"
        ) from err
    if args.scheduler is not None:
        try:
            client = Client(args.scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise CommandError(f"no Dask scheduler at {args.scheduler}: {err}") from None
        with client:
            yield client
        return
    saved = dict(os.environ)  # Dask sets OMP_NUM_THREADS=1 and friends here for its workers
    try:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # no dashboard, but the scheduler still serves HTTP (health checks): on a free port
            # of this machine, not Dask's 8787, which another cluster may hold (a warning)
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
        with cluster, Client(cluster) as client:
            yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)
