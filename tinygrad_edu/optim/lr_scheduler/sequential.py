"""Schedulers one after another: :class:`SequentialLR` (e.g. a linear warm-up, then cosine).

At each milestone the next scheduler takes over from its own step 0: its rates are set from
its closed form (:meth:`LRScheduler.closed_form_lr`), or its :meth:`LRScheduler.get_lr` at
step 0, exactly as PyTorch does.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..optimizer import Optimizer
from .base import LRScheduler, _is_int


class SequentialLR:
    """Run ``schedulers[i]`` from ``milestones[i - 1]`` (step 0 for the first) on."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: schedulers is empty")
        for index, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(
                    f"SequentialLR: schedulers[{index}] is a {type(scheduler).__name__}, not an "
                    "LRScheduler (ReduceLROnPlateau needs its metric: step it alone)"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{index}] belongs to another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                f"milestones, got {len(milestones)}"
            )
        if not all(_is_int(m) for m in milestones) or milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing ints, got {milestones}")
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ValueError(f"SequentialLR: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:  # undo what constructing the schedulers did
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        first = schedulers[bisect.bisect_right(milestones, 0)]
        first._step_count = 0
        first._is_initial = True
        try:
            first.step()
        finally:
            first._is_initial = False
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        """Step the scheduler in charge; at a milestone, restart the next one."""
        self.last_epoch += 1
        index = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler.restart()
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def get_last_lr(self) -> list[float]:
        """The rates after the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Its counters, milestones and rates, with ``_schedulers`` the list of their states."""
        state = {
            k: copy.deepcopy(v)
            for k, v in self.__dict__.items()
            if k not in ("optimizer", "_schedulers")
        }
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s keys and each scheduler's state (all checked first)."""
        where = "SequentialLR.load_state_dict"
        own = self.state_dict()
        if not isinstance(state_dict, Mapping) or set(state_dict) != set(own):
            raise ValueError(f"{where}: expected a dict with the keys {sorted(own)}")
        saved = state_dict["_schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"{where}: '_schedulers' must hold {len(self._schedulers)} states")
        if state_dict["_milestones"] != self._milestones:
            raise ValueError(f"{where}: the milestones differ from {self._milestones}")
        if not _is_int(state_dict["last_epoch"]) or state_dict["last_epoch"] < 0:
            raise ValueError(f"{where}: 'last_epoch' must be an int >= 0")
        for scheduler, state in zip(self._schedulers, saved):
            scheduler.load_state_dict(state)
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = list(state_dict["_last_lr"])
