r"""Optimizers: turn the gradients in ``.grad`` into parameter updates.

Updates happen in place on ``parameter.data`` (plain NumPy: they are never part of the graph).
Parameters whose ``.grad`` is ``None`` are skipped.

SGD, with learning rate :math:`\eta`, momentum :math:`\mu`, weight decay :math:`\lambda`:

.. math::
    g_t = \nabla_\theta L + \lambda \theta_{t-1}, \quad
    v_t = \mu v_{t-1} + g_t \ (v_1 = g_1), \quad
    \theta_t = \theta_{t-1} - \eta v_t

Adam, with :math:`\beta_1, \beta_2, \epsilon`:

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    \theta_t = \theta_{t-1}
        - \eta \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

Both follow PyTorch's definitions exactly, so results can be compared step by step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from .tensor import Tensor


class Optimizer:
    """Holds the parameters and per-parameter state; subclasses implement :meth:`step`."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for position, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameter {position} is a "
                    f"{type(p).__name__}, not a Tensor"
                )
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def zero_grad(self) -> None:
        """Clear ``.grad`` of every parameter (set to ``None``)."""
        for p in self.params:
            p.grad = None

    def gradients(self, weight_decay: float = 0.0) -> Iterator[tuple[Tensor, np.ndarray]]:
        """``(parameter, gradient + weight_decay * parameter)`` for parameters that have a grad."""
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad.data
            yield p, (g + weight_decay * p.data if weight_decay else g)

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay."""

    def __init__(
        self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}"
            )
        self.momentum, self.weight_decay = momentum, weight_decay

    def step(self) -> None:
        for p, g in self.gradients(self.weight_decay):
            if self.momentum:
                state = self.state.setdefault(id(p), {})
                if "velocity" in state:
                    velocity = state["velocity"]
                    velocity *= self.momentum
                    velocity += g
                else:
                    velocity = state["velocity"] = np.array(g, copy=True)
                g = velocity
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; optional L2 weight decay added to the gradient."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.steps
        correction2 = 1 - beta2**self.steps
        for p, g in self.gradients(self.weight_decay):
            state = self.state.setdefault(id(p), {})
            m = state.setdefault("m", np.zeros_like(p.data))
            v = state.setdefault("v", np.zeros_like(p.data))
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p.data -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
