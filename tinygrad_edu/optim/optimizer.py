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
import inspect
import math
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..graph import enable_grad
from ..tensor import Tensor

ParamGroup = dict[str, Any]
Params = Iterable[Tensor] | Iterable[Mapping[str, Any]]

#: group keys the schedulers add (:mod:`.lr_scheduler`); a saved group may carry them
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})

#: what a parameter's state may hold: "count" (an int >= 0), "number" (a finite float, e.g.
#: NAdam's running product), "array" (the parameter's shape), "optional" (an array or None);
#: required keys are the ones not marked "optional"
StateSpec = dict[str, str]


class Optimizer:
    """Base class: subclasses define :meth:`update` for one parameter, :meth:`check` and
    :meth:`state_spec`."""

    def __init__(self, params: Params, defaults: Mapping[str, Any]) -> None:
        """``defaults`` maps each hyperparameter to its value: PyTorch's ``defaults`` dict
        (``dict(lr=lr, momentum=momentum)``) or simply the subclass constructor's ``locals()``.
        The constructor's keyword defaults say which names are hyperparameters and the kinds
        their values must have, so its signature is the one place that names them."""
        name = type(self).__name__
        declared = _signature_defaults(type(self))
        missing = [key for key in declared if key not in defaults]
        if missing:
            raise TypeError(f"{name}: the defaults given to Optimizer lack {missing}")
        self.defaults = {  # pairs (betas) given as any iterable become tuples
            key: tuple(value) if isinstance(declared.get(key), tuple) else value
            for key, value in defaults.items()
            if key not in _NOT_HYPERPARAMETERS
        }
        self.param_groups: list[ParamGroup] = []
        self.state: dict[int, dict[str, Any]] = {}
        groups = _ordered(params, f"{name}: params argument given to the optimizer")
        if not groups:
            raise ValueError(f"{name} got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group (a dict with ``"params"``); missing hyperparameters take the defaults.

        Parameters must be leaf Tensors, each in one group only; hyperparameters must have
        the type of the constructor's defaults (numbers, flags, pairs) and lie in range.
        """
        name = type(self).__name__
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' key")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else _ordered(params, f"{name}: params")
        if not params:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} is empty")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        seen: set[int] = set()
        for position, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: parameter {position} is a {type(p).__name__}, not a Tensor"
                )
            if p._node is not None:
                raise ValueError(
                    f"{name}: parameter {position} is not a leaf (it is the result of an op); "
                    "optimize the tensors it was computed from"
                )
            if id(p) in taken:
                raise ValueError(f"{name}: parameter {position} appears in more than one group")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {position} appears twice in its group")
            seen.add(id(p))
        hyperparameters = {k: v for k, v in group.items() if k != "params"}
        full = self._checked({**self.defaults, **hyperparameters}, f"{name}")
        full["params"] = params
        self.param_groups.append(full)

    def _checked(self, group: ParamGroup, where: str) -> ParamGroup:
        """``group`` with pairs as tuples, after checking each hyperparameter's type against
        the constructor's default and its range (:meth:`check`)."""
        group = dict(group)
        for key, default in _signature_defaults(type(self)).items():
            if key in group:
                group[key] = _of_kind(group[key], default, f"{where}: {key}")
        if group["lr"] < 0:
            raise ValueError(f"{where}: learning rate must be >= 0, got {group['lr']}")
        self.check(group)
        return group

    def check(self, group: ParamGroup) -> None:
        """Raise ``ValueError`` for hyperparameters out of range (subclasses override)."""

    def state_spec(self, group: ParamGroup) -> StateSpec:
        """The keys a parameter's (non-empty) state holds under ``group``'s settings."""
        return {}

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
        """Update every parameter that has a ``.grad``; ``closure`` re-evaluates the loss.

        Every parameter to update is checked first (writable, floating point, a gradient and
        state of its shape), so a step either updates all of them or raises and changes
        nothing. Each updated parameter's version is bumped. A group with ``maximize``
        hands :meth:`update` the negated gradient (gradient *ascent*): PyTorch's optimizers
        negate it before anything else, weight decay included.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        stepped = [(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None]
        states = self.state
        for i, (p, group) in enumerate(stepped):  # before any update: all or nothing
            problem = self._step_problem(p, group, states.get(id(p)))
            if problem:
                raise ValueError(f"{type(self).__name__}.step: parameter {i} {problem}")
        for p, group in stepped:
            state = states.get(id(p))
            if state is None:
                state = states[id(p)] = {}
            grad = -p.grad.data if group.get("maximize") else p.grad.data
            self.update(p, grad, group, state)
            p._bump_version()  # ops that saved p before this step must not use its new values
        return loss

    def _step_problem(self, p: Tensor, group: ParamGroup, state: dict | None) -> str | None:
        """Why ``p`` cannot be stepped now, or ``None``."""
        data, grad = p.data, p.grad.data
        if not data.flags.writeable:
            return f"(shape {p.shape}) has a read-only array"
        if data.dtype.kind != "f":
            return f"is {p.dtype}; only floating-point parameters can be trained"
        if grad.shape != data.shape or grad.dtype.kind not in "biuf":
            return f"of shape {p.shape} has a {grad.dtype} gradient of shape {grad.shape}"
        if not state:  # not stepped yet (or a stateless rule): the update creates what it needs
            return None
        spec = self.state_spec(group)
        problem = _state_problem(state, spec, p.shape, type(self).__name__)
        if problem:
            return problem
        fixed = [k for k, v in state.items() if spec[k] in _ARRAY_KINDS and not _updatable(v)]
        if fixed:
            return (
                f"has state {fixed} that the update cannot change in place (it needs writable "
                "floating-point NumPy arrays; load_state_dict makes them)"
            )
        return None

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

        Everything is checked before anything changes: the same number of groups and of
        parameters per group, distinct integer positions, hyperparameters this optimizer
        knows (plus the schedulers' keys) of the right types and ranges, and per parameter
        exactly the state this optimizer keeps (:meth:`state_spec`): integer step counts
        >= 0 and numeric arrays of the parameter's shape (cast to its dtype). Anything else
        raises ``TypeError``/``ValueError`` naming the group, parameter or key.
        """
        where = f"{type(self).__name__}.load_state_dict"
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"{where}: expected a dict with 'state' and 'param_groups'") from None
        groups, by_position = self._loaded_groups(saved_groups, where)
        state = self._loaded_state(saved_state, groups, by_position, where)
        for group, loaded in zip(self.param_groups, groups):  # nothing here can fail
            group.update(loaded)
        self.state = state

    def _loaded_groups(
        self, saved_groups: Any, where: str
    ) -> tuple[list[ParamGroup], dict[int, tuple[Tensor, ParamGroup]]]:
        """The checked hyperparameters of each saved group, and position -> (param, group)."""
        if not isinstance(saved_groups, (list, tuple)):
            raise TypeError(
                f"{where}: 'param_groups' must be a list, got {type(saved_groups).__name__}"
            )
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{where}: the state has {len(saved_groups)} parameter groups, "
                f"the optimizer {len(self.param_groups)}"
            )
        groups: list[ParamGroup] = []
        by_position: dict[int, tuple[Tensor, ParamGroup]] = {}
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            at = f"{where}: group {index}"
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise TypeError(f"{at} must be a dict with a 'params' key")
            positions = saved["params"]
            if not isinstance(positions, (list, tuple)) or not all(map(_is_int, positions)):
                raise TypeError(f"{at}: 'params' must be a list of integer positions")
            if len(positions) != len(group["params"]):
                raise ValueError(
                    f"{at} has {len(positions)} parameters in the state, "
                    f"{len(group['params'])} in the optimizer"
                )
            unknown = [
                k for k in saved if k != "params" and k not in group and k not in SCHEDULER_KEYS
            ]
            if unknown:
                raise ValueError(
                    f"{at}: unknown hyperparameters {unknown} for {type(self).__name__} "
                    f"(it has {sorted(self.defaults)})"
                )
            merged = {k: v for k, v in group.items() if k != "params"}
            merged.update(copy.deepcopy({k: v for k, v in saved.items() if k != "params"}))
            for key in SCHEDULER_KEYS & merged.keys():
                merged[key] = _of_kind(merged[key], 0.0, f"{at}: {key}")
            try:
                checked = self._checked(merged, at)
            except ValueError as error:
                raise ValueError(f"{at}: {error}") from None
            groups.append(checked)
            for position, p in zip(positions, group["params"]):
                if int(position) in by_position:
                    raise ValueError(f"{at}: position {position} appears twice")
                by_position[int(position)] = (p, checked)
        return groups, by_position

    def _loaded_state(
        self,
        saved_state: Any,
        groups: list[ParamGroup],
        by_position: dict[int, tuple[Tensor, ParamGroup]],
        where: str,
    ) -> dict[int, dict[str, Any]]:
        """The checked state, keyed by parameter identity, with arrays cast to each parameter's
        dtype (new arrays: the caller's are never aliased)."""
        if not isinstance(saved_state, Mapping):
            raise TypeError(f"{where}: 'state' must be a dict, got {type(saved_state).__name__}")
        state: dict[int, dict[str, Any]] = {}
        for position, values in saved_state.items():
            at = f"{where}: state of parameter {position!r}"
            if not _is_int(position) or int(position) not in by_position:
                raise ValueError(f"{at}: no parameter has this position")
            if not isinstance(values, Mapping):
                raise TypeError(f"{at} must be a dict, got {type(values).__name__}")
            p, group = by_position[int(position)]
            spec = self.state_spec(group)
            problem = _state_problem(values, spec, p.shape, type(self).__name__)
            if problem:
                raise ValueError(f"{at} {problem}")
            state[id(p)] = {
                key: _state_value(value, spec[key], p.dtype) for key, value in values.items()
            }
        return state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join([*lines, ")"])


