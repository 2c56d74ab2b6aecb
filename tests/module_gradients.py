"""Gradient checks of a whole module: its parameters become arguments of the checked function.

:func:`tinygrad_edu.gradcheck` perturbs float64 copies of its inputs, so a parameter must reach
the module through the function's arguments, or its finite differences would move nothing and
the check could not fail. :func:`with_parameters` puts them there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.nn import Module

MODES = ("rev", "fwd")


def with_parameters(module: Module) -> tuple[list[Tensor], Callable[[Sequence[Tensor]], None]]:
    """``module``'s parameters, and a function that sets them (in the same order) to tensors."""
    named = list(module.named_parameters())

    def bind(values: Sequence[Tensor]) -> None:
        assert len(values) == len(named), "one value per parameter"
        for (name, _), value in zip(named, values):
            *path, last = name.split(".")
            owner = module
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, last, value)

    return [p for _, p in named], bind


def check_both_orders(fn: Callable, inputs: Sequence[Tensor]) -> None:
    """First order (reverse and forward mode) and second order (reverse over reverse, forward
    over reverse) against central differences in float64."""
    assert tg.gradcheck(fn, inputs, modes=MODES)
    assert tg.gradgradcheck(fn, inputs, modes=MODES)
