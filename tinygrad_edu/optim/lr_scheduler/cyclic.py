r"""Cyclical learning rates (Smith): :class:`CyclicLR`.

The rate goes up from ``base_lr`` to ``max_lr`` over ``step_size_up`` steps and back over
``step_size_down``, with amplitude scaled per cycle :math:`c` (from 1) or per step :math:`t`:

* ``"triangular"`` -- 1,
* ``"triangular2"`` -- :math:`2^{-(c - 1)}` (halved every cycle),
* ``"exp_range"`` -- :math:`\gamma^t`,

or by a ``scale_fn`` of your own. With ``cycle_momentum``, momentum (or Adam's :math:`\beta_1`)
moves the opposite way between ``max_momentum`` and ``base_momentum``. Step it every batch.
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable, Mapping
from typing import Any

from ..optimizer import Optimizer
from .base import LRScheduler, _number, _per_group

MODES = ("triangular", "triangular2", "exp_range")


class CyclicLR(LRScheduler):
    """Cycle the rate between ``base_lr`` and ``max_lr`` (each one number or one per group)."""

    _not_saved = frozenset({"optimizer", "_scale_fn_custom"})

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        name = "CyclicLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} needs an Optimizer, got {type(optimizer)}")
        groups = optimizer.param_groups
        base_lrs = _per_group("base_lr", base_lr, len(groups), name)
        max_lrs = _per_group("max_lr", max_lr, len(groups), name)
        for key, values in (("base_lr", base_lrs), ("max_lr", max_lrs)):
            for value in values:
                _number(name, key, value, low=0)
        _number(name, "step_size_up", step_size_up, low=0, strict=True)
        if step_size_down is not None:
            _number(name, "step_size_down", step_size_down, low=0)
        if scale_fn is None and mode not in MODES:
            raise ValueError(
                f"{name}: mode must be one of {MODES} (or give scale_fn), got {mode!r}"
            )
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"{name}: scale_fn must be callable, got {scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(
                f"{name}: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}"
            )
        _number(name, "gamma", gamma)
        use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and not use_beta1:
                raise ValueError(
                    f"{name}: cycle_momentum needs an optimizer with momentum or betas"
                )
            self.base_momentums = _per_group("base_momentum", base_momentum, len(groups), name)
            self.max_momentums = _per_group("max_momentum", max_momentum, len(groups), name)
            for value in (*self.base_momentums, *self.max_momentums):
                _number(name, "momentum", value, low=0)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.max_lrs = max_lrs
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else _MODE_SCALE[mode]
        self.cycle_momentum, self.use_beta1 = cycle_momentum, use_beta1
        if last_epoch == -1:
            for group, lr in zip(groups, base_lrs):
                group["lr"] = lr
            if cycle_momentum:
                for group, top, low in zip(groups, self.max_momentums, self.base_momentums):
                    self._set_momentum(group, top)
                    group["max_momentum"], group["base_momentum"] = top, low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        cycle = math.floor(1 + t / self.total_size)
        x = 1.0 + t / self.total_size - cycle
        rising = x <= self.step_ratio
        height = x / self.step_ratio if rising else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else t)
        rates = [
            base + (top - base) * height * scale for base, top in zip(self.base_lrs, self.max_lrs)
        ]
        if self.cycle_momentum:
            for group, low, top in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums
            ):
                self._set_momentum(group, top - (top - low) * height * scale)
        return rates

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`; a custom ``scale_fn`` is saved as PyTorch saves
        it: ``None`` for a plain function, the attributes of a callable object."""
        state = super().state_dict()
        custom = self._scale_fn_custom
        state["_scale_fn_custom"] = (
            None
            if custom is None or isinstance(custom, types.FunctionType)
            else copy.deepcopy(vars(custom))
        )
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        where = "CyclicLR.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        state = dict(state_dict)
        custom = state.pop("_scale_fn_custom", None)
        if custom is not None and not (
            isinstance(custom, Mapping) and hasattr(self._scale_fn_custom, "__dict__")
        ):
            raise TypeError(f"{where}: '_scale_fn_custom' must be None or a dict, got {custom!r}")
        if state.get("mode", self.mode) not in MODES and self._scale_fn_custom is None:
            raise ValueError(f"{where}: 'mode' must be one of {MODES}")
        super().load_state_dict(state)
        if custom is not None:
            vars(self._scale_fn_custom).update(copy.deepcopy(dict(custom)))


#: the scale mode each built-in mode implies
_MODE_SCALE = {"triangular": "cycle", "triangular2": "cycle", "exp_range": "iterations"}
