r"""RMSprop, PyTorch's definition.

.. math::
    s_t = \alpha s_{t-1} + (1 - \alpha) g_t^2, \quad
    \theta_t = \theta_{t-1} - \eta \frac{g_t}{\sqrt{s_t} + \epsilon}

``centered`` divides by the estimated standard deviation :math:`\sqrt{s_t - \bar g_t^2}`
instead (with :math:`\bar g_t` the running mean of the gradient); ``momentum`` accumulates the
step :math:`b_t = \mu b_{t-1} + g_t / (\sqrt{s_t} + \epsilon)` and applies
:math:`\theta_t = \theta_{t-1} - \eta b_t`.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, StateSpec, check_nonnegative, decayed


class RMSprop(Optimizer):
    """Divide the gradient by a running root mean square of recent gradients (Hinton)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,  # eta
        alpha: float = 0.99,  # alpha
        eps: float = 1e-8,  # epsilon
        weight_decay: float = 0.0,  # lambda: g + lambda theta
        momentum: float = 0.0,  # mu
        centered: bool = False,  # divide by sqrt(s_t - mean(g)^2)
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_nonnegative("RMSprop", group, "alpha", "eps", "weight_decay", "momentum")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {
            "step": "count",
            "square_avg": "array",
            "momentum_buffer": "array" if group["momentum"] > 0 else "optional",
            "grad_avg": "array" if group["centered"] else "optional",
        }

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        grad = decayed(grad, p, group["weight_decay"])
        alpha = group["alpha"]
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            average = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            average = np.sqrt(square_avg)
        average += group["eps"]
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += grad / average
            p.data -= group["lr"] * buffer
        else:
            p.data -= group["lr"] * grad / average
