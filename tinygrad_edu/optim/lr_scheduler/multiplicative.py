r"""Schedules that multiply the rate by a factor at chosen steps (PyTorch's chainable forms).

Alone, with :math:`\eta_0` the initial rate:

* :class:`StepLR` -- :math:`\eta_t = \eta_0 \gamma^{\lfloor t / s \rfloor}`,
* :class:`MultiStepLR` -- :math:`\eta_t = \eta_0 \gamma^{k}`, :math:`k` the milestones
  :math:`\le t` (a milestone given twice counts twice),
* :class:`ExponentialLR` -- :math:`\eta_t = \eta_0 \gamma^t`,
* :class:`LinearLR` -- the factor moves linearly from ``start_factor`` to ``end_factor``
  over ``total_iters`` steps, then stays,
* :class:`ConstantLR` -- :math:`\eta_0 \cdot` ``factor`` until step ``total_iters``, then
  :math:`\eta_0`,
* :class:`PolynomialLR` -- :math:`\eta_t = \eta_0 (1 - \min(t, T) / T)^p`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..optimizer import Optimizer
from .base import LRScheduler, _is_int, _number


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _number("StepLR", "step_size", step_size, low=1)
        _number("StepLR", "gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma`` when ``last_epoch`` is a multiple of the step."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each of the ``milestones`` (steps)."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        milestones = list(milestones)
        if not all(_is_int(m) for m in milestones):
            raise TypeError(f"MultiStepLR: milestones must be ints, got {milestones!r}")
        _number("MultiStepLR", "gamma", gamma)
        self.milestones = dict(Counter(int(m) for m in milestones))
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates, times ``gamma`` once per milestone at ``last_epoch``."""
        times = self.milestones.get(self.last_epoch, 0)
        if not times:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        passed = sum(n for m, n in self.milestones.items() if m <= self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _number("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate by a factor moving linearly from ``start_factor`` (in (0, 1]) to
    ``end_factor`` (in [0, 1]) over ``total_iters`` steps: a warm-up or a linear decay."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        _number("LinearLR", "start_factor", start_factor, low=0, strict=True)
        _number("LinearLR", "end_factor", end_factor, low=0)
        _number("LinearLR", "total_iters", total_iters, low=1)
        if start_factor > 1 or end_factor > 1:
            raise ValueError(
                f"LinearLR: start_factor and end_factor must be <= 1, got "
                f"{start_factor} and {end_factor}"
            )
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The ratio of consecutive factors times the current rates."""
        t, start, end = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return [lr * start for lr in self._current_lrs()]
        if self._is_initial or t > self.total_iters:
            return self._current_lrs()
        ratio = 1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start))
        return [lr * ratio for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        t, start, end = min(self.last_epoch, self.total_iters), self.start_factor, self.end_factor
        return [base * (start + (end - start) * t / self.total_iters) for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Scale the rate by ``factor`` (in [0, 1]) for the first ``total_iters`` steps."""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        _number("ConstantLR", "factor", factor, low=0, strict=True)
        _number("ConstantLR", "total_iters", total_iters, low=0)
        if factor > 1:
            raise ValueError(f"ConstantLR: factor must lie in (0, 1], got {factor}")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr / self.factor for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        factor = 1.0 if self.last_epoch >= self.total_iters else self.factor
        return [base * factor for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the rate to 0 over ``total_iters`` steps as :math:`(1 - t / T)^p`."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        _number("PolynomialLR", "total_iters", total_iters, low=1)
        _number("PolynomialLR", "power", power)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T = self.last_epoch, self.total_iters
        if self._is_initial or t > T:
            return self._current_lrs()
        factor = ((1.0 - t / T) / (1.0 - (t - 1) / T)) ** self.power
        return [lr * factor for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        t, T = min(self.last_epoch, self.total_iters), self.total_iters
        return [base * (1.0 - t / T) ** self.power for base in self.base_lrs]
