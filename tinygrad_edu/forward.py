r"""Forward mode: carry a tangent beside every value, one op at a time.

Reverse mode records the graph and walks it backwards once per output direction; forward mode
needs no graph at all. Pick a direction :math:`u` in input space and push it through the
computation together with the values: when an op :math:`y = f(x_1, \dots, x_k)` runs, its
tangent is

.. math::
    \dot y = \sum_i \frac{\partial f}{\partial x_i} \dot x_i = J_f \, \dot x,

which is exactly what each op's ``jvp(tangents, out, *inputs)`` computes (beside its ``vjp`` in
:mod:`tinygrad_edu.ops`). At the end :math:`\dot y = J u`: one Jacobian-*vector* product for
the price of about one extra forward pass, whatever the number of outputs.

Implementation. Forward mode is an :class:`~tinygrad_edu.graph.Observer`: :meth:`Op.apply` tells
it about every op, and it looks up the tangents of the op's inputs (``None`` = zero) and stores
the output's tangent. Tangent rules are ordinary Tensor ops, so

* a tangent is itself a value other transforms can differentiate: ``jacrev(jacfwd(f))`` records
  the rules' ops in the reverse-mode graph, ``jacfwd(jacrev(f))`` observes the VJPs' ops;
* transforms nest in **levels**, like JAX's: ``jvp`` inside ``jvp`` opens level 2. While level
  :math:`k` computes a rule, levels :math:`\ge k` ignore the ops the rule creates (that is how
  the observer does not recurse into its own work), while the outer levels :math:`< k` see them
  and so differentiate the inner tangents -- second derivatives.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> x = Tensor(np.array([0.0, 1.0]))
>>> y, dy = jvp(lambda x: (x * x).exp(), (x,), (Tensor(np.ones(2)),))
>>> np.round(dy.data, 4).tolist()  # d/dx e^(x^2) = 2x e^(x^2)
[0.0, 5.4366]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from .autograd import grad
from .graph import Observer, Op, enable_grad, is_grad_enabled, observe
from .tensor import Tensor

Outputs = Tensor | tuple[Tensor, ...]


class JVPError(TypeError):
    """An op's JVP broke the contract (not a Tensor, or a shape that does not broadcast)."""


class _ForwardState(threading.local):
    """Forward mode's bookkeeping, one per thread like the engine's observers.

    ``levels`` -- the open forward-mode levels, outermost first; ``quiet_from`` -- levels at or
    above this number ignore new ops: one of them is computing a tangent rule.
    """

    def __init__(self) -> None:
        self.levels: list[ForwardMode] = []
        self.quiet_from: float = math.inf


_state = _ForwardState()


class ForwardMode(Observer):
    """One level of forward mode: the tangents of the tensors computed while it is open.

    Tangents are kept by ``id`` together with their primal, so an id cannot be reused while the
    level is open.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._tangents: dict[int, tuple[Tensor, Tensor]] = {}

    def tangent(self, primal: Tensor) -> Tensor | None:
        """The tangent carried by ``primal`` at this level (``None``: zero)."""
        entry = self._tangents.get(id(primal))
        return None if entry is None else entry[1]

    def set_tangent(self, primal: Tensor, tangent: Tensor) -> None:
        self._tangents[id(primal)] = (primal, tangent)

    def keeps(self, tensor: Tensor) -> bool:
        """A tensor with a tangent at this level must not be computed on as a plain array."""
        return self.tangent(tensor) is not None

    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        state = _state
        if self.level >= state.quiet_from or not self._tangents:
            return
        tangents = tuple([self.tangent(x) for x in inputs])
        if all(t is None for t in tangents):
            return
        outer_quiet, state.quiet_from = state.quiet_from, self.level
        try:
            tangent = op.jvp(tangents, out, *inputs)
            if tangent is not None:
                self.set_tangent(out, _broadcast_tangent(op, tangent, out))
        finally:
            state.quiet_from = outer_quiet


def _broadcast_tangent(op: Op, tangent: Any, out: Tensor) -> Tensor:
    """The one place where a broadcast-smaller tangent grows to the output's shape (the dual of
    ``sum_to`` in reverse mode); anything else is a broken rule, named."""
    if not isinstance(tangent, Tensor):
        raise JVPError(
            f"the JVP of op '{op.name}' returned a {type(tangent).__name__}; it must return a "
            "Tensor (or None), built from Tensor ops"
        )
    if tangent.shape == out.shape:
        return tangent
    try:
        fits = np.broadcast_shapes(tangent.shape, out.shape) == out.shape
    except ValueError:
        fits = False
    if not fits:
        raise JVPError(
            f"the JVP of op '{op.name}' returned a tangent of shape {tangent.shape} for an output "
            f"of shape {out.shape}"
        )
    return tangent.broadcast_to(out.shape)


def share_tangents(source: Tensor, target: Tensor) -> None:
    """Let ``target`` carry ``source``'s tangent at every open level.

    For transforms that must start from a fresh leaf (reverse mode needs ``requires_grad``) which
    stands for ``source``: without this, an outer forward mode would lose track of it.
    """
    for level in _state.levels:
        tangent = level.tangent(source)
        if tangent is not None:
            level.set_tangent(target, tangent)


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(value), dtype=None if like is None else like.dtype)


def _as_outputs(result: Any, who: str) -> tuple[list[Tensor], bool]:
    """The function's outputs as a list, and whether it returned a single Tensor."""
    single = isinstance(result, Tensor)
    outputs = [result] if single else list(result) if isinstance(result, (tuple, list)) else None
    if not outputs or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(f"{who}: the function must return a Tensor or a tuple of Tensors")
    return outputs, single


