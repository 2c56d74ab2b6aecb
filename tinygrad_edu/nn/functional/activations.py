"""Activation functions, as in ``torch.nn.functional``."""

from __future__ import annotations

from ...tensor import Tensor

__all__ = ["relu", "sigmoid", "tanh"]


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def relu(x: Tensor) -> Tensor:
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()
