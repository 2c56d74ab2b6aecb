r"""Checking a gradient the slow, obviously-correct way: central finite differences.

For a function :math:`f` and an input :math:`x`, each partial derivative is estimated as

.. math::
    \frac{\partial f}{\partial x_j} \approx
    \frac{f(x + \epsilon e_j) - f(x - \epsilon e_j)}{2\epsilon}

whose error shrinks like :math:`\epsilon^2`. Outputs with many elements are first reduced to a
scalar :math:`\sum_k v_k \cdot f_k(x)` with fixed random :math:`v_k`, so one backward pass gives the
analytic vector-Jacobian product to compare against (``"rev"``). With ``"fwd"`` in ``modes`` the
same numbers are also computed by forward mode: one Jacobian-vector product :math:`J e_j` per
input element, projected on :math:`v`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd import grad
from .forward import jvp
from .graph import enable_grad
from .tensor import Tensor

Function = Callable[..., Tensor | Sequence[Tensor]]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree.

    Attributes
    ----------
    input_position : int
        Which argument of the function (0-based).
    index : tuple of int
        The element of that argument where the disagreement is worst.
    numeric, analytic : float
        The two estimates of the derivative there.
    relative_error : float
        ``|analytic - numeric| / max(|numeric|, tiny)``.
    mode : str
        ``"rev"`` (reverse mode, the VJP) or ``"fwd"`` (forward mode, the JVP).
    """

    def __init__(
        self,
        input_position: int,
        index: tuple[int, ...],
        numeric: float,
        analytic: float,
        mode: str = "rev",
        **tol,
    ) -> None:
        self.input_position, self.index = input_position, index
        self.numeric, self.analytic, self.mode = numeric, analytic, mode
        self.relative_error = abs(analytic - numeric) / max(abs(numeric), 1e-300)
        by = " (forward mode)" if mode == "fwd" else ""
        super().__init__(
            f"gradcheck failed for input {input_position} at index {index}: "
            f"numeric {numeric:.8g} vs analytic{by} {analytic:.8g} "
            f"(relative error {self.relative_error:.3g}; atol={tol['atol']}, rtol={tol['rtol']})"
        )


def _as_outputs(result: Tensor | Sequence[Tensor]) -> list[Tensor]:
    outputs = [result] if isinstance(result, Tensor) else list(result)
    if not outputs or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError("gradcheck: the function must return a Tensor or a sequence of Tensors")
    return outputs


def _prepare(inputs: Sequence[Any]) -> tuple[list[Tensor], list[int]]:
    """Float64 copies of the inputs, and the positions of those to check."""
    tensors = [x if isinstance(x, Tensor) else Tensor(x, dtype=np.float64) for x in inputs]
    checked = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    if any(tensors[i].dtype != np.float64 for i in checked):
        warnings.warn(
            "gradcheck: some inputs are not float64; finite differences in lower precision are "
            "unreliable, so they are checked as float64 copies",
            stacklevel=3,
        )
    copies = [
        Tensor(np.array(t.data, dtype=np.float64), requires_grad=t.requires_grad)
        if t.dtype.kind == "f"
        else t
        for t in tensors
    ]
    return copies, checked


def _projection(fn: Function, xs: list[Tensor], directions: list[np.ndarray]) -> float:
    with enable_grad():
        outputs = _as_outputs(fn(*xs))
    return float(sum(np.vdot(v, o.data) for v, o in zip(directions, outputs)))


MODES = ("rev", "fwd")


def _reverse_mode(outputs, xs, checked, directions) -> list[np.ndarray]:
    """``v^T J`` for each checked input: one backward pass."""
    differentiable = [i for i, o in enumerate(outputs) if o.requires_grad]
    if not differentiable:
        return [np.zeros(xs[i].shape) for i in checked]
    grads = grad(
        [outputs[i] for i in differentiable],
        [xs[i] for i in checked],
        grad_outputs=[Tensor(directions[i], dtype=np.float64) for i in differentiable],
        allow_unused=True,
    )
    return [
        np.zeros(xs[i].shape) if g is None else np.asarray(g.data, dtype=np.float64)
        for i, g in zip(checked, grads)
    ]


