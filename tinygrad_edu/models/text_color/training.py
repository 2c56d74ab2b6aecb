r"""Training the worked example like the document, and measuring how well it generalises.

The document's recipe: initial weights :math:`N(0, 0.15)`, the error
:math:`E = \frac12 \sum (o - y)^2` over all ten colours (full batch), plain gradient descent with
learning rate 0.2. Its terminal output reads "Minimum error reached at iteration 9066". That line
belongs to the training loop its network class comes from (not printed in the document):

.. code-block:: text

    for i in range(max_iteration + 1):          # iterations 0, 1, ..., max_iteration
        err = backpropagation(input, output)   # err = sum (o - y)^2 *before* this update
        if err <= target:
            print("Minimum error reached at iteration", i)
            break

so "minimum error" is a *target* error, and ``err`` is the document code's
``error = np.sum(diff**2)``, which is :math:`2E` (the code drops the 1/2 the maths has).
:func:`train` runs exactly this loop; ``docs/text_color.md`` explains how the budget
(:data:`DOCUMENT_MAX_ITERATION`) and the target (:data:`DOCUMENT_TARGET`) were inferred.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ... import nn, optim
from ...graph import no_grad
from ...progress import progress_bar
from ...tensor import Tensor
from .colors import random_colors, wcag_label
from .network import error

#: the last iteration number of the document's loop: iterations 0..100000, at most 100001 updates
DOCUMENT_MAX_ITERATION = 100_000
#: the loop stops at the first iteration whose ``sum (o - y)^2`` (= 2E) is at most this
DOCUMENT_TARGET = 1e-3
#: the document's learning rate
DOCUMENT_LR = 0.2
#: the first seed of :func:`.build_mlp` whose run stops at iteration 9066, as the document's did
#: (its own initial weights are unknown: it drew them unseeded)
DOCUMENT_SEED = 1710

#: ``on_step(iteration, model)`` after each update
StepCallback = Callable[[int, nn.Module], None]


@dataclass
class TrainingRun:
    """A finished run: the model, and :math:`E` before each iteration's update (iteration 0 is
    the first), up to the iteration where the run stopped."""

    model: nn.Module
    errors: np.ndarray
    target: float | None = None

    @property
    def last_iteration(self) -> int:
        """Number of the last iteration run (its update included), counting from 0."""
        return len(self.errors) - 1

    @property
    def reached_target(self) -> bool:
        """True when the run stopped because ``sum (o - y)^2 = 2E`` fell to the target."""
        return self.target is not None and bool(2.0 * self.errors[-1] <= self.target)

    @property
    def finite(self) -> bool:
        """False when the error (and so the weights) went to NaN or infinity."""
        return bool(np.isfinite(self.errors).all())

    @property
    def best_iteration(self) -> int:
        """Iteration (from 0) whose error before its update was the smallest."""
        return int(np.nanargmin(self.errors)) if self.finite else self.last_iteration

    @property
    def best_error(self) -> float:
        return float(np.nanmin(self.errors)) if self.finite else float("nan")


def train(
    model: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    max_iteration: int = DOCUMENT_MAX_ITERATION,
    lr: float = DOCUMENT_LR,
    target: float | None = DOCUMENT_TARGET,
    progress: bool = False,
    on_step: StepCallback | None = None,
) -> TrainingRun:
    r"""The document's loop: full-batch gradient descent on :math:`E`, iterations
    ``0..max_iteration``, stopping after the first iteration whose error before its update
    satisfies :math:`\sum (o - y)^2 = 2E \le` ``target`` (``None``: run them all).

    A run whose error turns NaN or infinite stops there (see :attr:`TrainingRun.finite`).
    """
    if max_iteration < 0:
        raise ValueError(f"max_iteration must be at least 0, got {max_iteration}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    if target is not None and not (np.isfinite(target) and target >= 0):
        raise ValueError(f"target must be a finite number >= 0 or None, got {target}")
    optimizer = optim.SGD(model.parameters(), lr=lr)
    dtype = next(iter(model.parameters())).dtype
    x, y = Tensor(np.asarray(X, dtype=dtype)), np.asarray(Y, dtype=dtype)
    errors = np.empty(max_iteration + 1)
    with progress_bar(max_iteration + 1, "training", enabled=progress) as bar:
        for i in range(max_iteration + 1):
            optimizer.zero_grad()
            loss = error(model(x), y)
            loss.backward()
            optimizer.step()
            errors[i] = loss.item()
            if on_step is not None:
                on_step(i, model)
            stop = not np.isfinite(errors[i]) or (target is not None and 2.0 * errors[i] <= target)
            if (i + 1) % 100 == 0 or stop or i == max_iteration:
                bar.update(i + 1 - bar.n)
                bar.set_postfix_str(f"E={errors[i]:.6f}", refresh=False)
            if stop:
                break
    return TrainingRun(model, errors[: i + 1].copy(), target)


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
