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

if TYPE_CHECKING:
    from .graph import Op
    from .tensor import Tensor

enabled = False
#: true while a backward sweep runs: ops inside VJPs are then judged by the gradient they produce
#: (attributed to the op whose VJP it is), not as forward results of the user's code
in_backward = False

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared; the message says which op produced it and where it was created."""


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Check every forward result and every gradient for NaN/Inf while the block runs.

    Slower than normal mode (a finiteness check per op and a stack look-up per node); meant for
    debugging a training run that diverges.
    """
    global enabled
    previous, enabled = enabled, True
    try:
        yield
    finally:
        enabled = previous


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


def check_forward(op: Op, inputs: Sequence[Tensor], result: np.ndarray) -> None:
    """Record where ``op`` was created and raise if its forward result is not finite."""
    if in_backward:
        return
    op.created_at = user_code_location()
    if not _finite(result):
        raise AnomalyError(f"forward produced NaN/Inf in {_describe(op, inputs)}")


def check_gradients(op: Op, gradients: Sequence[Tensor | None]) -> None:
    """Raise if the VJP of ``op`` produced a non-finite gradient for any of its inputs."""
    for position, grad in enumerate(gradients):
        if grad is not None and not _finite(grad.data):
            raise AnomalyError(
                f"backward produced NaN/Inf in the gradient for input {position} of "
                f"{_describe(op, op.inputs)}"
            )


def check_seed(grad: Tensor) -> None:
    if not _finite(grad.data):
        raise AnomalyError("the gradient passed to backward() already contains NaN/Inf")
