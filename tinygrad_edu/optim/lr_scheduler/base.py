"""The :class:`LRScheduler` base: stepping, ``get_last_lr``, checked ``state_dict`` round trips."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..optimizer import Optimizer, is_real


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
        self._set_rates(rates)

    def _set_rates(self, rates: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, rates):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def closed_form_lr(self) -> list[float] | None:
        """The rates at ``last_epoch`` from the initial rates alone, for schedulers that have a
        closed form (``None`` otherwise): what :class:`SequentialLR` sets at a milestone."""
        return None

    def restart(self) -> None:
        """Jump to step 0 (``last_epoch = 0``) and set its rates, from the closed form when
        there is one, as PyTorch's :class:`SequentialLR` does at each milestone."""
        self.last_epoch = 0
        closed = self.closed_form_lr()
        self._set_rates(self.get_lr() if closed is None else closed)

    def get_last_lr(self) -> list[float]:
        """The rates set by the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    #: attributes :meth:`state_dict` leaves out (the optimizer has its own ``state_dict``)
    _not_saved: frozenset[str] = frozenset({"optimizer"})

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (which has its own ``state_dict``)."""
        return copy.deepcopy(self._saved())

    def _saved(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._not_saved}

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
        own = self._saved()
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


def _number(owner: str, name: str, value: Any, low: float | None = None, strict: bool = False):
    """``TypeError`` unless ``value`` is a finite real number (not a flag or a string),
    ``ValueError`` unless it is ``>= low`` (``> low`` when ``strict``): checked before the
    scheduler changes any parameter group."""
    if not is_real(value):
        raise TypeError(f"{owner}: {name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{owner}: {name} must be {'>' if strict else '>='} {low}, got {value}")


def _per_group(
    name: str, value: float | list[float], count: int, owner: str = "OneCycleLR"
) -> list[float]:
    """``value`` once per parameter group: a list of ``count``, or one number repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{owner}: {name} has {len(value)} values for {count} groups")
        return list(value)
    return [value] * count
