r"""Adagrad, PyTorch's definition.

.. math::
    s_t = s_{t-1} + g_t^2, \quad
    \theta_t = \theta_{t-1} - \frac{\eta}{1 + (t - 1)\,\delta} \frac{g_t}{\sqrt{s_t} + \epsilon}

with learning-rate decay :math:`\delta`, :math:`s_0` = ``initial_accumulator_value`` and
:math:`t` the parameter's own step count.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, StateSpec, check_nonnegative, decayed


class Adagrad(Optimizer):
    """Per-coordinate learning rates that shrink with the accumulated squared gradient."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,  # eta, shrunk to eta / (1 + (t - 1) delta)
        lr_decay: float = 0.0,  # delta
        weight_decay: float = 0.0,  # lambda: g + lambda theta
        initial_accumulator_value: float = 0.0,  # s_0
        eps: float = 1e-10,  # epsilon
        *,
        maximize: bool = False,  # ascend: g_t = -grad
    ) -> None:
        super().__init__(params, locals())

    def check(self, group: ParamGroup) -> None:
        check_nonnegative(
            "Adagrad", group, "lr_decay", "weight_decay", "initial_accumulator_value", "eps"
        )

    def state_spec(self, group: ParamGroup) -> StateSpec:
        return {"step": "count", "sum": "array"}

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
        grad = decayed(grad, p, group["weight_decay"])
        state["step"] += 1
        rate = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        p.data -= rate * grad / (np.sqrt(state["sum"]) + group["eps"])
