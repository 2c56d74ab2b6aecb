"""The worked example end to end: the document's data and labels (against WCAG 2), its training
run, the engine against the hand-derived gradients, and a few questions. Run:

    python examples/text_color.py

(``TINYGRAD_EDU_FAST=1`` stops after 500 iterations, as the test suite does.)
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
from tinygrad_edu.models.text_color.colors import label_checks, label_table
from tinygrad_edu.models.text_color.training import (
    DOCUMENT_MAX_ITERATION,
    DOCUMENT_SEED,
    predict,
    train,
    wcag_agreement,
)


def main() -> None:
    max_iteration = 500 if os.environ.get("TINYGRAD_EDU_FAST") else DOCUMENT_MAX_ITERATION

    # 1. the document's labels, next to what the WCAG 2 contrast rule picks
    print(label_table(label_checks()))

    # 2. the engine's deltas are the document's hand-derived deltas
    model = build_mlp(rng=DOCUMENT_SEED)
    matrices = to_augmented(model)
    gap = max(
        float(np.abs(a - b).max())
        for a, b in zip(
            engine_deltas(model, COLORS, LABELS), handderived.deltas(matrices, COLORS, LABELS)
        )
    )
    print(f"largest difference engine vs hand-derived deltas: {gap:.1e}")

    # 3. the document's run: full batch, lr 0.2, stop once sum (o - y)^2 <= 0.001
    run = train(model, COLORS, LABELS, max_iteration=max_iteration)
    if run.reached_target:
        print(f"minimum error reached at iteration {run.last_iteration}")
    else:
        print(f"iterations 0..{run.last_iteration}: E = {run.errors[-1]:.5f}")
    print(
        f"agrees with the WCAG contrast rule on {wcag_agreement(model):.1%} of 1000 random colours"
    )

    # 4. ask it
    for text in ["#1e90ff", "rgb(250,235,215)", "#2f4f4f", "#ffd700"]:
        p = predict(model, parse_color(text))[0]
        print(f"  {text:18s} p(white) = {p:.2f} -> {'white' if p >= 0.5 else 'black'} text")


if __name__ == "__main__":
    main()
