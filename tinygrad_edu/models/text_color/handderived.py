r"""The worked example's backward pass, derived by hand and written in plain NumPy.

Nothing here uses the engine: these functions are the independent reference the engine's
gradients are tested against.

Notation (as in the document). Samples are columns. Layer :math:`k` has the augmented matrix
:math:`W^k` (shape ``(out, in + 1)``, bias in the last column) and computes

.. math::
    z^k = W^k \begin{bmatrix} a^{k-1} \\ 1 \end{bmatrix}, \qquad a^k = \sigma(z^k),
    \qquad a^0 = x.

For :math:`E = \frac12 \sum (a^L - y)^2` the chain rule gives, with :math:`\sigma' = a(1 - a)`:

.. math::
    \delta^L = (a^L - y) \odot a^L (1 - a^L)

    \delta^k = \big((W^{k+1})^T \delta^{k+1}\big)_{[:-1]} \odot a^k (1 - a^k)

    \frac{\partial E}{\partial W^k} = \delta^k \begin{bmatrix} a^{k-1} \\ 1 \end{bmatrix}^T

The ``[:-1]`` drops the row that belongs to the bias column: the constant 1 has no delta.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _with_ones(a: np.ndarray) -> np.ndarray:
    """Append the row of ones that multiplies the bias column."""
    return np.vstack([a, np.ones((1, a.shape[1]))])


def _check(matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> None:
    if not matrices:
        raise ValueError("need at least one layer matrix")
    if X.ndim != 2 or X.shape[1] != matrices[0].shape[1] - 1:
        raise ValueError(f"X must have shape (batch, {matrices[0].shape[1] - 1}), got {X.shape}")
    if Y.shape != (X.shape[0], matrices[-1].shape[0]):
        raise ValueError(
            f"Y must have shape ({X.shape[0]}, {matrices[-1].shape[0]}), got {Y.shape}"
        )


def forward(matrices: Sequence[np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """Activations :math:`a^0 = x, a^1, ..., a^L`, each ``(layer_size, batch)``."""
    activations = [np.asarray(X, dtype=np.float64).T]
    for W in matrices:
        activations.append(_sigmoid(W @ _with_ones(activations[-1])))
    return activations


def _backward(
    matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Activations ``a^0..a^L`` and deltas ``delta^L..delta^1`` from one forward pass."""
    matrices = [np.asarray(W, dtype=np.float64) for W in matrices]
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    _check(matrices, X, Y)
    a = forward(matrices, X)
    delta = (a[-1] - Y.T) * a[-1] * (1 - a[-1])
    result = [delta]
    for k in range(len(matrices) - 1, 0, -1):  # W^{k+1} is matrices[k]; a^k is a[k]
        delta = (matrices[k].T @ delta)[:-1] * a[k] * (1 - a[k])
        result.append(delta)
    return a, result


def deltas(matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    r""":math:`\delta^L, ..., \delta^1` (output layer first), each ``(layer_size, batch)``.

    ``X`` is ``(batch, inputs)`` and ``Y`` is ``(batch, outputs)``, like ``COLORS`` and ``LABELS``.
    """
    return _backward(matrices, X, Y)[1]


def weight_gradients(
    matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray
) -> list[np.ndarray]:
    r""":math:`\partial E / \partial W^k` per layer (first layer first), shaped as the matrices."""
    a, per_layer = _backward(matrices, X, Y)
    return [d @ _with_ones(a[k]).T for k, d in enumerate(reversed(per_layer))]


def error(matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    r""":math:`E = \frac12 \sum (a^L - y)^2`."""
    output = forward(matrices, X)[-1]
    return 0.5 * float(np.sum((output - np.asarray(Y, dtype=np.float64).T) ** 2))


def sgd_step(
    matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray, lr: float
) -> list[np.ndarray]:
    """One full-batch gradient-descent step, the document's training loop body."""
    return [W - lr * g for W, g in zip(matrices, weight_gradients(matrices, X, Y))]
