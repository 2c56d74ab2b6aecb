r"""Stochastic gradient descent, PyTorch's definition.

With learning rate :math:`\eta`, momentum :math:`\mu`, dampening :math:`\tau`, weight decay
:math:`\lambda`:

.. math::
    g_t = \nabla_\theta L + \lambda \theta_{t-1}, \quad
    b_t = \mu b_{t-1} + (1 - \tau) g_t \ (b_1 = g_1), \quad
    \theta_t = \theta_{t-1} - \eta \, d_t

with :math:`d_t = b_t`, or :math:`d_t = g_t + \mu b_t` for Nesterov momentum
(:math:`d_t = g_t` without momentum).
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, StateSpec, check_nonnegative, decayed


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay.

    The positional order ``(params, lr, momentum, weight_decay)`` is this library's contract;
    ``dampening`` and ``nesterov`` are keyword-only.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,  # eta
        momentum: float = 0.0,  # mu
        weight_decay: float = 0.0,  # lambda
        *,
        dampening: float = 0.0,  # tau
        nesterov: bool = False,  # d_t = g_t + mu b_t
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_nonnegative("SGD", group, "momentum", "weight_decay", "dampening")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening 0")

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"momentum_buffer": "optional"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        d = decayed(grad, p, group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.array(d, copy=True)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * d
            d = d + momentum * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * d
