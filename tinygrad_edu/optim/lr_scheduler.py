r"""Learning-rate schedulers: set ``group["lr"]`` of an optimizer as training advances.

PyTorch's protocol: construct the scheduler after the optimizer (it records each group's
``initial_lr`` and sets the first rate), call ``optimizer.step()`` then ``scheduler.step()``
once per epoch (or per batch for :class:`OneCycleLR`). As in PyTorch, :class:`StepLR` and
:class:`CosineAnnealingLR` are *chainable*: each step multiplies the group's **current** rate
by the change its schedule makes from step :math:`t - 1` to :math:`t` (counter
``last_epoch``), so several schedulers on one optimizer compose (their factors multiply) instead
of overwriting each other. Alone, they follow the closed forms

* :class:`StepLR` -- :math:`\eta_t = \eta_0 \gamma^{\lfloor t / s \rfloor}`,
* :class:`CosineAnnealingLR` --
  :math:`\eta_t = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})(1 + \cos(\pi t / T))`
  (the factor applies to :math:`\eta - \eta_{min}`),
* :class:`OneCycleLR` -- warm up from ``max_lr / div_factor`` to ``max_lr`` over the first
  ``pct_start`` of the steps, then anneal to ``initial_lr / final_div_factor`` (cosine or
  linear), cycling momentum (or Adam's :math:`\beta_1`) the opposite way; it sets the rate
  outright (PyTorch's OneCycleLR is not chainable either).

>>> import numpy as np
>>> from tinygrad_edu import Tensor, optim
>>> opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(sched.get_last_lr()[0])
...     opt.step()
...     sched.step()
>>> rates
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .optimizer import Optimizer, is_real

__all__ = ["CosineAnnealingLR", "LRScheduler", "OneCycleLR", "StepLR"]


class LRScheduler:
    """Base class: subclasses give :meth:`get_lr`, the rates at step ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer)}")
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ValueError(
                f"{type(self).__name__}: last_epoch must be an int >= -1, got {last_epoch!r}"
            )
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(
                    f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs "
                    f"'initial_lr' in parameter group {index}"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True  # the constructor's step keeps the current rates
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer's groups (nothing
        changes when :meth:`get_lr` raises, e.g. past :class:`OneCycleLR`'s end)."""
        self.last_epoch += 1
        self._step_count += 1
        try:
            rates = self.get_lr()
        except Exception:
            self.last_epoch -= 1
            self._step_count -= 1
            raise
        for group, lr in zip(self.optimizer.param_groups, rates):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def get_last_lr(self) -> list[float]:
        """The rates set by the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (which has its own ``state_dict``)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (all or nothing).

        Only this scheduler's own keys are accepted, each with the structure and kind of the
        current value (finite numbers, flags, strings, lists of the same length), and the counters
        ``last_epoch`` >= -1 and ``_step_count`` >= 0 must be ints; otherwise ``TypeError`` or
        ``ValueError`` names the key and nothing changes.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict()
        unknown = [k for k in state_dict if k not in own]
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {unknown} (a {type(self).__name__} has {sorted(own)})"
            )
        for key, value in state_dict.items():
            problem = _mismatch(value, own[key])
            if problem:
                raise TypeError(f"{where}: {key!r} {problem}")
        for key, low in (("last_epoch", -1), ("_step_count", 0)):
            value = state_dict.get(key, own[key])
            if not _is_int(value) or value < low:
                raise ValueError(f"{where}: {key!r} must be an int >= {low}, got {value!r}")
        self.__dict__.update(copy.deepcopy(dict(state_dict)))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _mismatch(value: Any, like: Any) -> str | None:
    """Why ``value`` does not have the structure and kind of ``like``, or ``None``."""
    if isinstance(like, (bool, np.bool_)):
        ok = isinstance(value, (bool, np.bool_))
    elif isinstance(like, (int, float, np.integer, np.floating)):
        ok = is_real(value)  # a NaN base rate would reach the optimizer's groups
    elif isinstance(like, str):
        ok = isinstance(value, str)
    elif isinstance(like, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(like):
            return f"must be a list of {len(like)} entries, got {value!r}"
        return next(filter(None, (_mismatch(v, w) for v, w in zip(value, like))), None)
    elif isinstance(like, Mapping):
        if not isinstance(value, Mapping) or set(value) != set(like):
            return f"must be a dict with keys {sorted(like)}, got {value!r}"
        return next(filter(None, (_mismatch(value[k], like[k]) for k in like)), None)
    else:
        ok = value is None if like is None else True
    return None if ok else f"must be like {like!r}, got {value!r}"


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


def _number(owner: str, name: str, value: Any, low: float | None = None, strict: bool = False):
    """``TypeError`` unless ``value`` is a finite real number (not a flag or a string),
    ``ValueError`` unless it is ``>= low`` (``> low`` when ``strict``): checked before the
    scheduler changes any parameter group."""
    if not is_real(value):
        raise TypeError(f"{owner}: {name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{owner}: {name} must be {'>' if strict else '>='} {low}, got {value}")


def _per_group(name: str, value: float | list[float], count: int) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"OneCycleLR: {name} has {len(value)} values for {count} groups")
        return list(value)
    return [value] * count
