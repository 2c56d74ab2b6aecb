"""Reverse mode: walk the recorded graph backwards, applying each op's VJP.

The algorithm, for a scalar loss ``L``:

1. **Order.** List every tensor ``L`` depends on (through tensors that require grad) so that each
   comes *after* everything it was computed from -- a topological order. The walk uses an explicit
   stack rather than recursion, so a chain of 100,000 ops works at Python's default recursion
   limit.
2. **Sweep.** Visit the list in reverse, starting from ``dL/dL = 1``. When a tensor is reached, all
   of its consumers have already been visited, so its gradient is complete. Hand it to its op's
   VJP, which returns one gradient per input; sum each back to the input's shape (the one place
   where broadcasting is undone) and *add* it to what that input has received so far -- a tensor
   used twice (``a + a``, a diamond) gets the sum of both paths: the multivariate chain rule.
3. **Deliver.** Leaves accumulate into ``.grad`` (``backward``) or are returned (``grad``).

With ``create_graph=True`` the VJPs run with recording on. Since every VJP is written with Tensor
ops, the gradients are then themselves tensors in a graph and can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import anomaly, graph, tracing
from .graph import RELEASED, Op
from .tensor import ArrayLike, Tensor


def topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Tensors reachable from ``roots`` through ``requires_grad`` links, inputs before outputs.

    Iterative depth-first search: a tensor is pushed once to expand its inputs and once more to be
    emitted after all of them.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    for root in roots:
        stack: list[tuple[Tensor, bool]] = [(root, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if inputs_done:
                order.append(tensor)
                continue
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            stack.append((tensor, True))
            node = tensor._node
            if node is not None:
                for parent in node.inputs:
                    if parent.requires_grad and id(parent) not in seen:
                        stack.append((parent, False))
    return order


def _seed(output: Tensor, grad: ArrayLike | None) -> Tensor:
    if not output.requires_grad:
        raise RuntimeError(
            f"backward: the tensor of shape {output.shape} does not require grad and was not "
            "computed from anything that does (did you forget requires_grad=True, or compute it "
            "under no_grad()?)"
        )
    if grad is None:
        if output.size != 1:
            raise RuntimeError(
                f"backward() without a gradient is only defined for a single-element tensor; this "
                f"one has shape {output.shape}. Reduce it first (e.g. .sum()) or pass "
                "grad=<upstream gradient of the same shape>"
            )
        return Tensor._wrap(np.ones(output.shape, dtype=output.dtype))
    seed = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=output.dtype)
    if seed.shape != output.shape:
        raise ValueError(
            f"backward: the gradient has shape {seed.shape} but the tensor has shape {output.shape}"
        )
    return seed


def _run(
    outputs: Sequence[Tensor],
    seeds: Sequence[Tensor],
    targets: set[int] | None,
    retain_graph: bool,
    create_graph: bool,
) -> dict[int, Tensor]:
    """The sweep shared by :func:`backward` and :func:`grad`.

    ``targets`` are the ids of the tensors whose gradients are wanted (``None``: every leaf, whose
    ``.grad`` then accumulates). Returns the gradients that reached the targets.
    """
    order = topological_order(outputs)
    needed = _needed(order, targets) if targets is not None else None
    grads: dict[int, Tensor] = {}
    for output, seed in zip(outputs, seeds):
        if anomaly.enabled:
            anomaly.check_seed(seed)
        _add(grads, output, seed)
    delivered: dict[int, Tensor] = {}
    with graph._GradMode(create_graph):
        for tensor in reversed(order):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            if tensor._hooks:
                for hook in list(tensor._hooks):
                    replaced = hook(g)
                    if replaced is not None:
                        g = replaced
            node = tensor._node
            if targets is None and node is None:
                _accumulate(tensor, g, create_graph)
                continue
            if targets is not None and id(tensor) in targets:
                delivered[id(tensor)] = g
            if node is None or (needed is not None and not _feeds_target(node, needed)):
                continue
            _propagate(tensor, node, g, grads, needed)
            if not retain_graph:
                tensor._node = RELEASED
    return delivered


def _needed(order: list[Tensor], targets: set[int]) -> set[int]:
    """Ids of tensors with a path to some target: only their VJPs need to run."""
    needed: set[int] = set()
    for tensor in order:  # inputs come first, so each parent's status is known
        node = tensor._node
        if id(tensor) in targets or (
            node is not None and any(id(p) in needed for p in node.inputs)
        ):
            needed.add(id(tensor))
    return needed


def _feeds_target(node: Op, needed: set[int]) -> bool:
    return any(id(p) in needed for p in node.inputs)


def _propagate(
    tensor: Tensor, node: Op, g: Tensor, grads: dict[int, Tensor], needed: set[int] | None
) -> None:
    """Apply ``node``'s VJP and add each input's share to ``grads``."""
    input_grads = node.vjp(g, tensor, *node.inputs)
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    if anomaly.enabled:
        anomaly.check_gradients(node, input_grads)
    if tracing.active is not None:
        tracing.active.record(node, tensor, g, input_grads)
    for parent, parent_grad, wanted in zip(node.inputs, input_grads, node.needs_input_grad):
        if not wanted or parent_grad is None:
            continue
        if needed is not None and id(parent) not in needed:
            continue
        if parent_grad.shape != parent.shape:
            parent_grad = parent_grad.sum_to(parent.shape)  # undo broadcasting, for every op
        _add(grads, parent, parent_grad)


def _add(grads: dict[int, Tensor], tensor: Tensor, g: Tensor) -> None:
    previous = grads.get(id(tensor))
    grads[id(tensor)] = g if previous is None else previous + g


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool) -> None:
    """``leaf.grad += g``; ``.grad`` is created on first use, always as a fresh array."""
    if not create_graph:
        data = g.data.astype(leaf.dtype, copy=True)
        if leaf.grad is not None:
            data += leaf.grad.data
        leaf.grad = Tensor._wrap(data)
    else:
        leaf.grad = g if leaf.grad is None else leaf.grad + g


def backward(
    output: Tensor,
    grad: ArrayLike | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> None:
    """Accumulate ``d output / d leaf`` into ``leaf.grad`` for every leaf that requires grad.

    See :meth:`Tensor.backward`.
    """
    seed = _seed(output, grad)
    _run([output], [seed], None, retain_graph or create_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: ArrayLike | Sequence[ArrayLike | None] | None = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> list[Tensor | None]:
    r"""Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    Computes :math:`\sum_k \bar o_k^T \, \partial o_k / \partial x_i` for each input
    :math:`x_i`, where :math:`\bar o_k` is ``grad_outputs[k]`` (default 1 for single-element
    outputs). No ``.grad`` attribute is touched. Inputs may be leaves or intermediate tensors.

    Parameters
    ----------
    outputs, inputs
        A tensor or a sequence of tensors each.
    grad_outputs
        Upstream gradients, one per output (``None`` entries default to ones for single-element
        outputs).
    create_graph
        Record the backward pass, so the returned gradients can be differentiated again
        (grad of grad, Hessian-vector products).
    retain_graph
        Keep the graph for another backward; defaults to ``create_graph``.
    allow_unused
        Return ``None`` for an input that ``outputs`` do not depend on, instead of raising.

    Returns
    -------
    list of Tensor
        One gradient per input, each of that input's shape.
    """
    single_output = isinstance(outputs, Tensor)
    outputs = [outputs] if single_output else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif single_output:
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for position, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(
                f"grad: input {position} (shape {tensor.shape}) does not require grad"
            )
    seeds = [_seed(o, g) for o, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else retain_graph
    delivered = _run(outputs, seeds, {id(t) for t in inputs}, retain, create_graph)
    results: list[Tensor | None] = []
    for position, tensor in enumerate(inputs):
        g = delivered.get(id(tensor))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {position} (shape {tensor.shape}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        if g is not None and g.dtype != tensor.dtype and not create_graph:
            g = Tensor._wrap(g.data.astype(tensor.dtype))
        results.append(g)
    return results
