r"""Adam and AdamW, PyTorch's definitions.

With :math:`\beta_1, \beta_2, \epsilon` and the parameter's **own** step count :math:`t`
(the number of updates it has received, not the optimizer's):

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    \theta_t = \theta_{t-1}
        - \eta \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

Adam's weight decay adds :math:`\lambda \theta` to the gradient (L2 regularisation); AdamW
decays the weights directly, :math:`\theta \leftarrow \theta (1 - \eta \lambda)`, before the
update (Loshchilov & Hutter). ``amsgrad`` uses the running maximum of :math:`v_t`.
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
    with_defaults,
)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; optional L2 weight decay and AMSGrad."""

    #: AdamW decays the weights instead of adding the decay to the gradient
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,  # eta
        betas: tuple[float, float] = (0.9, 0.999),  # beta_1, beta_2
        eps: float = 1e-8,  # epsilon
        weight_decay: float = 0.0,  # lambda
        amsgrad: bool = False,  # the running maximum of v_t
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        name = type(self).__name__
        check_betas(name, group)
        check_nonnegative(name, group, "eps", "weight_decay")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        amsgrad = "array" if group["amsgrad"] else "optional"
        return {
            "step": "count",
            "exp_avg": "array",
            "exp_avg_sq": "array",
            "max_exp_avg_sq": amsgrad,
        }

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if self.decoupled_weight_decay:
            p.data *= 1 - lr * weight_decay
        else:
            grad = decayed(grad, p, weight_decay)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        correction1 = 1 - beta1 ** state["step"]
        correction2 = 1 - beta2 ** state["step"]
        denominator = np.sqrt(v) / math.sqrt(correction2) + group["eps"]
        p.data -= (lr / correction1) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=0.01``, as in PyTorch)."""

    decoupled_weight_decay = True
    __init__ = with_defaults(Adam.__init__, weight_decay=1e-2)
