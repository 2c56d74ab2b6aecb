"""Several schedulers stepped together: :class:`ChainedScheduler`.

Chainable schedulers multiply the current rate, so stepping them in turn composes their
schedules (their factors multiply). A :class:`SequentialLR`, or another chain, can be one of the
links: anything that steps without an argument. :class:`ReduceLROnPlateau` cannot -- it needs the
metric -- so it is stepped on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..optimizer import Optimizer
from .base import LRScheduler
from .sequential import SequentialLR


class ChainedScheduler:
    """Step every scheduler in ``schedulers`` (all on one optimizer) with one call."""

    def __init__(
        self,
        schedulers: Sequence[LRScheduler | SequentialLR | ChainedScheduler],
        optimizer: Optimizer | None = None,
    ):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler: schedulers is empty")
        for index, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, (LRScheduler, SequentialLR, ChainedScheduler)):
                raise TypeError(
                    f"ChainedScheduler: schedulers[{index}] is a {type(scheduler).__name__}, "
                    "not a scheduler that steps without a metric (an LRScheduler, SequentialLR "
                    "or ChainedScheduler; ReduceLROnPlateau needs its metric: step it alone)"
                )
        optimizer = optimizer or schedulers[0].optimizer
        for index, scheduler in enumerate(schedulers):
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"ChainedScheduler: schedulers[{index}] belongs to another optimizer"
                )
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> None:
        """Step each scheduler in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates after the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """``{"_last_lr": [...], "_schedulers": [each scheduler's state_dict]}``."""
        return {
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load each scheduler's saved state in order."""
        where = "ChainedScheduler.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"_last_lr", "_schedulers"}:
            raise ValueError(f"{where}: expected a dict with '_last_lr' and '_schedulers'")
        saved = state_dict["_schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"{where}: '_schedulers' must hold {len(self._schedulers)} states")
        for scheduler, state in zip(self._schedulers, saved):
            scheduler.load_state_dict(state)
        self._last_lr = list(state_dict["_last_lr"])
