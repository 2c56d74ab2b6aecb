"""Changing a tensor's values in place, and the version counter that guards the graph.

An op recorded for backward may keep its inputs (its VJP reads them later). Changing one of
them in place would make that VJP read new values mixed with old ones, silently. So every tensor
counts its in-place changes (``_version``, PyTorch's ``t._version``), every recorded op remembers
its inputs' versions, and the backward sweep refuses a VJP whose inputs changed since.
:class:`~tinygrad_edu.tensor.Tensor` inherits these methods from :class:`InPlace`; this module
imports neither the Tensor class nor the engine (the Tensor answers ``_grad_enabled()``).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np


class InPlace:
    """The in-place methods of the Tensor and its version counter (see the module)."""

    __slots__ = ()

    @property
    def _version(self) -> int:
        """How many times ``data`` was changed in place (PyTorch's ``t._version``).

        Every op recorded for backward remembers its inputs' versions, and the backward sweep
        refuses to apply a VJP whose inputs (or output) changed since: the VJP would read the new
        values and silently mix them with the old ones. :meth:`detach` shares the counter, since
        it shares the memory.
        """
        return self._version_counter[0]

    def _bump_version(self) -> None:
        """Record that ``data`` was changed in place (or rebound to a new array).

        Whatever updates a tensor's values in place -- the in-place methods below, optimizers,
        ``load_state_dict``, BatchNorm's running statistics -- calls this.
        """
        self._version_counter[0] += 1

    def copy_(self, src: Any) -> Self:
        """Copy ``src`` into this tensor in place (broadcast to its shape, cast to its dtype).

        Like PyTorch, this is refused on a tensor that takes part in recording -- a leaf that
        requires grad (outside ``no_grad()``) or a recorded result -- since the graph could no
        longer say what was computed from which values. Use it under ``no_grad()`` to set
        parameters. Ops recorded before the copy refuse to go backward afterwards.
        """
        values = src.data if isinstance(src, InPlace) else np.asarray(src)
        self._check_writable("copy_")
        _check_source_graph("copy_", src)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"copy_: cannot copy {values.dtype} values into a {self.dtype} tensor")
        try:
            target_shape = np.broadcast_shapes(values.shape, self.shape)
        except ValueError:
            target_shape = None
        if target_shape != self.shape:
            raise ValueError(
                f"copy_: source of shape {values.shape} does not broadcast to the tensor's shape "
                f"{self.shape}"
            )
        np.copyto(self.data, values, casting="unsafe")
        self._bump_version()
        return self

    def zero_(self) -> Self:
        """Set every element to zero in place (see :meth:`copy_` for when this is refused)."""
        return self.fill_(0)

    def fill_(self, value: float | bool) -> Self:
        """Set every element to ``value`` in place (see :meth:`copy_` for when this is refused)."""
        if isinstance(value, InPlace):
            if value.size != 1:
                raise ValueError(f"fill_: the value must have one element, got shape {value.shape}")
            _check_source_graph("fill_", value)
            value = value.item()
        if not isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            raise TypeError(f"fill_: the value must be a number, got {type(value).__name__}")
        self._check_writable("fill_")
        self.data.fill(value)
        self._bump_version()
        return self

    def _check_writable(self, method: str) -> None:
        if self._node is not None and self._grad_enabled():
            raise RuntimeError(
                f"{method}: in-place changes of a recorded result are not supported; compute a "
                "new tensor instead (out-of-place)"
            )
        if self.requires_grad and self._node is None and self._grad_enabled():
            raise RuntimeError(
                f"{method}: a leaf tensor that requires grad cannot be changed in place while "
                "gradients are recorded; wrap the change in tinygrad_edu.no_grad()"
            )
        if not self.data.flags.writeable:
            raise ValueError(f"{method}: the tensor's array is read-only; build a new tensor")


def _check_source_graph(method: str, source: Any) -> None:
    """Refuse to copy a value that requires grad while recording: PyTorch records the copy
    (the target then depends on the source), this library cannot, and the gradient through it
    would silently be missing."""
    if isinstance(source, InPlace) and source.requires_grad and source._grad_enabled():
        raise RuntimeError(
            f"{method}: the source requires grad, and an in-place copy is not recorded, so its "
            "gradient would be lost; compute the new tensor out of place, or copy "
            "source.detach() (or under no_grad()) if no gradient should flow"
        )
