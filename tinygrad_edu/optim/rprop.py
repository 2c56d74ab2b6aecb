r"""Rprop, PyTorch's definition (Riedmiller & Braun): only the gradient's sign is used.

Each coordinate keeps its own step size :math:`\delta`, starting at :math:`\eta`: multiplied by
:math:`\eta_+` when the gradient keeps its sign, by :math:`\eta_-` when it flips (and that
coordinate then pauses one step, its gradient treated as 0), clamped to ``step_sizes``:

.. math::
    \theta_t = \theta_{t-1} - \delta_t \operatorname{sign}(g_t)
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, StateSpec


class Rprop(Optimizer):
    """Resilient backpropagation: per-coordinate steps adapted from gradient signs (full batch)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,  # the initial step size
        etas: tuple[float, float] = (0.5, 1.2),  # eta_-, eta_+
        step_sizes: tuple[float, float] = (1e-6, 50.0),  # the smallest and largest step
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        minus, plus = group["etas"]
        if not 0.0 < minus < 1.0 < plus:
            raise ValueError(f"Rprop: etas must satisfy 0 < eta_- < 1 < eta_+, got {group['etas']}")
        low, high = group["step_sizes"]
        if not 0.0 <= low <= high:
            raise ValueError(
                f"Rprop: step_sizes must satisfy 0 <= min <= max, got {group['step_sizes']}"
            )

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "prev": "array", "step_size": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["prev"] = np.zeros_like(p.data)
            state["step_size"] = np.full_like(p.data, group["lr"])
        minus, plus = group["etas"]
        state["step"] += 1
        agreement = np.sign(grad * state["prev"])
        factor = np.where(agreement > 0, plus, np.where(agreement < 0, minus, 1.0))
        step_size = state["step_size"]
        step_size *= factor
        np.clip(step_size, *group["step_sizes"], out=step_size)
        grad = np.where(agreement < 0, 0.0, grad).astype(p.data.dtype, copy=False)
        p.data -= np.sign(grad) * step_size
        state["prev"][...] = grad
