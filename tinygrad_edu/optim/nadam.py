r"""NAdam, PyTorch's definition (Dozat): Adam with Nesterov momentum.

With the momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12 \cdot 0.96^{t \psi})`
(:math:`\psi` = ``momentum_decay``) and its running product :math:`\Pi_t = \prod_{i \le t} \mu_i`:

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    \theta_t = \theta_{t-1} - \eta \Big(\frac{(1 - \mu_t) g_t}{1 - \Pi_t}
        + \frac{\mu_{t+1} m_t}{1 - \Pi_t \mu_{t+1}}\Big)
        \Big/ \Big(\sqrt{v_t / (1 - \beta_2^t)} + \epsilon\Big)

Weight decay is L2 (added to :math:`g_t`), or decoupled as AdamW's with
``decoupled_weight_decay``.
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


class NAdam(Optimizer):
    """Adam whose momentum looks one step ahead, with a warming momentum schedule."""

    def __init__(
        self,
        params: Params,
        lr: float = 2e-3,  # eta
        betas: tuple[float, float] = (0.9, 0.999),  # beta_1, beta_2
        eps: float = 1e-8,  # epsilon
        weight_decay: float = 0.0,  # lambda
        momentum_decay: float = 4e-3,  # psi
        decoupled_weight_decay: bool = False,  # theta (1 - eta lambda), as AdamW
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_betas("NAdam", group)
        check_nonnegative("NAdam", group, "eps", "weight_decay", "momentum_decay")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "mu_product": "number", "exp_avg": "array", "exp_avg_sq": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if group["decoupled_weight_decay"]:
            p.data *= 1 - lr * weight_decay
        else:
            grad = decayed(grad, p, weight_decay)
        state["step"] += 1
        t, psi = state["step"], group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] *= mu
        product = state["mu_product"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * grad * grad
        denominator = np.sqrt(v / (1 - beta2**t)) + group["eps"]
        p.data -= lr * (1.0 - mu) / (1.0 - product) * grad / denominator
        p.data -= lr * mu_next / (1.0 - product * mu_next) * m / denominator
