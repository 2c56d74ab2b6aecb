r"""Schedules given by functions of the step: :class:`LambdaLR` and :class:`MultiplicativeLR`.

:class:`LambdaLR` sets :math:`\eta_t = \eta_0 \lambda(t)`; :class:`MultiplicativeLR` multiplies
the current rate, :math:`\eta_t = \eta_{t-1} \lambda(t)`. As in PyTorch, ``state_dict`` cannot
hold plain functions: it keeps ``None`` for each, or the attributes (``__dict__``) of a callable
object, which ``load_state_dict`` restores into the scheduler's own callables.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Mapping
from typing import Any

from ..optimizer import Optimizer
from .base import LRScheduler

RateFunction = Callable[[int], float]


class _FunctionSchedule(LRScheduler):
    """Shared by the two: one function per parameter group, saved as PyTorch saves them."""

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: RateFunction | list[RateFunction],
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        count = len(getattr(optimizer, "param_groups", []))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != count:
                raise ValueError(f"{name}: expected {count} lr_lambdas, got {len(lr_lambda)}")
            functions = list(lr_lambda)
        else:
            functions = [lr_lambda] * count
        for function in functions:
            if not callable(function):
                raise TypeError(f"{name}: lr_lambda must be callable, got {function!r}")
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    _not_saved = frozenset({"optimizer", "lr_lambdas"})

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`, with ``lr_lambdas`` ``None`` for each plain
        function and a copy of ``__dict__`` for each callable object."""
        state = super().state_dict()
        state["lr_lambdas"] = [
            None if isinstance(f, types.FunctionType) else copy.deepcopy(vars(f))
            for f in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """As :meth:`LRScheduler.load_state_dict`; each saved ``lr_lambdas`` dict updates the
        attributes of the scheduler's callable object at that position."""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.lr_lambdas):
            raise ValueError(f"{where}: 'lr_lambdas' must be a list of {len(self.lr_lambdas)}")
        for entry, function in zip(saved, self.lr_lambdas):
            if entry is not None and not (
                isinstance(entry, Mapping) and hasattr(function, "__dict__")
            ):
                raise TypeError(
                    f"{where}: an 'lr_lambdas' entry must be None, or a dict for a callable "
                    f"object, got {entry!r}"
                )
        super().load_state_dict(state)
        for function, entry in zip(self.lr_lambdas, saved):
            if entry is not None:
                vars(function).update(copy.deepcopy(dict(entry)))


class LambdaLR(_FunctionSchedule):
    """The initial rate times ``lr_lambda(t)`` (one function, or one per group)."""

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_FunctionSchedule):
    """The current rate times ``lr_lambda(t)`` at every step after the first."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * f(self.last_epoch) for f, lr in zip(self.lr_lambdas, self._current_lrs())]
