"""The 3-5-2-1 network that picks white or black text for a background colour.

The worked example: a 3-5-2-1 sigmoid network reads a background colour (RGB/255) and outputs the
probability that white text reads better than black. Train it, query it, take it apart.
"""

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
from ..models.text_color.colors import contrast_ratio, label_checks, label_table, relative_luminance
from ..models.text_color.training import (
    DOCUMENT_LR,
    DOCUMENT_MAX_ITERATION,
    DOCUMENT_SEED,
    DOCUMENT_TARGET,
    predict,
    train,
    wcag_agreement,
    wcag_training_set,
)
from .arguments import int_between, nonnegative_float, nonnegative_int, positive_float
from .errors import CommandError

DEFAULT_DIR = Path("runs") / "text_color"
DEFAULT_CHECKPOINT = DEFAULT_DIR / "text_color.npz"
#: where ``train --data <name>`` writes by default: one folder per data set, so training on
#: WCAG labels never replaces the document model's checkpoint
DEFAULT_DIRS = {"document": DEFAULT_DIR, "wcag": Path("runs") / "text_color_wcag"}
HELD_OUT = 1000
#: limits of the options that decide memory (the errors of every iteration are kept)
MAX_ITERATION, MAX_SAMPLES = 10_000_000, 1_000_000
#: colours drawn for ``train --data wcag`` unless ``--samples`` says otherwise
DEFAULT_SAMPLES = 200
PLOT_HINT = "pip install matplotlib"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    p = sub.add_parser(
        "train",
        help="train like the document and save a checkpoint and a figure",
        description=(
            "The document's run: N(0, 0.15) initial weights, full-batch gradient descent on "
            "E = 1/2 sum (o - y)^2 at lr 0.2, iterations 0..100000, stopping at the first "
            "iteration whose sum (o - y)^2 (= 2E, the document's printed error) is at most 0.001. "
            f"Writes <out>/text_color.npz (<out> is {DEFAULT_DIRS['document']}, or "
            f"{DEFAULT_DIRS['wcag']} with --data wcag) and, with matplotlib (the 'plot' extra), "
            "<out>/text_color.png; reports each colour's label next to its WCAG 2 contrast and "
            f"the share of {HELD_OUT} random held-out colours on which the network picks the text "
            "colour with the higher WCAG 2 contrast."
        ),
    )
    p.add_argument(
        "--max-iteration",
        type=int_between(0, MAX_ITERATION),
        default=DOCUMENT_MAX_ITERATION,
        help=f"last iteration number (default {DOCUMENT_MAX_ITERATION}, the document's budget)",
    )
    p.add_argument(
        "--target",
        type=nonnegative_float,
        default=DOCUMENT_TARGET,
        help=f"stop once sum (o - y)^2 <= this; 0 runs every iteration (default {DOCUMENT_TARGET})",
    )
    p.add_argument(
        "--lr", type=positive_float, default=DOCUMENT_LR, help=f"learning rate ({DOCUMENT_LR})"
    )
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=DOCUMENT_SEED,
        help=f"seed of the initial weights (default {DOCUMENT_SEED}; see docs/text_color.md)",
    )
    p.add_argument(
        "--data",
        choices=sorted(DEFAULT_DIRS),
        default="document",
        help="the document's 10 colours and labels (default) or random WCAG-labelled colours",
    )
    p.add_argument(
        "--samples",
        type=int_between(1, MAX_SAMPLES),
        help=f"colours for --data wcag (default {DEFAULT_SAMPLES})",
    )
    p.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default {DEFAULT_DIRS['document']}, with --data wcag "
        f"{DEFAULT_DIRS['wcag']})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figure", action="store_true", help="skip the PNG figure")
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
        help="the labels against WCAG 2, and engine deltas next to the hand-derived ones",
        description=(
            "For the document's 10 training colours: each label next to the WCAG 2 contrast of "
            "white and black text, then dE/dz for every layer twice, from the engine's reverse "
            "mode and from the document's chain-rule formulas in plain NumPy, with their largest "
            "difference. Uses the checkpoint when it exists, else fresh N(0, 0.15) weights."
        ),
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained weights")
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=DOCUMENT_SEED,
        help=f"seed of fresh weights (default {DOCUMENT_SEED})",
    )
    p.set_defaults(run=run_explain)


def _load(path: Path):
    """The checkpoint's network, or a one-line :class:`CommandError` naming the file."""
    if not path.exists():
        raise CommandError(
            f"no checkpoint at {path}; train one first with: tinygrad-edu text-color train"
        )
    try:
        return model_from_state_dict(checkpoint.load(path))
    except (ValueError, OSError, TypeError) as err:  # CheckpointError, StateDictError, ...
        raise CommandError(f"cannot use checkpoint {path}: {err}") from None


