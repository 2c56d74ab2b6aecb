"""The worked example end to end: train the 3-5-2-1 network like the document, check it against
the hand-derived gradients, and ask it about a few colours. Run:

    python examples/text_color.py

(``TINYGRAD_EDU_FAST=1`` trains for fewer iterations, as the test suite does.)
"""

from __future__ import annotations

import os

import numpy as np

from tinygrad_edu.models.text_color import (
    COLORS,
    LABELS,
    build_mlp,
    engine_deltas,
    handderived,
    parse_color,
    to_augmented,
)
from tinygrad_edu.models.text_color.training import predict, train, wcag_agreement


def main() -> None:
    iterations = 500 if os.environ.get("TINYGRAD_EDU_FAST") else 5000
    model = build_mlp(rng=0)

    # 1. the engine's deltas are the document's hand-derived deltas
    matrices = to_augmented(model)
    gap = max(
        float(np.abs(a - b).max())
        for a, b in zip(
            engine_deltas(model, COLORS, LABELS), handderived.deltas(matrices, COLORS, LABELS)
        )
    )
    print(f"largest difference engine vs hand-derived deltas: {gap:.1e}")

    # 2. train like the document: full batch, lr 0.2
    run = train(model, COLORS, LABELS, iterations=iterations, lr=0.2)
    print(f"{iterations} iterations: E = {run.errors[-1]:.5f}, minimum at {run.best_iteration}")
    print(
        f"agrees with the WCAG contrast rule on {wcag_agreement(model):.1%} of 1000 random colours"
    )

    # 3. ask it
    for text in ["#1e90ff", "rgb(250,235,215)", "#2f4f4f", "#ffd700"]:
        p = predict(model, parse_color(text))[0]
        print(f"  {text:18s} p(white) = {p:.2f} -> {'white' if p >= 0.5 else 'black'} text")


if __name__ == "__main__":
    main()
