"""``tinygrad-edu text-color``: train, query and take apart the worked example's network."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..io import checkpoint
from ..models.text_color import (
    COLOR_NAMES,
    COLORS,
    LABELS,
    build_mlp,
    engine_deltas,
    handderived,
    model_from_state_dict,
    parse_color,
    to_augmented,
)
from ..models.text_color.colors import contrast_ratio, relative_luminance, to_hex
from ..models.text_color.training import predict, train, wcag_agreement, wcag_training_set

DEFAULT_DIR = Path("runs") / "text_color"
DEFAULT_CHECKPOINT = DEFAULT_DIR / "text_color.npz"
HELD_OUT = 1000


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "text-color",
        help="the 3-5-2-1 network that picks white or black text for a background colour",
        description=(
            "The worked example: a 3-5-2-1 sigmoid network reads a background colour (RGB/255) "
            "and outputs the probability that white text reads better than black."
        ),
    )
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    p = sub.add_parser(
        "train",
        help="train like the document and save a checkpoint and a figure",
        description=(
            "Full-batch gradient descent on E = 1/2 sum (o - y)^2 with N(0, 0.15) initial weights. "
            "Writes <out>/text_color.npz and <out>/text_color.png and reports the iteration of "
            f"minimum error and the share of {HELD_OUT} random held-out colours on which the "
            "network picks the text colour with the higher WCAG 2 contrast."
        ),
    )
    p.add_argument("--iterations", type=int, default=5000, help="gradient steps (default 5000)")
    p.add_argument("--lr", type=float, default=0.2, help="learning rate (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    p.add_argument(
        "--data",
        choices=["document", "wcag"],
        default="document",
        help="train on the document's 10 colours (default) or on random WCAG-labelled colours",
    )
    p.add_argument("--samples", type=int, default=200, help="colours for --data wcag (default 200)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_DIR, help=f"output folder (default {DEFAULT_DIR})"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-figure", action="store_true", help="skip the PNG figure (no matplotlib needed)"
    )
    p.set_defaults(run=run_train)

    p = sub.add_parser(
        "predict",
        help="white or black text for the given colours",
        description="Colours as '#1e90ff', '#fff', 'rgb(250,235,215)' or '250,235,215'.",
    )
    p.add_argument("colors", nargs="+", metavar="COLOR", help="background colours")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained weights")
    p.set_defaults(run=run_predict)

    p = sub.add_parser(
        "explain",
        help="engine deltas next to the document's hand-derived deltas, layer by layer",
        description=(
            "For the 10 training colours, print dE/dz for every layer twice: from the engine's "
            "reverse mode and from the document's chain-rule formulas in plain NumPy, with their "
            "largest difference. Uses the checkpoint when it exists, else fresh N(0, 0.15) weights."
        ),
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained weights")
    p.add_argument("--seed", type=int, default=0, help="seed of fresh weights (default 0)")
    p.set_defaults(run=run_explain)


def _load(path: Path):
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train one first with: tinygrad-edu text-color train"
        )
    return model_from_state_dict(checkpoint.load(path))


def run_train(args: argparse.Namespace) -> int:
    if args.data == "document":
        X, Y, names = COLORS, LABELS, list(COLOR_NAMES)
    else:
        X, Y = wcag_training_set(args.samples, seed=args.seed + 1)
        names = None
    model = build_mlp(rng=args.seed)
    run = train(model, X, Y, iterations=args.iterations, lr=args.lr, progress=not args.no_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    saved = checkpoint.save(model.state_dict(), args.out / "text_color.npz")
    probabilities = predict(model, X)
    correct = np.mean((probabilities >= 0.5) == (Y.ravel() >= 0.5))
    agreement = wcag_agreement(model, HELD_OUT)
    print(
        f"trained on {len(X)} colours ({args.data}) for {args.iterations} iterations, lr {args.lr}"
    )
    print(f"final error E = {run.errors[-1]:.6f}")
    print(f"minimum error E = {run.best_error:.6f} at iteration {run.best_iteration}")
    print(f"training colours classified correctly: {correct:.0%}")
    print(f"held-out WCAG agreement: {agreement:.1%} of {HELD_OUT} random colours")
    print(f"checkpoint: {saved}")
    if not args.no_figure:
        from ..models.text_color.figure import draw_figure

        shown = slice(0, 10)
        figure_path = args.out / "text_color.png"
        draw_figure(
            figure_path,
            X[shown],
            probabilities[shown],
            names=names,
            errors=run.errors,
            best_iteration=run.best_iteration,
        )
        print(f"figure: {figure_path}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    colors = np.array([parse_color(text) for text in args.colors])
    model = _load(args.checkpoint)
    for text, rgb, p in zip(args.colors, colors, predict(model, colors)):
        lum = relative_luminance(rgb)
        white, black = contrast_ratio(lum, 1.0), contrast_ratio(lum, 0.0)
        choice = "white" if p >= 0.5 else "black"
        wcag = "white" if white > black else "black"
        print(
            f"{text:>20s}  {to_hex(rgb)}  p(white) = {p:.3f}  -> {choice} text"
            f"   (WCAG contrast: white {white:.2f}, black {black:.2f}: {wcag})"
        )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    if args.checkpoint.exists():
        model, source = _load(args.checkpoint), f"checkpoint {args.checkpoint}"
    else:
        model, source = build_mlp(rng=args.seed), f"fresh N(0, 0.15) weights, seed {args.seed}"
    matrices = to_augmented(model)
    ours = engine_deltas(model, COLORS, LABELS)
    theirs = handderived.deltas(matrices, COLORS, LABELS)
    print(f"deltas dE/dz on the 10 training colours ({source}); one column per colour")
    print("delta^L = (a^L - y) * a^L (1 - a^L)")
    print("delta^k = (W^(k+1)^T delta^(k+1))[:-1] * a^k (1 - a^k)\n")
    layers = len(matrices)
    worst = 0.0
    for offset, (a, b) in enumerate(zip(ours, theirs)):
        k = layers - offset
        difference = float(np.max(np.abs(a - b)))
        worst = max(worst, difference)
        role = "output layer" if offset == 0 else "hidden layer"
        neurons = f"{a.shape[0]} neuron" + ("s" if a.shape[0] != 1 else "")
        print(f"layer {k} ({role}, {neurons}), delta^{k} of shape {a.shape}")
        print("  engine (reverse mode):\n" + _indent(a))
        print("  hand-derived (document's formulas):\n" + _indent(b))
        print(f"  largest |difference|: {difference:.3g}\n")
    print(f"largest difference over all layers: {worst:.3g}")
    return 0


def _indent(array: np.ndarray) -> str:
    text = np.array2string(array, precision=6, max_line_width=120)
    return "\n".join("    " + line for line in text.splitlines())
