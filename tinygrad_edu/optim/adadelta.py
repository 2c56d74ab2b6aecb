r"""Adadelta, PyTorch's definition (Zeiler): step sizes from running averages, no tuning of
:math:`\eta` needed (it only scales the step, default 1).

.. math::
    s_t = \rho s_{t-1} + (1 - \rho) g_t^2, \quad
    \Delta_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}} g_t, \quad
    a_t = \rho a_{t-1} + (1 - \rho) \Delta_t^2, \quad
    \theta_t = \theta_{t-1} - \eta \Delta_t

with :math:`g_t` including the L2 weight decay :math:`\lambda \theta`.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, StateSpec, check_nonnegative, decayed


class Adadelta(Optimizer):
    """Scale each step by the ratio of running RMS of past steps and of gradients."""

    def __init__(
        self,
        params: Params,
        lr: float = 1.0,  # eta
        rho: float = 0.9,  # rho
        eps: float = 1e-6,  # epsilon
        weight_decay: float = 0.0,  # lambda: g + lambda theta
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_nonnegative("Adadelta", group, "eps", "weight_decay")
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Adadelta: rho must lie in [0, 1], got {group['rho']}")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "square_avg": "array", "acc_delta": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        rho, eps = group["rho"], group["eps"]
        grad = decayed(grad, p, group["weight_decay"])
        state["step"] += 1
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p.data -= group["lr"] * delta
