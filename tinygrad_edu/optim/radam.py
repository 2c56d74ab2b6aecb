r"""RAdam, PyTorch's definition (Liu et al.): Adam with the variance of its adaptive rate
rectified, so early steps need no warm-up.

With :math:`\rho_\infty = 2 / (1 - \beta_2) - 1` and
:math:`\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)`, the step is
:math:`\eta \hat m_t` (plain momentum) while :math:`\rho_t \le 5`, and afterwards

.. math::
    \eta \, \hat m_t \, r_t \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}, \qquad
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                     {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

with :math:`\hat m_t = m_t / (1 - \beta_1^t)`. Weight decay is L2, or decoupled with
``decoupled_weight_decay``.
"""

from __future__ import annotations

import math

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


class RAdam(Optimizer):
    """Rectified Adam."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,  # eta
        betas: tuple[float, float] = (0.9, 0.999),  # beta_1, beta_2
        eps: float = 1e-8,  # epsilon
        weight_decay: float = 0.0,  # lambda
        decoupled_weight_decay: bool = False,  # theta (1 - eta lambda), as AdamW
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_betas("RAdam", group)
        check_nonnegative("RAdam", group, "eps", "weight_decay")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "exp_avg": "array", "exp_avg_sq": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if group["decoupled_weight_decay"]:
            p.data *= 1 - lr * weight_decay
        else:
            grad = decayed(grad, p, weight_decay)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * grad * grad
        corrected = m / (1 - beta1**t)
        correction2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / correction2
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            adaptive = math.sqrt(correction2) / (np.sqrt(v) + group["eps"])
            p.data -= corrected * lr * adaptive * rect
        else:
            p.data -= corrected * lr
