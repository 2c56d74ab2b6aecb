"""The 1cycle policy: :class:`OneCycleLR`."""

from __future__ import annotations

import math
from typing import Any

from ..optimizer import Optimizer
from .base import LRScheduler, _number, _per_group


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin); step it after every batch, ``total_steps`` times.

    Give ``total_steps``, or ``epochs`` and ``steps_per_epoch``. ``max_lr`` may be one number or
    one per group. With ``cycle_momentum`` the optimizer's ``momentum`` (or Adam's first beta)
    moves from ``max_momentum`` to ``base_momentum`` while the rate rises, and back.
    ``three_phase`` adds a final phase annealing from the initial rate to the minimum.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            _number("OneCycleLR", "epochs", epochs, low=1)
            _number("OneCycleLR", "steps_per_epoch", steps_per_epoch, low=1)
            total_steps = epochs * steps_per_epoch
        _number("OneCycleLR", "total_steps", total_steps, low=1)
        for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            _number("OneCycleLR", name, value, low=0, strict=True)  # divisors
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must lie in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy 'cos' or 'linear', not {anneal_strategy}"
            )
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        warmup_end = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [
                (warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * warmup_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self.phases = [
                (warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group("max_lr", max_lr, len(groups))
        maxima = _per_group("max_momentum", max_momentum, len(groups))
        bases = _per_group("base_momentum", base_momentum, len(groups))
        for name, values in (
            ("max_lr", max_lrs),
            ("max_momentum", maxima),
            ("base_momentum", bases),
        ):
            for value in values:
                _number("OneCycleLR", name, value)
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and "momentum" not in optimizer.defaults and not self.use_beta1:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
        if last_epoch == -1:
            for group, top, top_momentum, low_momentum in zip(groups, max_lrs, maxima, bases):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
                if cycle_momentum:
                    self._set_momentum(group, top_momentum)
                    group["max_momentum"], group["base_momentum"] = top_momentum, low_momentum
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step} times, more than total_steps={self.total_steps}"
            )
        rates = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for index, (end, lr_from, lr_to, m_from, m_to) in enumerate(self.phases):
                if step <= end or index == len(self.phases) - 1:
                    fraction = (step - start) / (end - start)
                    rates.append(self._anneal(group[lr_from], group[lr_to], fraction))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[m_from], group[m_to], fraction)
                        self._set_momentum(group, momentum)
                    break
                start = end
        return rates
