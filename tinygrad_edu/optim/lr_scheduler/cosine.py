r"""Cosine annealing: :class:`CosineAnnealingLR` and :class:`CosineAnnealingWarmRestarts`."""

from __future__ import annotations

import math

from ..optimizer import Optimizer
from .base import LRScheduler, _is_int, _number


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the initial rate down to ``eta_min`` over ``T_max`` steps."""

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _number("CosineAnnealingLR", "T_max", T_max, low=1)
        _number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """PyTorch's recursive form: the current rate's distance to ``eta_min`` scaled by the
        ratio of consecutive cosine terms (the closed form when resuming at the first step)."""
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            cosine = (1 + math.cos(t * math.pi / T)) / 2
            return [low + (base - low) * cosine for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:  # the bottom of the cosine: the ratio would be 0 / 0
            rise = (1 - math.cos(math.pi / T)) / 2
            return [
                lr + (base - low) * rise for lr, base in zip(self._current_lrs(), self.base_lrs)
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [low + (lr - low) * ratio for lr in self._current_lrs()]

    def closed_form_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing restarted every cycle (SGDR, Loshchilov & Hutter):
    :math:`\eta_t = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})(1 + \cos(\pi T_{cur} / T_i))`,
    with :math:`T_{cur}` the steps since the last restart and cycles of ``T_0``,
    ``T_0 * T_mult``, ``T_0 * T_mult**2``, ... steps."""

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        for name, value in (("T_0", T_0), ("T_mult", T_mult)):
            if not _is_int(value) or value < 1:
                raise ValueError(
                    f"CosineAnnealingWarmRestarts: {name} must be an int >= 1, got {value!r}"
                )
        _number("CosineAnnealingWarmRestarts", "eta_min", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def step(self) -> None:
        """Advance :math:`T_{cur}` (restarting, with a cycle ``T_mult`` times longer, when it
        reaches :math:`T_i`), then set the rates."""
        if self.last_epoch < 0:
            self.T_i, self.T_cur = self.T_0, 0
        else:
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        super().step()

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]
