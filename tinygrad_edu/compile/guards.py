"""The guards: what a replay checks before it runs, so a stale program never runs.

A program was recorded against particular objects. Before every replay, :func:`guard_check`
makes sure they are still what the recording saw, else it raises
:class:`~tinygrad_edu.compile.reasons.StaleGuard` and the call records afresh:

* every **state tensor** (a parameter, a buffer) still has its recorded shape, dtype and
  ``requires_grad``, and no hooks; its current array is loaded into its register;
* every **module** the step reached still holds the very same objects in every attribute and
  member table (``_parameters``, ``_buffers``, ``_modules``): ``model.eval()`` rebinds
  ``training``, ``dropout.p = 0.2`` rebinds ``p``, a replaced parameter is another object;
  nor has it gained or lost an attribute, or a hook (:func:`module_state`).

Modules are compared by identity (``is``), never by ``==``: on Tensors that would compare values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import getitem, is_
from typing import Any

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor
from .reasons import StaleGuard

#: a module's member tables: guarded item by item like its attributes
_MEMBER_TABLES = ("_parameters", "_buffers", "_modules")


def module_state(module: Module) -> tuple:
    """What a module's forward depends on besides its inputs: the object each attribute holds
    (its ``training`` flag, parameters, buffers, sub-modules, settings such as ``p`` or
    ``momentum``: any rebinding shows), and the contents of its hook containers (every
    attribute named ``*hook*``, which change in place). Objects, not ids: the state keeps them
    alive, so a new object can never pass for a recorded one."""
    hook_names = tuple(name for name in module.__dict__ if "hook" in name)
    held = tuple((name, value) for table in _tables(module) for name, value in table.items())
    return held, hook_names, _hooks_of(module, hook_names)


def _tables(module: Module) -> list[dict]:
    """A module's attributes and its member tables, which a forward may read directly
    (``Sequential`` runs ``_modules.values()``)."""
    return [module.__dict__, *(member(module, name) for name in _MEMBER_TABLES)]


def member(module: Module, table: str) -> dict:
    """One of a module's member tables; empty if it has none (``__init__`` without
    ``super().__init__()``)."""
    found = module.__dict__.get(table)
    return found if isinstance(found, dict) else {}


def _hooks_of(module: Module, names: tuple[str, ...]) -> tuple:
    hooks: list[Any] = []
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, dict):
            value = value.values()
        hooks.append(tuple(value) if isinstance(value, Iterable) else value)
    return tuple(hooks)


def same_state(a: tuple, b: tuple) -> bool:
    """Two :func:`module_state` results hold the very same objects (``==`` on a Tensor would
    compare values)."""
    (held_a, names_a, hooks_a), (held_b, names_b, hooks_b) = a, b
    return (
        len(held_a) == len(held_b)
        and all(a[0] == b[0] and a[1] is b[1] for a, b in zip(held_a, held_b))
        and names_a == names_b
        and _same_objects(hooks_a, hooks_b)
    )


def _same_objects(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(_same_objects, a, b))
    return a is b


def guard_check(
    state: Sequence[tuple[Tensor, int, tuple, np.dtype, bool]],
    modules: Sequence[tuple[Module, tuple]],
) -> Callable[[list], None]:
    """The check a replay runs first: it fills the state registers, or raises ``StaleGuard``.

    ``state`` lists each state tensor with its register and recorded shape, dtype and
    ``requires_grad``; ``modules`` each module with its :func:`module_state`.
    """
    namespaces = [table for m, _ in modules for table in _tables(m)]
    sizes = [len(namespace) for namespace in namespaces]  # a new attribute may be a new hook
    # every attribute and member: the namespace it lives in, its name, the object it held
    watched = [
        (namespace, name, value) for namespace in namespaces for name, value in namespace.items()
    ]
    where, keys, held = (list(column) for column in zip(*watched)) if watched else ([], [], [])
    hooked = [(m, names, hooks) for m, (_, names, hooks) in modules if names]

    def check(registers: list) -> None:
        for tensor, register, shape, dtype, requires_grad in state:
            data = tensor.data
            if (
                data.shape != shape
                or (data.dtype is not dtype and data.dtype != dtype)
                or tensor.requires_grad is not requires_grad
                or tensor._hooks
            ):
                raise StaleGuard
            registers[register] = data
        try:
            same = list(map(len, namespaces)) == sizes and all(
                map(is_, map(getitem, where, keys), held)
            )
        except KeyError:  # an attribute was deleted
            same = False
        if not same:
            raise StaleGuard
        for module, names, hooks in hooked:
            if not _same_objects(_hooks_of(module, names), hooks):
                raise StaleGuard

    return check
