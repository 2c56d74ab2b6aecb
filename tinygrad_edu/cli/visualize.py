"""Images that maximise VGG16 filters, as the document's 4x4 grids.

For each layer: start from grey noise, run gradient ascent on each filter's mean activation (the
document's 'classic' algorithm, or 'improved' with robustness and regularisation), drop filters
stuck at zero, keep the best grid*grid by loss, and write <out>/<layer>_<grid>x<grid>.png plus
summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..io.atomic import atomic_write
from ..models.vgg import VGG16
from ..progress import progress_bar
from ..vis import best, save_png, stitch, visualize_filters
from ..vis.ascent import Ascended
from ..vis.improved import PARAMETERIZATIONS
from .arguments import int_between, nonnegative_float, nonnegative_int, positive_float
from .errors import CommandError
from .loading import frozen_vgg16

#: the five layers whose grids the document shows
DOCUMENT_LAYERS = ("block1_conv1", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
#: the most filters a VGG16 conv layer has
MAX_FILTERS = 512
#: limits of the options that decide memory and time (the document: size 128, 20 steps, grid 4)
MAX_SIZE, MAX_STEPS, MAX_BATCH, MAX_GRID = 512, 100_000, 256, 22
#: the most pixels optimised at once (batch * size * size): 16 images of 256 x 256, a few GiB
MAX_PIXELS = 16 * 256 * 256
#: the options passed on to ``visualize_filters`` under their own names (and in improved mode)
ASCENT_OPTIONS = ("steps", "step_size", "size", "batch", "seed", "mode")
IMPROVED_OPTIONS = ("parameterization", "tv")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        default="keras",
        help="a Keras .h5 / PyTorch .pth / .safetensors / .npz file, or 'keras' / 'torchvision' "
        "to download the canonical file into the cache (default: keras)",
    )
    p.add_argument(
        "--layers",
        nargs="+",
        default=["document"],
        help="conv layers such as block1_conv1 block5_conv3, or 'document' for the document's "
        f"five ({', '.join(DOCUMENT_LAYERS)}; the default)",
    )
    p.add_argument(
        "--filters",
        type=int_between(1, MAX_FILTERS, "a VGG16 layer has at most 512 filters"),
        default=200,
        help="filters scanned per layer, the first ones (default 200, as the document)",
    )
    p.add_argument(
        "--steps",
        type=int_between(1, MAX_STEPS),
        default=20,
        help="ascent steps per filter (default 20)",
    )
    p.add_argument("--step-size", type=positive_float, default=1.0, help="step size (default 1.0)")
    p.add_argument(
        "--size",
        type=int_between(8, MAX_SIZE, "smaller images vanish in VGG16's pooling"),
        default=128,
        help=f"image side in pixels, 8 to {MAX_SIZE} (default 128)",
    )
    p.add_argument(
        "--grid",
        type=int_between(1, MAX_GRID, "a layer's at most 512 filters fill 22 x 22 cells"),
        default=4,
        help="grid side: keep the best grid*grid (default 4)",
    )
    p.add_argument("--out", type=Path, default=Path("runs") / "filters", help="output folder")
    p.add_argument("--mode", choices=["classic", "improved"], default="classic", help="algorithm")
    p.add_argument(
        "--parameterization",
        choices=PARAMETERIZATIONS,
        default="pixel",
        help="improved mode: optimise pixels, or a decorrelated 1/f cosine spectrum",
    )
    p.add_argument(
        "--tv", type=nonnegative_float, default=0.0, help="improved mode: total-variation weight"
    )
    p.add_argument(
        "--batch",
        type=int_between(1, MAX_BATCH),
        default=16,
        help=f"filters optimised at once; batch * size^2 at most {MAX_PIXELS} (default 16)",
    )
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the start noise (default 0)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_visualize)


def resolve_layers(requested: list[str]) -> list[str]:
    """Expand 'document' and check every name against VGG16's conv layers."""
    valid = VGG16(initialise=False).conv_layer_names
    layers: list[str] = []
    for name in requested:
        expanded = DOCUMENT_LAYERS if name == "document" else (name,)
        for layer in expanded:
            if layer not in valid:
                raise ValueError(
                    f"unknown layer {layer!r}: choose from {', '.join(valid)}, or 'document'"
                )
            if layer not in layers:
                layers.append(layer)
    return layers


def run_visualize(args: argparse.Namespace) -> int:
    layers = resolve_layers(args.layers)
    if args.mode == "classic" and (args.parameterization != "pixel" or args.tv):
        raise ValueError("--parameterization and --tv apply to --mode improved only")
    options = ASCENT_OPTIONS + (IMPROVED_OPTIONS if args.mode == "improved" else ())
    ascent = {name: getattr(args, name) for name in options}
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file, not a folder")
    at_once = min(args.batch, args.filters) * args.size**2
    if at_once > MAX_PIXELS:
        raise CommandError(
            f"--batch {args.batch} images of --size {args.size} are {at_once} pixels at once, "
            f"more than {MAX_PIXELS} (16 images of 256 x 256): lower --batch or --size"
        )
    model = frozen_vgg16(args.weights)  # never trained here: constant weights
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    started = time.perf_counter()
    for layer in layers:
        layer_start = time.perf_counter()
        scanned = min(args.filters, model.features[model.conv_index(layer)].out_channels)
        with progress_bar(scanned, layer, enabled=not args.no_progress, unit="filter") as bar:

            def report(done: int, total: int, result: Ascended, bar=bar) -> None:
                bar.update(1)
                bar.set_postfix_str(f"loss {result.loss:.3g}", refresh=False)

            results = visualize_filters(model, layer, args.filters, progress=report, **ascent)
        chosen = best(results, args.grid * args.grid)
        path = args.out / f"{layer}_{args.grid}x{args.grid}.png"
        if chosen:
            save_png(path, stitch([image for _, image, _ in chosen], n=args.grid, margin=5))
        seconds = time.perf_counter() - layer_start
        summary.append(
            {
                "layer": layer,
                "filters_scanned": scanned,
                "filters_kept": len(results),
                "in_grid": [index for index, _, _ in chosen],
                "best_loss": chosen[0][2] if chosen else None,
                "seconds": round(seconds, 1),
                "grid": str(path) if chosen else None,
            }
        )
    total = time.perf_counter() - started
    with atomic_write(args.out / "summary.json") as handle:
        report = {"mode": args.mode, "seconds": round(total, 1), "layers": summary}
        handle.write(json.dumps(report, indent=2).encode("utf-8"))
    print(f"{'layer':14s} {'kept':>9s} {'best loss':>10s} {'time':>8s}  grid")
    for row in summary:
        kept = f"{row['filters_kept']}/{row['filters_scanned']}"
        loss = "-" if row["best_loss"] is None else f"{row['best_loss']:.4g}"
        grid = row["grid"] or "(no filter kept: nothing written)"
        print(f"{row['layer']:14s} {kept:>9s} {loss:>10s} {row['seconds']:7.1f}s  {grid}")
    print(f"total {total:.1f}s; summary in {args.out / 'summary.json'}")
    return 0