def run_train(args: argparse.Namespace) -> int:
    if args.out is None:
        args.out = DEFAULT_DIRS[args.data]
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file, not a folder")
    if args.samples is not None and args.data != "wcag":
        raise CommandError("--samples sets the size of --data wcag; the document's data is fixed")
    try:  # before training, so an unusable folder costs no training time
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"--out {args.out}: cannot create the folder ({err.strerror})") from None
    if args.data == "document":
        X, Y, names = COLORS, LABELS, COLOR_NAMES
        described = "the document's 10 colours"
    else:
        samples = DEFAULT_SAMPLES if args.samples is None else args.samples
        X, Y = wcag_training_set(samples, seed=args.seed + 1)
        names, described = None, f"{samples} random WCAG-labelled colours"
    model = build_mlp(rng=args.seed)
    run = train(
        model,
        X,
        Y,
        max_iteration=args.max_iteration,
        lr=args.lr,
        target=args.target or None,
        progress=not args.no_progress,
    )
    weights_finite = all(np.isfinite(p.data).all() for p in model.parameters())
    path = args.out / "text_color.npz"
    if not (run.finite and weights_finite):
        raise CommandError(
            f"training diverged (the error became {run.errors[-1]} at iteration "
            f"{run.last_iteration}); try a smaller --lr. Nothing written: {path} is unchanged"
        )
    saved = checkpoint.save(model.state_dict(), path)
    probabilities = predict(model, X)
    correct = int(np.sum((probabilities >= 0.5) == (Y.ravel() >= 0.5)))
    print(
        f"trained on {described}: full-batch gradient descent, lr {args.lr}, "
        f"N(0, 0.15) initial weights (seed {args.seed})"
    )
    if run.reached_target:
        print(f"minimum error reached at iteration {run.last_iteration}")
        print(
            f"  sum (o - y)^2 = {2 * run.errors[-1]:.6f} <= target {args.target:g} "
            f"(E = 1/2 sum (o - y)^2 = {run.errors[-1]:.6f})"
        )
    else:
        reason = "no target" if not args.target else f"target {args.target:g} not reached"
        print(
            f"ran iterations 0..{run.last_iteration} ({reason}): "
            f"sum (o - y)^2 = {2 * run.errors[-1]:.6f}, E = {run.errors[-1]:.6f}"
        )
        print(f"  smallest E = {run.best_error:.6f} at iteration {run.best_iteration}")
    print(f"training colours on which the network follows its label: {correct}/{len(X)}")
    if args.data == "document":
        checks = label_checks(X, Y, names)
        print(label_table(checks, probabilities))
        print(_disagreement_summary(checks))
    agreement = wcag_agreement(model, HELD_OUT)
    print(f"held-out WCAG agreement: {agreement:.1%} of {HELD_OUT} random colours")
    print(f"checkpoint: {saved}")
    if not args.no_figure:
        _draw(args, X[:10], probabilities[:10], names, run, described)
    return 0


def _draw(args: argparse.Namespace, X, probabilities, names, run, described: str) -> None:
    """The figure, titled by the data the network was trained on."""
    shown = "" if args.data == "document" else f" (the first {len(X)} shown)"
    try:
        from ..models.text_color.figure import draw_figure

        figure = draw_figure(
            args.out / "text_color.png",
            X,
            probabilities,
            names=names,
            errors=run.errors,
            stop_iteration=run.last_iteration if run.reached_target else None,
            labels=LABELS[:, 0] if args.data == "document" else None,
            title=f"White or black text? The 3-5-2-1 network trained on {described}{shown}",
        )
    except ImportError:
        print(f"figure skipped: it needs matplotlib, the 'plot' extra ({PLOT_HINT})")
    else:
        print(f"figure: {figure}")


def _disagreement_summary(checks) -> str:
    against = [c.name for c in checks if not c.agrees]
    if not against:
        return "every label agrees with WCAG 2"
    return (
        f"{len(against)} of {len(checks)} labels disagree with WCAG 2 ({', '.join(against)}): "
        "the network is trained on the document's labels as given; --data wcag trains on "
        "WCAG labels instead"
    )


def run_predict(args: argparse.Namespace) -> int:
    colors = np.array([parse_color(text) for text in args.colors])
    model = _load(args.checkpoint)
    for text, rgb, p in zip(args.colors, colors, predict(model, colors)):
        lum = relative_luminance(rgb)
        white, black = contrast_ratio(lum, 1.0), contrast_ratio(lum, 0.0)
        choice = "white" if p >= 0.5 else "black"
        wcag = "white" if white > black else "black"
        print(
            f"{text:>20s}  p(white) = {p:.3f}  -> {choice} text"
            f"   (WCAG contrast: white {white:.2f}, black {black:.2f}: {wcag})"
        )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    if args.checkpoint.exists():
        model, source = _load(args.checkpoint), f"checkpoint {args.checkpoint}"
    else:
        model, source = build_mlp(rng=args.seed), f"fresh N(0, 0.15) weights, seed {args.seed}"
    checks = label_checks()
    print("the document's 10 training colours, its labels, and WCAG 2 contrast ratios")
    print(label_table(checks))
    print(_disagreement_summary(checks) + "\n")
    matrices = to_augmented(model)
    ours = engine_deltas(model, COLORS, LABELS)
    theirs = handderived.deltas(matrices, COLORS, LABELS)
    print(f"deltas dE/dz on the 10 training colours ({source}); one column per colour")
    print("delta^L = (A^L - y) * sigmoid'(Z^L)")
    print("delta^k = (W^(k+1)^T delta^(k+1))[:-1] * sigmoid'(Z^k)\n")
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