def _ordered(items: Any, what: str) -> list[Any]:
    """``items`` as a list, refusing a single Tensor, a dict and unordered sets (PyTorch)."""
    if isinstance(items, Tensor):
        raise TypeError(
            f"{what} should be an iterable of Tensors or dicts, but got Tensor (wrap a single "
            "parameter in a list)"
        )
    if isinstance(items, (set, frozenset, Mapping)):
        raise TypeError(
            f"{what} must be an ordered collection (a list) of Tensors or dicts, not a "
            f"{type(items).__name__}: the order of parameters is what state_dict() records"
        )
    try:
        return list(items)
    except TypeError:
        raise TypeError(
            f"{what} should be an iterable of Tensors or dicts, but got {type(items).__name__}"
        ) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A finite real number (not a flag); an int too big for a float is not."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
        value, (bool, np.bool_)
    ):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _of_kind(value: Any, default: Any, what: str) -> Any:
    """``value`` checked to be of ``default``'s kind: a flag, a finite number or a tuple of
    them (a list becomes a tuple); other defaults (``None``) accept anything."""
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{what} must be True or False, got {value!r}")
        return bool(value)
    if isinstance(default, (int, float)):
        if not is_real(value):
            raise TypeError(f"{what} must be a finite number, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"{what} must be {len(default)} numbers, got {value!r}")
        if len(value) != len(default):
            raise ValueError(f"{what} must be {len(default)} numbers, got {value!r}")
        return tuple(_of_kind(v, d, what) for v, d in zip(value, default))
    return value


#: what a constructor's ``locals()`` holds beside its hyperparameters
_NOT_HYPERPARAMETERS = frozenset({"self", "params", "__class__"})


def _signature_defaults(cls: type) -> dict[str, Any]:
    """The constructor's keyword defaults: the kinds its hyperparameters must have."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _state_problem(
    state: Mapping[str, Any], spec: StateSpec, shape: tuple, name: str
) -> str | None:
    """Why ``state`` is not what ``spec`` describes for a parameter of ``shape``, or ``None``."""
    if not state:
        return None  # not stepped yet: the first update creates the state
    unknown = [k for k in state if k not in spec]
    if unknown:
        return f"has unknown keys {unknown} ({name} keeps {sorted(spec)})"
    missing = [k for k, kind in spec.items() if kind != "optional" and k not in state]
    if missing:
        return f"lacks {missing} (a {name} state holds {sorted(spec)})"
    for key, value in state.items():
        kind = spec[key]
        if kind == "count":
            if not _is_int(value) or value < 0:
                return f"has {key} = {value!r}; it must be an int >= 0"
        elif kind == "number":
            if not is_real(_scalar(value)):
                return f"has {key} = {value!r}; it must be a finite number"
        elif not (kind == "optional" and value is None):
            array = value.data if isinstance(value, Tensor) else value
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
                return f"has {key} of type {type(value).__name__}; it must be a numeric array"
            if array.shape != shape:
                return f"has {key!r} of shape {array.shape}, the parameter {shape}"
    return None


#: the state kinds held as arrays the update changes in place
_ARRAY_KINDS = frozenset({"array", "optional"})


def _scalar(value: Any) -> Any:
    """A 0-d array (as a loaded checkpoint holds a number) as its Python number."""
    if isinstance(value, Tensor):
        value = value.data
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _updatable(value: Any) -> bool:
    """Whether a state entry can be updated in place: ``None`` or a writable float array."""
    return value is None or (
        isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.flags.writeable
    )


def _state_value(value: Any, kind: str, dtype: np.dtype) -> Any:
    """A checked state entry as the optimizer keeps it: an int, or a new array of ``dtype``."""
    if kind == "count":
        return int(value)
    if kind == "number":
        return float(_scalar(value))
    if value is None:
        return None
    return np.array(value.data if isinstance(value, Tensor) else value, dtype=dtype)


def with_defaults(init: Callable[..., None], **defaults: Any) -> Callable[..., None]:
    """A copy of the constructor ``init`` whose keyword ``defaults`` are changed: a subclass that
    differs only in a default (AdamW is Adam with weight decay 0.01) keeps one signature."""
    code = init.__code__
    names = code.co_varnames[: code.co_argcount][-len(init.__defaults__) :]
    values = dict(zip(names, init.__defaults__))
    unknown = sorted(set(defaults) - values.keys())
    if unknown:
        raise TypeError(f"with_defaults: {init.__qualname__} has no positional defaults {unknown}")
    values.update(defaults)
    copy = types.FunctionType(
        code, init.__globals__, init.__name__, tuple(values.values()), init.__closure__
    )
    copy.__kwdefaults__, copy.__annotations__ = init.__kwdefaults__, init.__annotations__
    return copy


def decayed(grad: np.ndarray, p: Tensor, weight_decay: float) -> np.ndarray:
    r"""The L2-regularised gradient :math:`g + \lambda \theta` (a new array when decaying)."""
    return grad + weight_decay * p.data if weight_decay else grad


def check_betas(name: str, group: ParamGroup, key: str = "betas") -> None:
    """``ValueError`` unless ``group[key]`` is two numbers in [0, 1)."""
    if len(group[key]) != 2 or not all(0.0 <= b < 1.0 for b in group[key]):
        raise ValueError(f"{name}: {key} must be two numbers in [0, 1), got {group[key]}")


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
