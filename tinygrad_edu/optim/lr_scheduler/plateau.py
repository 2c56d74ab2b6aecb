r"""Reduce the rate when a metric stops improving: :class:`ReduceLROnPlateau`.

Unlike the other schedulers it is stepped with the metric, ``scheduler.step(val_loss)``. A
value is an improvement on the best so far when (mode ``"min"``, ``threshold_mode "rel"``)
:math:`v < b (1 - \text{threshold})`, or :math:`v < b - \text{threshold}` (``"abs"``), mirrored
for ``"max"``. After more than ``patience`` steps without one, every rate becomes
:math:`\max(\eta \cdot \text{factor}, \eta_{min})` (unless that changes it by at most ``eps``),
and ``cooldown`` steps follow in which bad steps are not counted.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from ..optimizer import Optimizer, is_real
from .base import _is_int, _number


class ReduceLROnPlateau:
    """Multiply the rates by ``factor`` when the metric has not improved for ``patience``
    steps (PyTorch's arguments and ``state_dict``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name} needs an Optimizer, got {type(optimizer)}")
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        _number(name, "factor", factor, low=0)
        if factor >= 1:
            raise ValueError(f"{name}: factor must be < 1, got {factor}")
        for key, value in (("patience", patience), ("cooldown", cooldown)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name}: {key} must be an int >= 0, got {value!r}")
        _number(name, "threshold", threshold, low=0)
        _number(name, "eps", eps, low=0)
        count = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != count:
                raise ValueError(f"{name}: min_lr has {len(min_lr)} values for {count} groups")
            min_lrs = list(min_lr)
        else:
            min_lrs = [min_lr] * count
        for value in min_lrs:
            _number(name, "min_lr", value, low=0)
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lrs, self.eps = cooldown, min_lrs, eps
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _is_better(self, value: float) -> bool:
        if self.mode == "min":
            bar = (
                self.best * (1 - self.threshold)
                if self.threshold_mode == "rel"
                else (self.best - self.threshold)
            )
            return value < bar
        bar = (
            self.best * (1 + self.threshold)
            if self.threshold_mode == "rel"
            else (self.best + self.threshold)
        )
        return value > bar

    def step(self, metrics: float) -> None:
        """Record this step's metric; reduce the rates after more than ``patience`` bad ones."""
        try:
            current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        except (TypeError, ValueError):
            raise TypeError(
                f"ReduceLROnPlateau.step: metrics must be a number, got {metrics!r}"
            ) from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, low)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates after the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (which has its own ``state_dict``)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved: the same keys, each of the kind saved
        (``best`` may be infinite, before any step); otherwise nothing changes."""
        where = "ReduceLROnPlateau.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict()
        if set(state_dict) != set(own):
            raise ValueError(f"{where}: expected the keys {sorted(own)}, got {sorted(state_dict)}")
        for key, value in state_dict.items():
            like = own[key]
            if key in ("best", "mode_worse"):
                ok = isinstance(value, (int, float)) and not math.isnan(value)
            elif isinstance(like, str):
                ok = value in (("min", "max") if key == "mode" else ("rel", "abs"))
            elif isinstance(like, list):
                ok = isinstance(value, (list, tuple)) and len(value) == len(like)
                ok = ok and all(is_real(v) for v in value)
            elif _is_int(like):
                ok = _is_int(value) and value >= 0
            else:
                ok = is_real(value)
            if not ok:
                raise ValueError(f"{where}: {key!r} cannot be {value!r}")
        self.__dict__.update(copy.deepcopy(dict(state_dict)))
