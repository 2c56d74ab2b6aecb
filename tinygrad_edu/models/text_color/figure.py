"""The result figure: each colour as a swatch with sample text in the predicted colour (and, for
the document's data, its label and the WCAG 2 choice), plus the error curve. Needs matplotlib
(the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...io.atomic import atomic_write
from .colors import to_hex, wcag_label


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        hint = "the figure needs matplotlib (the 'plot' extra): pip install matplotlib"
        raise ImportError(hint) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_figure(
    path: str | os.PathLike,
    colors: np.ndarray,
    probabilities: np.ndarray,
    names: Sequence[str] | None = None,
    errors: np.ndarray | None = None,
    stop_iteration: int | None = None,
    labels: np.ndarray | None = None,
    title: str = "White or black text? The 3-5-2-1 network trained on the document's colours",
) -> Path:
    """Write the swatches (and the error curve when ``errors`` is given) as a PNG at ``path``.

    With ``labels``, each swatch also says which text colour its label asks for and which one
    WCAG 2 contrast picks, in red where they differ. Returns the path written.
    """
    plt = _pyplot()
    count = len(colors)
    columns = min(count, 5)
    rows = int(np.ceil(count / columns))
    with_curve = errors is not None
    figure = plt.figure(figsize=(2.0 * columns + (4.5 if with_curve else 0), 1.7 * rows + 0.8))
    grid = figure.add_gridspec(rows, columns + (3 if with_curve else 0))
    word = ("black", "white")
    for index, (rgb, p) in enumerate(zip(colors, probabilities)):
        ax = figure.add_subplot(grid[index // columns, index % columns])
        ax.set_facecolor(rgb)
        ax.set_xticks([])
        ax.set_yticks([])
        text_color = "white" if p >= 0.5 else "black"
        ax.text(0.5, 0.62, "Text", color=text_color, ha="center", va="center", fontsize=18)
        ax.text(0.5, 0.28, f"p(white) {p:.2f}", color=text_color, ha="center", fontsize=9)
        name = names[index] if names is not None else to_hex(rgb)
        ax.set_title(name, fontsize=8)
        if labels is not None:
            label, wcag = int(labels[index]), int(wcag_label(rgb))
            ax.set_xlabel(
                f"label {word[label]}, WCAG {word[wcag]}",
                fontsize=7,
                color="black" if label == wcag else "tab:red",
            )
    if with_curve:
        ax = figure.add_subplot(grid[:, columns:])
        ax.plot(np.arange(len(errors)), 2 * np.asarray(errors), color="tab:blue")
        if stop_iteration is not None:
            ax.axvline(
                stop_iteration,
                color="tab:red",
                linestyle=":",
                label=f"minimum error reached at iteration {stop_iteration}",
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("sum (o - y)^2 = 2E")
        ax.set_title("training error", fontsize=10)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
    return Path(path)
