r"""The document's forward and backward pass, formula by formula, in plain NumPy.

Nothing here uses the engine: these functions are the independent reference the engine's
gradients are tested against. Names follow the document: :math:`Z^k` (its ``_layer_input``, the
weighted sums before the activation) and :math:`A^k` (its ``_layer_output``), one column per
sample, so each has shape ``(layer_size, batch)``.

Layer :math:`k` has the augmented matrix :math:`W^k` of shape ``(out, in + 1)``, bias in the last
column, and computes (the document's "Forward propagation")

.. math::
    Z^k = W^k \begin{bmatrix} A^{k-1} \\ 1 \cdots 1 \end{bmatrix}, \qquad A^k = \sigma(Z^k),
    \qquad A^0 = INPUT^T.

For :math:`E = \frac12 \sum (A^L - y)^2` (summed over the outputs and the batch) the chain rule
gives (its "Backward propagation"), with :math:`\sigma'(Z) = \sigma(Z) (1 - \sigma(Z))`:

.. math::
    \delta^L = (A^L - y^T) \odot \sigma'(Z^L)

    \delta^k = \big((W^{k+1})^T \delta^{k+1}\big)_{[:-1]} \odot \sigma'(Z^k)

    \frac{\partial E}{\partial W^k} = \sum_{b} \delta^k_{:, b}
        \begin{bmatrix} A^{k-1}_{:, b} \\ 1 \end{bmatrix}^T

computed output layer first. The ``[:-1]`` drops the row that belongs to the bias column: the
constant 1 has no delta. The weight gradient is the sum, over the samples :math:`b` of the
batch, of each sample's outer product of delta and input, as the document's
``np.sum(... , axis=0)`` line computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    r""":math:`\sigma(z) = 1 / (1 + e^{-z})`."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    r""":math:`\sigma'(z) = \sigma(z) (1 - \sigma(z))`, evaluated at the weighted sum ``z``."""
    output = sigmoid(z)
    return output * (1.0 - output)


def with_ones(a: np.ndarray) -> np.ndarray:
    """``a`` (``(size, batch)``) with the row of ones that multiplies the bias column appended."""
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


def forward_pass(
    matrices: Sequence[np.ndarray], X: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weighted sums ``Z^1..Z^L`` and activations ``A^1..A^L``, each ``(layer_size, batch)``.

    ``X`` is ``(batch, inputs)``, one colour per row like ``COLORS``.
    """
    inputs = np.asarray(X, dtype=np.float64).T
    Z: list[np.ndarray] = []
    A: list[np.ndarray] = []
    for W in matrices:
        Z.append(np.asarray(W, dtype=np.float64) @ with_ones(A[-1] if A else inputs))
        A.append(sigmoid(Z[-1]))
    return Z, A


def forward(matrices: Sequence[np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """Activations ``A^0 = X^T, A^1, ..., A^L``, each ``(layer_size, batch)``."""
    return [np.asarray(X, dtype=np.float64).T, *forward_pass(matrices, X)[1]]


def deltas(matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    r""":math:`\delta^L, ..., \delta^1` (output layer first), each ``(layer_size, batch)``.

    ``X`` is ``(batch, inputs)`` and ``Y`` is ``(batch, outputs)``, like ``COLORS`` and ``LABELS``.
    """
    matrices = [np.asarray(W, dtype=np.float64) for W in matrices]
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    _check(matrices, X, Y)
    Z, A = forward_pass(matrices, X)
    output_layer = len(matrices) - 1
    delta: list[np.ndarray] = []
    for k in reversed(range(len(matrices))):  # 0-based: Z[k] is the document's Z^(k+1)
        if k == output_layer:
            delta.append((A[k] - Y.T) * sigmoid_derivative(Z[k]))
        else:
            delta.append((matrices[k + 1].T @ delta[-1])[:-1] * sigmoid_derivative(Z[k]))
    return delta


def weight_gradients(
    matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray
) -> list[np.ndarray]:
    r""":math:`\partial E / \partial W^k` per layer (first layer first), shaped as the matrices.

    Each is the sum over the batch of the per-sample outer products
    :math:`\delta^k_{:, b} [A^{k-1}_{:, b}; 1]^T`.
    """
    delta = deltas(matrices, X, Y)[::-1]  # first layer first
    inputs = forward(matrices, X)[:-1]  # A^0 .. A^(L-1)
    gradients = []
    for d, a in zip(delta, inputs):
        per_sample = d.T[:, :, None] * with_ones(a).T[:, None, :]  # (batch, out, in + 1)
        gradients.append(np.sum(per_sample, axis=0))
    return gradients


def error(matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    r""":math:`E = \frac12 \sum (A^L - y)^2`, summed over the outputs and the batch."""
    output = forward(matrices, X)[-1]
    return 0.5 * float(np.sum((output - np.asarray(Y, dtype=np.float64).T) ** 2))


def sgd_step(
    matrices: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray, lr: float
) -> list[np.ndarray]:
    r"""One full-batch step :math:`W^k \leftarrow W^k - lr\, \partial E / \partial W^k`."""
    return [W - lr * g for W, g in zip(matrices, weight_gradients(matrices, X, Y))]