def _forward_mode(fn, xs, checked, directions) -> list[np.ndarray]:
    """``v^T J e_j`` for every element ``j`` of each checked input: one JVP per element."""
    results = []
    for position in checked:
        x = xs[position]
        values = np.zeros(x.shape)
        for index in np.ndindex(x.shape):
            unit = np.zeros(x.shape)
            unit[index] = 1.0
            tangents = [unit if i == position else np.zeros(xs[i].shape) for i in checked]

            def restricted(*chosen: Tensor) -> Tensor | Sequence[Tensor]:
                full = list(xs)
                for i, value in zip(checked, chosen):
                    full[i] = value
                return fn(*full)

            with enable_grad():
                _, tangent_out = jvp(restricted, [xs[i] for i in checked], tangents)
            tangent_out = _as_outputs(tangent_out)
            values[index] = sum(np.vdot(v, t.data) for v, t in zip(directions, tangent_out))
        results.append(values)
    return results


def gradcheck(
    fn: Function,
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    modes: Sequence[str] = ("rev",),
) -> bool:
    """Compare ``fn``'s analytic gradients with central finite differences, in float64.

    Parameters
    ----------
    fn
        Takes ``len(inputs)`` tensors, returns a Tensor or a sequence of Tensors.
    inputs
        Tensors (those with ``requires_grad=True`` are checked) or arrays (used as constants).
        float32 inputs trigger a warning and are checked as float64 copies.
    eps, atol, rtol
        Step size and tolerances: an element passes when
        ``|analytic - numeric| <= atol + rtol * |numeric|``.
    seed
        Seeds the random output weights used to reduce vector outputs to a scalar.
    modes
        Which analytic derivatives to check: ``"rev"`` (reverse mode, every op's VJP) and/or
        ``"fwd"`` (forward mode, every op's JVP).

    Returns
    -------
    bool
        ``True``; a failure raises :class:`GradcheckError` naming the input, the worst index,
        both values, the relative error and (for forward mode) the mode.
    """
    modes = tuple(modes)
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"gradcheck: modes must be a non-empty subset of {MODES}, got {modes}")
    xs, checked = _prepare(inputs)
    with enable_grad():
        outputs = _as_outputs(fn(*xs))
    rng = np.random.default_rng(seed)
    directions = [rng.standard_normal(o.shape) for o in outputs]
    analytic = {}
    if "rev" in modes:
        analytic["rev"] = _reverse_mode(outputs, xs, checked, directions)
    if "fwd" in modes:
        analytic["fwd"] = _forward_mode(fn, xs, checked, directions)
    for slot, position in enumerate(checked):
        x = xs[position].data
        numeric = np.zeros(x.shape)
        for index in np.ndindex(x.shape):
            original = x[index]
            x[index] = original + eps
            plus = _projection(fn, xs, directions)
            x[index] = original - eps
            minus = _projection(fn, xs, directions)
            x[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        for mode, values in analytic.items():
            analytic_values = values[slot]
            excess = np.abs(analytic_values - numeric) - (atol + rtol * np.abs(numeric))
            excess = np.where(np.isnan(excess), np.inf, excess)
            if x.size and excess.max() > 0:
                worst = np.unravel_index(int(np.argmax(excess)), x.shape)
                raise GradcheckError(
                    position,
                    tuple(int(i) for i in worst),
                    float(numeric[worst]),
                    float(analytic_values[worst]),
                    mode=mode,
                    atol=atol,
                    rtol=rtol,
                )
    return True


def gradgradcheck(fn: Function, inputs: Sequence[Any], *, seed: int = 0, **options: Any) -> bool:
    """Check second derivatives: :func:`gradcheck` applied to ``fn``'s own gradient.

    The first-order gradients are computed with ``create_graph=True`` for a fixed random
    upstream gradient ``v``; the function ``x -> v^T J_fn(x)`` is then gradchecked, which
    exercises every VJP's own VJP (Hessian-vector products). ``options`` are
    :func:`gradcheck`'s (``eps``, ``atol``, ``rtol``, ``modes``); ``modes=("fwd",)``
    differentiates the reverse pass by forward mode (forward over reverse, every VJP op's JVP).
    """
    xs, checked = _prepare(inputs)
    with enable_grad():
        outputs = _as_outputs(fn(*xs))
    rng = np.random.default_rng(seed + 1)
    upstream = [Tensor(rng.standard_normal(o.shape), dtype=np.float64) for o in outputs]

    def first_order(*args: Tensor) -> list[Tensor]:
        with enable_grad():
            outs = _as_outputs(fn(*args))
            grads = grad(
                outs, [args[i] for i in checked], upstream, create_graph=True, allow_unused=True
            )
        return [
            Tensor.zeros(args[i].shape, dtype=np.float64) if g is None else g
            for i, g in zip(checked, grads)
        ]

    return gradcheck(first_order, xs, seed=seed, **options)
