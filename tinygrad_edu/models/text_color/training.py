r"""Training the worked example and measuring how well it generalises.

The document's recipe: initial weights :math:`N(0, 0.15)`, the error
:math:`E = \frac12 \sum (o - y)^2` over all ten colours (full batch), plain gradient descent with
learning rate 0.2, thousands of iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import nn, optim
from ...graph import no_grad
from ...progress import progress_bar
from ...tensor import Tensor
from .colors import random_colors, wcag_label
from .network import error


@dataclass
class TrainingRun:
    """A finished run: the model and the error before each iteration's update."""

    model: nn.Module
    errors: np.ndarray

    @property
    def best_iteration(self) -> int:
        """1-based iteration whose error was the smallest."""
        return int(np.argmin(self.errors)) + 1

    @property
    def best_error(self) -> float:
        return float(self.errors.min())


def train(
    model: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    iterations: int = 5000,
    lr: float = 0.2,
    progress: bool = False,
) -> TrainingRun:
    """Full-batch gradient descent on the document's error; returns the per-iteration errors."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    optimizer = optim.SGD(model.parameters(), lr=lr)
    dtype = next(iter(model.parameters())).dtype
    x, y = Tensor(np.asarray(X, dtype=dtype)), np.asarray(Y, dtype=dtype)
    errors = np.empty(iterations)
    with progress_bar(iterations, "training", enabled=progress) as bar:
        for i in range(iterations):
            optimizer.zero_grad()
            loss = error(model(x), y)
            loss.backward()
            optimizer.step()
            errors[i] = loss.item()
            if (i + 1) % 100 == 0 or i + 1 == iterations:
                bar.update(100 if (i + 1) % 100 == 0 else (i + 1) % 100)
                bar.set_postfix_str(f"E={errors[i]:.5f}", refresh=False)
    return TrainingRun(model, errors)


@no_grad()
def predict(model: nn.Module, colors: np.ndarray) -> np.ndarray:
    """Probability that white text is best, one per colour (shape ``(n,)``)."""
    dtype = next(iter(model.parameters())).dtype
    return model(Tensor(np.asarray(colors, dtype=dtype).reshape(-1, 3))).data.reshape(-1)


def wcag_agreement(model: nn.Module, count: int = 1000, seed: int = 12345) -> float:
    """Share of ``count`` random colours where the model picks the text colour with the higher
    WCAG 2 contrast ratio (white when its output is >= 0.5)."""
    colors = random_colors(count, seed)
    choices = (predict(model, colors) >= 0.5).astype(np.float64)
    return float(np.mean(choices == wcag_label(colors)))


def wcag_training_set(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random colours with WCAG labels: shapes ``(count, 3)`` and ``(count, 1)``."""
    colors = random_colors(count, seed)
    return colors, wcag_label(colors)[:, None]
