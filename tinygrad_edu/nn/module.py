"""``Module``: a container of parameters and sub-modules with a ``forward``.

Every ``Tensor`` assigned as an attribute of a module is one of its parameters (registration order
is kept), every ``Module`` attribute is a child. ``named_parameters`` walks them depth first and
names each parameter by its path, PyTorch style: ``"0.weight"``, ``"encoder.1.bias"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor


class StateDictError(ValueError):
    """A state dict that does not fit a module: the message names the keys and shapes."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters (``Tensor``) and sub-modules
    as attributes, and implement :meth:`forward`.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                f"attribute {name!r}"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Tensor):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ------------------------------------------------------------------ running
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ traversal
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, with dotted names (this one is ``prefix``)."""
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(dotted_name, parameter)`` pairs: own parameters first, then each child's, in order."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, parameter in module._parameters.items():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self) -> Iterator[Tensor]:
        for _, parameter in self.named_parameters():
            yield parameter

    def zero_grad(self) -> None:
        """Clear ``.grad`` of every parameter."""
        for parameter in self.parameters():
            parameter.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradient tracking of every parameter (freeze with ``False``)."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot ``{dotted_name: array copy}`` of every parameter."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays into the parameters (in place, so optimizers keep working).

        With ``strict=True`` every parameter must be present and no extra key allowed. Shapes must
        always match exactly. Errors raise :class:`StateDictError` naming the keys and shapes;
        nothing is modified unless the whole dict fits.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictError(f"{type(self).__name__}.load_state_dict: " + "; ".join(parts))
        updates = []
        for key, parameter in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(
                state_dict[key].data if isinstance(state_dict[key], Tensor) else state_dict[key]
            )
            if value.shape != parameter.shape:
                raise StateDictError(
                    f"{type(self).__name__}.load_state_dict: key {key!r} has shape {value.shape} "
                    f"but the parameter has shape {parameter.shape}"
                )
            updates.append((parameter, value))
        for parameter, value in updates:
            parameter.data[...] = value
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
