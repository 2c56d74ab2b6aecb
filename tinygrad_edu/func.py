r"""Functional transforms: whole Jacobians and Hessians from the two modes of autodiff.

The vocabulary is ``torch.func``'s (and JAX's). For :math:`f: \mathbb{R}^n \to \mathbb{R}^m`

* :func:`jacrev` builds the Jacobian :math:`J \in \mathbb{R}^{m \times n}` **row by row**: one
  forward pass recording the graph, then one backward sweep per output element,
  :math:`e_k^T J` -- about :math:`m` sweeps;
* :func:`jacfwd` builds it **column by column**: one forward-mode pass per input element,
  :math:`J e_j` -- about :math:`n` passes;
* :func:`jacobian` picks the cheaper of the two from the sizes;
* :func:`hessian` is ``jacfwd(jacrev(f))`` (forward over reverse, as in JAX) and :func:`hvp`
  a Hessian-vector product in one forward-over-reverse pass, without forming :math:`H`.

A Jacobian has shape ``out.shape + in.shape``. With several ``argnums`` (a tuple) the result is
a tuple with one Jacobian per argument; a function returning a tuple of Tensors gets a tuple with
one entry per output. Everything is built from Tensor ops, so the transforms nest.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> x = Tensor(np.array([1.0, 2.0]))
>>> jacfwd(lambda x: x * x)(x).data.tolist()
[[2.0, 0.0], [0.0, 4.0]]
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .forward import _as_outputs, _as_tensor, _packed, jvp, vjp
from .graph import no_grad
from .tensor import Tensor

Argnums = int | tuple[int, ...]


def _positions(argnums: Argnums, count: int) -> tuple[int, ...]:
    if isinstance(argnums, (int, np.integer)):
        positions: tuple = (int(argnums),)
    elif isinstance(argnums, (tuple, list)):
        positions = tuple(argnums)
    else:
        raise TypeError(f"argnums must be an int or a tuple of ints, got {type(argnums).__name__}")
    if not positions:
        raise ValueError("argnums must name at least one argument")
    for p in positions:
        if not isinstance(p, (int, np.integer)):
            raise TypeError(f"argnums {argnums!r} holds a {type(p).__name__}, not an int")
        if not -count <= p < count:
            raise ValueError(f"argnums {argnums!r} does not fit a call with {count} argument(s)")
    positions = tuple(int(p) for p in positions)
    normalized = tuple(p % count for p in positions)
    if len(set(normalized)) != len(normalized):
        raise ValueError(
            f"argnums {argnums!r} names an argument twice (positions {normalized}); each "
            "argument can be differentiated once, as in torch.func"
        )
    return normalized


# ------------------------------------------------------------------ functions with side effects
class _Reruns(threading.local):
    """Per thread: the transforms (innermost last) currently evaluating a function several
    times, which must see the same pure function on every evaluation."""

    def __init__(self) -> None:
        self.by: list[str] = []


_reruns = _Reruns()


@contextlib.contextmanager
def _evaluating_repeatedly(who: str, how: str) -> Iterator[None]:
    """While the block runs, :func:`side_effect` refuses: ``who`` evaluates ``f`` ``how``."""
    _reruns.by.append(f"{who} evaluates the function {how}")
    try:
        yield
    finally:
        _reruns.by.pop()


def side_effect(op: str, effect: str) -> None:
    """Report that the running code is not a pure function of its inputs.

    Called by the ops that draw random numbers or update state (``dropout``'s mask,
    ``batch_norm``'s running statistics in training). Inside a transform that evaluates the
    function several times -- :func:`jacfwd` and :func:`hessian` once per input element,
    :func:`jacobian`'s size probe -- each evaluation would see a different function (new masks,
    statistics updated many times), so the transform refuses, as ``torch.func`` does. Anywhere
    else this does nothing.

    Raises
    ------
    RuntimeError
        Naming the op, what it does, and which transform evaluates the function repeatedly.
    """
    if _reruns.by:
        raise RuntimeError(
            f"{op} {effect}, but {_reruns.by[-1]}, so the evaluations would not compute the same "
            "function (torch.func refuses this too). Put the model in eval() mode (or pass "
            "training=False), or use jacrev / vjp / jvp, which evaluate it once"
        )


def _restricted(f: Callable, args: Sequence[Any], positions: tuple[int, ...]) -> Callable:
    """``f`` as a function of the arguments at ``positions`` only (the others held fixed)."""

    def g(*chosen: Tensor) -> Any:
        full = list(args)
        for p, value in zip(positions, chosen):
            full[p] = value
        return f(*full)

    return g


def _basis(tensors: Sequence[Tensor], k: int, index: int) -> list[Tensor]:
    """One basis direction of several tensors together: 1 at flat ``index`` of ``tensors[k]``,
    0 everywhere else (a row or column of the identity, split into the tensors' shapes)."""
    return [
        _unit(t.shape, index, t.dtype) if i == k else Tensor.zeros(t.shape, dtype=t.dtype)
        for i, t in enumerate(tensors)
    ]


def _unit(shape: tuple[int, ...], index: int, dtype: np.dtype) -> Tensor:
    e = np.zeros(shape, dtype=dtype)
    e.reshape(-1)[index] = 1
    return Tensor._wrap(e)


def _assemble(pieces: list[Tensor], shape: tuple[int, ...], axis: int, dtype) -> Tensor:
    """Stack rows (``axis=0``) or columns (``axis=-1``) and give them the Jacobian's shape."""
    if not pieces:
        return Tensor.zeros(shape, dtype=dtype)
    stacked = Tensor.stack(pieces, axis=0 if axis == 0 else pieces[0].ndim)
    return stacked.reshape(shape)


def _shaped(per_output: list[list[Tensor]], single_out: bool, single_arg: bool) -> Any:
    return _packed([_packed(row, single_arg) for row in per_output], single_out)


def jacrev(f: Callable, argnums: Argnums = 0) -> Callable:
    """A function returning the Jacobian of ``f`` by reverse mode, one VJP per output element.

    ``f`` runs once (its graph recorded) and the graph is swept backwards ``m`` times, where
    ``m`` is the number of output elements.
    """

    def jacobian_fn(*args: Any) -> Any:
        positions = _positions(argnums, len(args))
        args = [_as_tensor(a) for a in args]
        outputs, vjp_fn = vjp(_restricted(f, args, positions), *[args[p] for p in positions])
        outputs, single_out = _as_outputs(outputs, "jacrev")
        result = []
        for k, out in enumerate(outputs):
            rows = []
            for index in range(out.size):
                rows.append(vjp_fn(_packed(_basis(outputs, k, index), single_out)))
            result.append(
                [
                    _assemble(
                        [row[i] for row in rows],
                        out.shape + args[p].shape,
                        0,
                        np.result_type(out.dtype, args[p].dtype),
                    )
                    for i, p in enumerate(positions)
                ]
            )
        return _shaped(result, single_out, isinstance(argnums, (int, np.integer)))

    return jacobian_fn


def jacfwd(f: Callable, argnums: Argnums = 0) -> Callable:
    """A function returning the Jacobian of ``f`` by forward mode, one JVP per input element.

    Each column :math:`J e_j` is one :func:`~tinygrad_edu.forward.jvp` pass, ``n`` in all, where
    ``n`` is the number of elements of the differentiated arguments. So ``f`` must be a pure
    function: randomness or state updates (dropout, batch norm in training mode) raise
    ``RuntimeError`` (see :func:`side_effect`), as in ``torch.func``.
    """

    def jacobian_fn(*args: Any) -> Any:
        positions = _positions(argnums, len(args))
        args = [_as_tensor(a) for a in args]
        chosen = [args[p] for p in positions]
        columns: list[list[Any]] = []  # per argument: the tangent outputs of each column
        outputs: Any = None
        with _evaluating_repeatedly("jacfwd", "once per input element"):
            for i, x in enumerate(chosen):
                columns.append([])
                for index in range(x.size):
                    tangents = _basis(chosen, i, index)
                    outputs, tangent_out = jvp(_restricted(f, args, positions), chosen, tangents)
                    columns[i].append(_as_outputs(tangent_out, "jacfwd")[0])
            if outputs is None:  # every differentiated argument is empty: evaluate for shapes
                with no_grad():
                    outputs = f(*args)
        outputs, single_out = _as_outputs(outputs, "jacfwd")
        result = [
            [
                _assemble(
                    [column[k] for column in columns[i]],
                    out.shape + chosen[i].shape,
                    -1,
                    np.result_type(out.dtype, chosen[i].dtype),
                )
                for i in range(len(positions))
            ]
            for k, out in enumerate(outputs)
        ]
        return _shaped(result, single_out, isinstance(argnums, (int, np.integer)))

    return jacobian_fn


def jacobian(f: Callable, argnums: Argnums = 0, mode: str = "auto") -> Callable:
    """The Jacobian of ``f`` by the cheaper mode: ``mode`` is ``"fwd"``, ``"rev"`` or ``"auto"``.

    ``"auto"`` evaluates ``f`` once without recording to learn the sizes, then uses forward
    mode when the differentiated inputs have fewer elements than the outputs (``n < m``: ``n``
    forward passes beat ``m`` backward sweeps), reverse mode otherwise.
    """
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")

    def jacobian_fn(*args: Any) -> Any:
        chosen = mode
        if chosen == "auto":
            positions = _positions(argnums, len(args))
            how = "once more to choose a mode (pass mode='rev' or 'fwd' to skip that)"
            with no_grad(), _evaluating_repeatedly("jacobian(mode='auto')", how):
                outputs, _ = _as_outputs(f(*args), "jacobian")
            n = sum(np.size(args[p]) for p in positions)
            chosen = "fwd" if n < sum(o.size for o in outputs) else "rev"
        return (jacfwd if chosen == "fwd" else jacrev)(f, argnums)(*args)

    return jacobian_fn


def hessian(f: Callable, argnums: Argnums = 0) -> Callable:
    r"""A function returning the Hessian of a scalar ``f``: ``jacfwd(jacrev(f))``.

    Forward over reverse: the gradient is a reverse-mode pass, and each column
    :math:`H e_j` differentiates that whole pass in direction :math:`e_j`. Shape
    ``in.shape + in.shape`` for one argument; a nested tuple for several.
    """
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(
    f: Callable, primals: Sequence[Any], tangents: Sequence[Any]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    r"""``(f(*primals), H · tangents)`` for a scalar ``f``, without forming the Hessian.

    One forward-mode pass over the gradient computation: the tangent of
    :math:`\nabla f(x)` in direction :math:`v` is :math:`H v`. Costs a small multiple of one
    gradient, whatever the size of :math:`H`. Returns one :math:`(Hv)_i` per primal.
    """

    def value_and_gradient(*xs: Tensor) -> tuple[Tensor, ...]:
        out, vjp_fn = vjp(f, *xs)
        if not isinstance(out, Tensor) or out.size != 1:
            raise ValueError("hvp: f must return a single-element Tensor (a scalar)")
        return (out, *vjp_fn(Tensor._wrap(np.ones(out.shape, dtype=out.dtype))))

    outputs, tangent_outputs = jvp(value_and_gradient, primals, tangents)
    return outputs[0], tuple(tangent_outputs[1:])
