"""Anomaly mode: stop at the first operation whose result or gradient is NaN or infinite.

Inside ``with detect_anomaly():`` every op records the line of user code that created it, every
forward result is checked as it is computed, and every gradient as the backward pass produces it.
The first non-finite value raises :class:`AnomalyError` naming the op, its input shapes and that
line -- so the error points at the cause, not at the loss where the NaN finally shows up.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..graph import Observer, Op, observe

if TYPE_CHECKING:
    from ..tensor import Tensor

#: frames in files under this folder (the whole package) are the engine's, not the user's
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared; the message says which op produced it and where it was created."""


class AnomalyDetector(Observer):
    """The observer behind :func:`detect_anomaly`.

    Ops run inside a VJP (while a sweep is under way) are judged by the gradient they produce,
    attributed to the op whose VJP it is, not as forward results of the user's code.
    """

    def __init__(self) -> None:
        self.sweeps = 0  # nesting depth of backward sweeps (hooks may start another)

    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        if self.sweeps:
            return
        op.created_at = user_code_location()
        if not _finite(out.data):
            raise AnomalyError(f"forward produced NaN/Inf in {_describe(op, inputs)}")

    def backward_started(self, outputs: Sequence[Tensor], seeds: Sequence[Tensor]) -> None:
        self.sweeps += 1
        if not all(_finite(seed.data) for seed in seeds):
            raise AnomalyError("the gradient passed to backward() already contains NaN/Inf")

    def vjp_applied(self, node: Op, out: Tensor, g: Tensor, input_grads: tuple) -> None:
        for position, grad in enumerate(input_grads):
            if grad is not None and not _finite(grad.data):
                raise AnomalyError(
                    f"backward produced NaN/Inf in the gradient for input {position} of "
                    f"{_describe(node, node.inputs)}"
                )

    def backward_finished(self) -> None:
        self.sweeps -= 1


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Check every forward result and every gradient for NaN/Inf while the block runs.

    Slower than normal mode (a finiteness check per op and a stack look-up per node); meant for
    debugging a training run that diverges.
    """
    with observe(AnomalyDetector()):
        yield


def user_code_location() -> str:
    """``file:line (function)`` of the innermost stack frame outside this package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"


def _describe(op: Op, inputs: Sequence[Tensor]) -> str:
    shapes = ", ".join(str(t.shape) for t in inputs) or "none"
    return f"op '{op.name}' (input shapes {shapes}), created at {op.created_at or '<unknown>'}"


def _finite(array: np.ndarray) -> bool:
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())