def _packed(values: list[Tensor], single: bool) -> Outputs:
    return values[0] if single else tuple(values)


def jvp(
    f: Callable[..., Outputs], primals: Sequence[Any], tangents: Sequence[Any]
) -> tuple[Outputs, Outputs]:
    r"""``(f(*primals), J · tangents)``: values and one Jacobian-vector product, in one pass.

    Parameters
    ----------
    f
        Takes ``len(primals)`` Tensors, returns a Tensor or a tuple of Tensors.
    primals, tangents
        Tuples of Tensors (or arrays) of equal length; ``tangents[i]`` has ``primals[i]``'s shape
        and is the direction :math:`u_i` in which input ``i`` moves.

    Returns
    -------
    (outputs, tangent_outputs)
        ``tangent_outputs`` has the structure of ``outputs``: :math:`\sum_i J_i u_i` for each
        output, zeros for an output that does not depend on the primals.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    primals = tuple(_as_tensor(p) for p in primals)
    tangents = tuple(_as_tensor(t, like=p) for p, t in zip(primals, tangents))
    for position, (p, t) in enumerate(zip(primals, tangents)):
        if p.shape != t.shape:
            raise ValueError(
                f"jvp: tangent {position} has shape {t.shape} but its primal has shape {p.shape}"
            )
    # distinct tensors (f(x, x) has two inputs), still linked to outer levels and to any graph
    with enable_grad() if any(p.requires_grad for p in primals) else nullcontext():
        inputs = [p.reshape(p.shape) for p in primals]
    level = ForwardMode(len(_state.levels) + 1)
    for x, t in zip(inputs, tangents):
        level.set_tangent(x, t)
    _state.levels.append(level)
    try:
        with observe(level):
            outputs, single = _as_outputs(f(*inputs), "jvp")
    finally:
        _state.levels.remove(level)
    tangent_outputs = [
        t if (t := level.tangent(o)) is not None else Tensor.zeros(o.shape, dtype=o.dtype)
        for o in outputs
    ]
    return _packed(outputs, single), _packed(tangent_outputs, single)


def differentiable_copy(primal: Any, linked: bool = True) -> Tensor:
    """A tensor that stands for ``primal`` and can be handed to :func:`~tinygrad_edu.grad`.

    A tensor that already requires grad gets a fresh identity node when ``linked`` (so reverse
    mode over this transform still reaches it); any other becomes a new leaf with
    ``requires_grad=True`` that carries its tangents at the open forward-mode levels.
    """
    primal = _as_tensor(primal)
    if primal.requires_grad and linked:
        with enable_grad():
            return primal.reshape(primal.shape)
    if primal.dtype.kind != "f":
        raise TypeError(f"can only differentiate floating-point inputs, got dtype {primal.dtype}")
    leaf = Tensor(primal.data, requires_grad=True)
    share_tangents(primal, leaf)
    return leaf


def _unrecorded(tensor: Tensor) -> Tensor:
    """``tensor`` cut off from the graph, still carrying its tangents (forward mode)."""
    detached = tensor.detach()
    share_tangents(tensor, detached)
    return detached


def vjp(f: Callable[..., Outputs], *primals: Any) -> tuple[Outputs, Callable[..., tuple]]:
    r"""``(f(*primals), vjp_fn)`` where ``vjp_fn(cotangents)`` returns :math:`J^T v` per primal.

    ``f`` runs once, recording its graph; each ``vjp_fn(v)`` call is one backward sweep over it
    (the graph is kept, so ``vjp_fn`` may be called many times -- that is how
    :func:`~tinygrad_edu.func.jacrev` builds a Jacobian row by row). ``v`` has the structure of
    the outputs: a Tensor for a single output, a tuple for several. The results are themselves
    differentiable when a primal or ``v`` requires grad, and carry tangents when called inside
    :func:`jvp`.

    Like ``torch.func.vjp``, the transform works under ``no_grad()`` too (the function's own
    graph is recorded regardless), but then nothing links the outputs or the gradients to the
    primals' graph: they do not require grad, and a later ``backward()`` does not reach the
    primals through them.
    """
    recording = is_grad_enabled()
    inputs = [differentiable_copy(p, linked=recording) for p in primals]
    with enable_grad():
        outputs, single = _as_outputs(f(*inputs), "vjp")
    differentiable = recording and any(p.requires_grad for p in primals if isinstance(p, Tensor))
    returned = outputs if recording else [_unrecorded(o) for o in outputs]

    def vjp_fn(cotangents: Any) -> tuple[Tensor, ...]:
        given = [cotangents] if single else list(cotangents)
        if len(given) != len(outputs):
            raise ValueError(f"vjp_fn: {len(outputs)} outputs but {len(given)} cotangents")
        given = [_as_tensor(v, like=o) for v, o in zip(given, outputs)]
        for position, (v, o) in enumerate(zip(given, outputs)):
            if v.shape != o.shape:
                raise ValueError(
                    f"vjp_fn: cotangent {position} has shape {v.shape} but output {position} "
                    f"has shape {o.shape}"
                )
        live = [i for i, o in enumerate(outputs) if o.requires_grad]
        create_graph = is_grad_enabled() and (differentiable or any(v.requires_grad for v in given))
        grads = (
            grad(
                [outputs[i] for i in live],
                inputs,
                [given[i] for i in live],
                create_graph=create_graph,
                retain_graph=True,
                allow_unused=True,
            )
            if live
            else [None] * len(inputs)
        )
        return tuple(
            Tensor.zeros(x.shape, dtype=x.dtype) if g is None else g for g, x in zip(grads, inputs)
        )

    return _packed(returned, single), vjp_fn
