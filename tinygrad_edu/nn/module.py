"""``Module``: a container of parameters, buffers and sub-modules with a ``forward``.

Every ``Tensor`` assigned as an attribute of a module is one of its **parameters** (registration
order is kept; :class:`Parameter` is the explicit spelling), every ``Module`` attribute is a
**child**, and tensors registered with :meth:`Module.register_buffer` are **buffers**: state that
is saved in :meth:`Module.state_dict` but is not trained (BatchNorm's running statistics).
``named_parameters`` walks the tree depth first and names each entry by its path, PyTorch style:
``"0.weight"``, ``"encoder.1.bias"``.

``training`` (switched by :meth:`Module.train` and :meth:`Module.eval`, recursively) tells layers
such as ``Dropout`` and ``BatchNorm2d`` which behaviour to use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ..tensor import ArrayLike, Tensor

M = TypeVar("M", bound="Module")


class StateDictError(ValueError):
    """A state dict that does not fit a module: the message names the keys and shapes."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Parameter(Tensor):
    """A Tensor meant to be trained: ``requires_grad=True`` unless told otherwise.

    ``Parameter(t)`` shares ``t``'s memory and its version counter. Operations on a Parameter
    return plain Tensors, so a module never mistakes an intermediate result for a parameter.

    >>> from tinygrad_edu import nn
    >>> w = nn.Parameter([1.0, 2.0])
    >>> w.requires_grad, type(w * 2).__name__
    (True, 'Tensor')
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    @classmethod
    def _wrap(cls, data: np.ndarray, node: Any = None) -> Tensor:
        return Tensor._wrap(data, node)  # op results are Tensors, not Parameters

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def load_into(tensor: Tensor, value: np.ndarray) -> None:
    """Copy ``value`` (of ``tensor``'s shape) into ``tensor`` and bump its version.

    A writable array is updated in place (cast to its dtype), so whoever holds the tensor sees
    the new values. A read-only one gets a new array of the values instead, read-only again.
    """
    if tensor.data.flags.writeable:
        tensor.data[...] = value
    else:
        tensor.data = _read_only_like(tensor.data, value)
    tensor._bump_version()


def _read_only_like(old: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A read-only copy of ``value`` in ``old``'s dtype and shape."""
    new = np.array(value, dtype=old.dtype).reshape(old.shape)
    new.flags.writeable = False
    return new


def _check_member_name(module: Module, kind: str, name: Any, taken: bool) -> None:
    """PyTorch's rules for the name of a new parameter, buffer or child: a non-empty ``str``
    without ``"."`` (dotted names are paths in ``state_dict``) that is not ``taken`` by
    another attribute."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got {name!r}')
    if taken:
        raise KeyError(f"attribute {name!r} already exists in {type(module).__name__}")


def _foreign_array(raw: Any) -> bool:
    """Whether ``raw`` is another library's array that NumPy can read: a PyTorch (or JAX, CuPy
    on the host, ...) tensor offers ``__array__`` or ``__dlpack__``."""
    return hasattr(type(raw), "__array__") or hasattr(type(raw), "__dlpack__")


def _loadable(key: str, raw: Any, tensor: Tensor) -> np.ndarray | str:
    """``raw`` as an array that fits ``tensor``, or a sentence saying why it does not."""
    data = raw.data if isinstance(raw, Tensor) else raw
    if not isinstance(data, (np.ndarray, np.generic, list, tuple, int, float)):
        if not _foreign_array(data):
            return f"key {key!r} holds a {type(raw).__name__}, not an array"
        if getattr(data, "requires_grad", False) and callable(getattr(data, "detach", None)):
            data = data.detach()  # PyTorch lends no memory of a tensor that records gradients
    try:
        value = np.asarray(data)
    except (ValueError, TypeError, RuntimeError) as error:
        return f"key {key!r} holds no array of numbers ({error})"
    if value.dtype.kind not in "biuf":
        return f"key {key!r} holds {value.dtype} data, not numbers"
    if value.shape != tensor.shape:
        return (
            f"key {key!r} has shape {value.shape} but the module's tensor has shape {tensor.shape}"
        )
    if not np.can_cast(value.dtype, tensor.dtype, "same_kind"):
        return f"key {key!r} holds {value.dtype} data, which does not fit a {tensor.dtype} tensor"
    if not tensor.data.flags.writeable:
        return _read_only_like(tensor.data, value)  # made before anything changes
    return value


def _unshared(value: np.ndarray, targets: list[np.ndarray]) -> np.ndarray:
    """``value``, copied when it may share memory with an array about to be overwritten."""
    if any(np.may_share_memory(value, target) for target in targets):
        return value.copy()
    return value


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters (``Tensor``), buffers
    (:meth:`register_buffer`) and sub-modules as attributes, and implement :meth:`forward`.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def _check_initialised(self, name: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                f"attribute {name!r}"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        self._check_initialised(name)
        replaces_buffer = value is None or (
            isinstance(value, Tensor) and not isinstance(value, Parameter)
        )
        if name in self._buffers and replaces_buffer:
            self._buffers[name] = (
                value  # a buffer stays a buffer when replaced (not by a Parameter)
            )
        elif isinstance(value, (Tensor, Module)):
            table = "_parameters" if isinstance(value, Tensor) else "_modules"
            if name not in self.__dict__[table]:  # a new member: not a method or property
                kind = "parameter" if table == "_parameters" else "module"
                _check_member_name(self, kind, name, hasattr(type(self), name))
            self._forget(name)
            self.__dict__[table][name] = value
        else:
            self._forget(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        self._modules.pop(name, None)

    def _taken(self, name: Any, table: str) -> bool:
        """Whether ``name`` is an attribute other than a member in ``table``."""
        return isinstance(name, str) and hasattr(self, name) and name not in self.__dict__[table]

    def register_parameter(self, name: str, parameter: Tensor | None) -> None:
        """Add a parameter (``None`` declares an absent one, like a layer without bias).

        As in PyTorch, ``name`` must be a non-empty ``str`` without ``"."`` that is not already
        another attribute (``KeyError``/``TypeError`` otherwise).
        """
        if parameter is not None and not isinstance(parameter, Tensor):
            raise TypeError(
                f"register_parameter: {name!r} must be a Tensor or None, got "
                f"{type(parameter).__name__}"
            )
        self._check_initialised(name)
        _check_member_name(self, "parameter", name, self._taken(name, "_parameters"))
        setattr(self, name, parameter)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is not trained; saved in ``state_dict`` when ``persistent``.

        ``name`` follows :meth:`register_parameter`'s rules.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}"
            )
        self._check_initialised(name)
        _check_member_name(self, "buffer", name, self._taken(name, "_buffers"))
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (:meth:`register_parameter`'s rules for names);
        ``setattr(self, name, module)`` for names computed at run time."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"add_module: {name!r} must be a Module or None, got {type(module).__name__}"
            )
        self._check_initialised(name)
        _check_member_name(self, "module", name, self._taken(name, "_modules"))
        if module is None:
            self._forget(name)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    # ------------------------------------------------------------------ running
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; ``module(x)`` calls it. Subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def train(self: M, mode: bool = True) -> M:
        """Switch this module and all descendants to training (or, ``mode=False``, eval) mode."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self: M) -> M:
        """Evaluation mode: ``Dropout`` passes through, ``BatchNorm`` uses running statistics."""
        return self.train(False)

    def apply(self: M, fn: Callable[[Module], Any]) -> M:
        """Call ``fn`` on every descendant, children before parents (e.g. custom init)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ traversal
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant once, with dotted names (this one is ``prefix``)."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _named_members(self, table: str, prefix: str) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, member in getattr(module, table).items():
                if member is not None and id(member) not in seen:
                    seen.add(id(member))
                    yield (f"{module_name}.{name}" if module_name else name), member

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(dotted_name, parameter)`` pairs: own parameters first, then each child's, in order."""
        return self._named_members("_parameters", prefix)

    def parameters(self) -> Iterator[Tensor]:
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(dotted_name, buffer)`` pairs, in the order of :meth:`named_parameters`."""
        return self._named_members("_buffers", prefix)

    def buffers(self) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers():
            yield buffer

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear ``.grad`` of every parameter: ``None`` (PyTorch's default), or with
        ``set_to_none=False`` zeros of the parameter's shape (new arrays: a gradient array may
        be shared with a tensor outside this module); a missing gradient stays ``None``."""
        if not isinstance(set_to_none, (bool, np.bool_)):
            raise TypeError(f"zero_grad: set_to_none must be True or False, got {set_to_none!r}")
        for parameter in self.parameters():
            if set_to_none or parameter.grad is None:
                parameter.grad = None
            else:
                parameter.grad = Tensor._wrap(np.zeros_like(parameter.data))

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        """Switch gradient tracking of every parameter (freeze with ``False``)."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def freeze(self: M) -> M:
        """Stop training every parameter: ``requires_grad_(False)``, and ``.grad`` cleared so
        that no optimizer steps it (PyTorch's idiom, ``p.requires_grad = False``, as one call).

        Nothing else is needed for speed: the convolutions reuse their re-laid-out kernels for
        any weight that is not being changed (they watch its version counter).
        :meth:`unfreeze` undoes it.
        """
        for parameter in self.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None
        return self

    def unfreeze(self: M) -> M:
        """Undo :meth:`freeze`: gradient tracking on for every parameter."""
        return self.requires_grad_(True)

    # ------------------------------------------------------------------ state
    def _state_tensors(self, prefix: str = "", path: frozenset[int] = frozenset()) -> dict:
        """PyTorch's ``state_dict`` keys: each module's parameters, then its persistent buffers,
        then its children's, under **every** path that reaches them (a module or tensor shared
        by two attributes appears under both names); a module inside itself is not entered."""
        state: dict[str, Tensor] = {}
        for name, tensor in [*self._parameters.items(), *self._buffers.items()]:
            if tensor is not None and name not in self._non_persistent:
                state.setdefault(prefix + name, tensor)
        path = path | {id(self)}
        for name, child in self._modules.items():
            if child is not None and id(child) not in path:
                state.update(child._state_tensors(f"{prefix}{name}.", path))
        return state

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot ``{dotted_name: array copy}`` of every parameter and persistent buffer,
        PyTorch's keys in PyTorch's order (a shared module or tensor under each of its names)."""
        return {name: t.data.copy() for name, t in self._state_tensors().items()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers (in place, so optimizers keep working).

        With ``strict=True`` every entry must be present and no extra key allowed; with
        ``strict=False`` the returned ``(missing_keys, unexpected_keys)`` lists them. Every
        entry given must be an array (a NumPy array, a Tensor, a nested list, or another
        library's tensor such as PyTorch's, so ``torch_model.state_dict()`` loads as it is) of
        real numbers of exactly the tensor's shape, castable to its dtype (no floats into
        integer buffers). All entries are checked before any tensor changes: one
        :class:`StateDictError` names every problem and nothing is modified. Each loaded
        tensor's version is bumped; a read-only array is replaced by a read-only array of the
        new values.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{where}: expected a mapping of names to arrays, got {type(state_dict).__name__}"
            )
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        updates = []
        for key, tensor in own.items():
            if key in state_dict:
                value = _loadable(key, state_dict[key], tensor)
                if isinstance(value, str):
                    problems.append(value)
                else:
                    updates.append((tensor, value))
        if problems:
            raise StateDictError(f"{where}: " + "; ".join(problems))
        targets = [tensor.data for tensor, _ in updates]
        updates = [(tensor, _unshared(value, targets)) for tensor, value in updates]
        for tensor, value in updates:  # nothing here can fail
            if tensor.data.flags.writeable:
                tensor.data[...] = value
            else:
                tensor.data = value  # the read-only array _loadable prepared
            tensor._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        """The layer's settings for :func:`repr`, e.g. ``"in_features=3, out_features=2"``."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's tree: ``Name(settings)``, children indented as ``(name): ...``."""
        extra = self.extra_repr()
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("]
        lines.extend(f"  {line}" for line in extra.split("\n") if extra)
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
