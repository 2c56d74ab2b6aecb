"""The result figure: each colour as a swatch with sample text in the predicted colour, plus the
error curve. Needs matplotlib (the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...io.atomic import atomic_write
from .colors import to_hex


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("the figure needs matplotlib: pip install 'tinygrad_edu[plot]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_figure(
    path: str | os.PathLike,
    colors: np.ndarray,
    probabilities: np.ndarray,
    names: Sequence[str] | None = None,
    errors: np.ndarray | None = None,
    best_iteration: int | None = None,
    title: str = "White or black text? The 3-5-2-1 network's choices",
) -> None:
    """Write the swatches (and the error curve when ``errors`` is given) as a PNG at ``path``."""
    plt = _pyplot()
    count = len(colors)
    columns = min(count, 5)
    rows = int(np.ceil(count / columns))
    with_curve = errors is not None
    figure = plt.figure(figsize=(2.0 * columns + (4.5 if with_curve else 0), 1.5 * rows + 0.8))
    grid = figure.add_gridspec(rows, columns + (3 if with_curve else 0))
    for index, (rgb, p) in enumerate(zip(colors, probabilities)):
        ax = figure.add_subplot(grid[index // columns, index % columns])
        ax.set_facecolor(rgb)
        ax.set_xticks([])
        ax.set_yticks([])
        text_color = "white" if p >= 0.5 else "black"
        ax.text(0.5, 0.6, "Text", color=text_color, ha="center", va="center", fontsize=18)
        ax.text(0.5, 0.25, f"p(white) {p:.2f}", color=text_color, ha="center", fontsize=9)
        label = names[index] if names is not None else to_hex(rgb)
        ax.set_title(label, fontsize=8)
    if with_curve:
        ax = figure.add_subplot(grid[:, columns:])
        iterations = np.arange(1, len(errors) + 1)
        ax.plot(iterations, errors, color="tab:blue")
        if best_iteration is not None:
            ax.axvline(
                best_iteration, color="tab:red", linestyle=":", label=f"minimum at {best_iteration}"
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("E = 1/2 sum (o - y)^2")
        ax.set_title("training error", fontsize=10)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
