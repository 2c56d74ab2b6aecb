"""The :class:`Optimizer` base: parameter groups, per-parameter state and checkpoints.

An optimizer holds a list of **parameter groups**, each a dict with the key ``"params"`` (a list
of Tensors) and the hyperparameters for those parameters (``"lr"``, ``"momentum"``, ...). Passing
a plain iterable of Tensors makes one group with the defaults; passing dicts gives each group its
own settings, e.g. a smaller learning rate for a pretrained backbone::

    optim.SGD([{"params": backbone.parameters(), "lr": 1e-4},
               {"params": head.parameters()}], lr=1e-2, momentum=0.9)

``state`` maps each parameter (by identity) to its own dict of running quantities; a
subclass's :meth:`Optimizer.update` reads and writes it. :meth:`Optimizer.state_dict` exports
groups and state with parameters replaced by their position, PyTorch's format, so a fresh
optimizer over the same parameters resumes bit for bit after :meth:`Optimizer.load_state_dict`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..graph import enable_grad
from ..kernels.frozen import is_frozen
from ..tensor import Tensor

ParamGroup = dict[str, Any]
Params = Iterable[Tensor] | Iterable[Mapping[str, Any]]


class Optimizer:
    """Base class: subclasses define :meth:`update` for one parameter and :meth:`check`."""

    def __init__(self, params: Params, defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        self.state: dict[int, dict[str, Any]] = {}
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group (a dict with ``"params"``); missing hyperparameters take the defaults."""
        name = type(self).__name__
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' key")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} is empty")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        for position, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: parameter {position} is a {type(p).__name__}, not a Tensor"
                )
            if id(p) in taken:
                raise ValueError(f"{name}: parameter {position} appears in more than one group")
            taken.add(id(p))
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        full["params"] = params
        if full["lr"] < 0:
            raise ValueError(f"{name}: learning rate must be >= 0, got {full['lr']}")
        self.check(full)
        self.param_groups.append(full)

    def check(self, group: ParamGroup) -> None:
        """Raise ``ValueError`` for hyperparameters out of range (subclasses override)."""

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear ``.grad`` of every parameter (``None``, or zeros with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = Tensor._wrap(np.zeros_like(p.data))

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Update every parameter that has a ``.grad``; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        stepped = [(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None]
        for i, (p, _) in enumerate(stepped):  # before any update: all or nothing
            if is_frozen(p.data):
                raise ValueError(
                    f"{type(self).__name__}.step: parameter {i} with a gradient (shape "
                    f"{p.shape}) is frozen and cannot change; call unfreeze() on its module "
                    "to train it"
                )
        for p, group in stepped:
            self.update(p, p.grad.data, group, self.state.setdefault(id(p), {}))
        return loss

    def update(self, p: Tensor, grad: np.ndarray, group: ParamGroup, state: dict) -> None:
        """Update ``p.data`` in place from ``grad`` (never modify ``grad``: it may be shared)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {position: {...}}, "param_groups": [{..., "params": [positions]}]}``.

        Positions count parameters across groups in order; arrays are copies.
        """
        position: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [position.setdefault(id(p), len(position)) for p in group["params"]]
            groups.append(packed)
        state = {
            position[key]: copy.deepcopy(value)
            for key, value in self.state.items()
            if key in position
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (all or nothing).

        The optimizer must hold the same number of groups and parameters, with state arrays
        of the parameters' shapes; otherwise ``ValueError`` names the group or parameter.
        """
        name = type(self).__name__
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'"
            ) from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter groups, "
                f"the optimizer {len(self.param_groups)}"
            )
        by_position: dict[int, Tensor] = {}
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {index} has {len(saved['params'])} "
                    f"parameters in the state, {len(group['params'])} in the optimizer"
                )
            by_position.update(zip(saved["params"], group["params"]))
        new_state: dict[int, dict[str, Any]] = {}
        for position, values in saved_state.items():
            if position not in by_position:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {position}")
            p = by_position[position]
            for key, value in values.items():
                if isinstance(value, np.ndarray) and value.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of parameter {position} has "
                        f"shape {value.shape}, the parameter {p.shape}"
                    )
            new_state[id(p)] = copy.deepcopy(dict(values))
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join([*lines, ")"])


def decayed(grad: np.ndarray, p: Tensor, weight_decay: float) -> np.ndarray:
    r"""The L2-regularised gradient :math:`g + \lambda \theta` (a new array when decaying)."""
    return grad + weight_decay * p.data if weight_decay else grad


def check_nonnegative(name: str, group: ParamGroup, *keys: str) -> None:
    """``ValueError`` naming the first of ``keys`` that is negative in ``group``."""
    for key in keys:
        if group[key] < 0:
            raise ValueError(f"{name}: {key} must be >= 0, got {group[key]}")


def flatten_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """An optimizer's ``state_dict`` as ``{name: array}``, ready for :func:`tinygrad_edu.save`.

    Keys are ``"param_groups.<g>.<key>"`` and ``"state.<position>.<key>"``;
    :func:`unflatten_state_dict` turns the loaded arrays back into Python numbers, tuples and
    lists, so a resumed run is bit for bit the uninterrupted one.
    """
    flat = {}
    for index, group in enumerate(state_dict["param_groups"]):
        for key, value in group.items():
            flat[f"param_groups.{index}.{key}"] = np.asarray(value)
    for position, values in state_dict["state"].items():
        for key, value in values.items():
            flat[f"state.{position}.{key}"] = np.asarray(value)
    return flat


def unflatten_state_dict(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Invert :func:`flatten_state_dict` (e.g. on the dict :func:`tinygrad_edu.load` returns)."""
    sections: dict[str, dict[int, dict[str, Any]]] = {"param_groups": {}, "state": {}}
    for name, raw in flat.items():
        section, index, key = [*name.split(".", 2), "", ""][:3]
        if section not in sections or not index.isdigit() or not key:
            raise ValueError(
                f"unflatten_state_dict: unexpected key {name!r} (expected "
                "'param_groups.<g>.<key>' or 'state.<position>.<key>')"
            )
        value: Any = np.asarray(raw)
        if section == "param_groups":
            if value.ndim == 0:
                value = value.item()
            else:
                value = value.tolist() if key == "params" else tuple(value.tolist())
        elif value.ndim == 0 and value.dtype.kind in "iub":
            value = value.item()  # step counts are Python ints; moment arrays stay arrays
        sections[section].setdefault(int(index), {})[key] = value
    groups = sections["param_groups"]
    if sorted(groups) != list(range(len(groups))):
        raise ValueError(f"unflatten_state_dict: parameter groups {sorted(groups)} have gaps")
    return {"state": sections["state"], "param_groups": [groups[i] for i in range(len(groups))]}
