r"""Adamax, PyTorch's definition: Adam with the infinity norm in place of the second moment.

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
    u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
    \theta_t = \theta_{t-1} - \frac{\eta}{1 - \beta_1^t} \frac{m_t}{u_t}

with :math:`g_t` including the L2 weight decay :math:`\lambda \theta`.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    ParamGroup,
    Params,
    StateSpec,
    check_betas,
    check_nonnegative,
    decayed,
)


class Adamax(Optimizer):
    """Adam's variant with the running maximum of :math:`|g|` (Kingma & Ba, section 7)."""

    def __init__(
        self,
        params: Params,
        lr: float = 2e-3,  # eta
        betas: tuple[float, float] = (0.9, 0.999),  # beta_1, beta_2
        eps: float = 1e-8,  # epsilon
        weight_decay: float = 0.0,  # lambda: g + lambda theta
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_betas("Adamax", group)
        check_nonnegative("Adamax", group, "eps", "weight_decay")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "exp_avg": "array", "exp_inf": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_inf"] = np.zeros_like(p.data)
        beta1, beta2 = group["betas"]
        grad = decayed(grad, p, group["weight_decay"])
        state["step"] += 1
        m, u = state["exp_avg"], state["exp_inf"]
        m += (1 - beta1) * (grad - m)
        u *= beta2
        np.maximum(u, np.abs(grad) + group["eps"], out=u)
        p.data -= group["lr"] / (1 - beta1 ** state["step"]) * m / u
