"""Reverse mode: walk the recorded graph backwards, applying each op's VJP.

The algorithm, for a scalar loss ``L``:

1. **Order.** Every recorded op carries a sequence number from a global counter. An op can only
   be created after the ops that produced its inputs, so visiting nodes in *decreasing* sequence
   number is a topological order of the graph, reversed: each tensor comes before everything it
   was computed from. A max-heap of the nodes discovered so far yields them in that order -- the
   scheme PyTorch's engine uses. It is a loop, not a recursion, so a chain of 100,000 ops works
   at Python's default recursion limit, and it visits only what the output depends on.
2. **Sweep** (:func:`_sweep`, one screen). Start from ``dL/dL = 1``. When a tensor is popped,
   every consumer of it has a larger sequence number and was processed already, so its gradient
   is complete: run its hooks, hand it to its op's VJP, let the observers check the result, and
   *add* each input's gradient to what that input has received so far (summed back to the
   input's shape first -- the one place where broadcasting is undone). A tensor used twice
   (``a + a``, a diamond) gets the sum of both paths: the multivariate chain rule.
3. **Deliver.** Leaves have no inputs, so their gradients are complete once the sweep ends; they
   accumulate into ``.grad`` (``backward``) or are returned (``grad``).

:func:`grad` prunes first: only the inputs of a node that lie on a path to a requested tensor are
asked for a gradient, so ``grad(loss, [x])`` through frozen weights computes no weight gradient.
With ``create_graph=True`` the VJPs run with recording on. Since every VJP is written with Tensor
ops, the gradients are then themselves tensors in a graph and can be differentiated again.
"""

from __future__ import annotations

import heapq
import threading
import weakref
from collections.abc import Sequence

import numpy as np

from . import graph
from .graph import RELEASED, Observer, Op, VJPError
from .tensor import ArrayLike, Tensor


class VJPContract(Observer):
    """Checks every VJP's result: one gradient per input, each a Tensor (or ``None``) whose shape
    broadcasts to its input's. Always on: a wrong gradient must never pass silently."""

    def vjp_applied(self, node: Op, out: Tensor, g: Tensor, input_grads: tuple) -> None:
        if len(input_grads) != len(node.inputs):
            raise VJPError(
                f"the VJP of op '{node.name}' returned {len(input_grads)} gradient(s) for "
                f"{len(node.inputs)} input(s)"
            )
        for position, (x, gx) in enumerate(zip(node.inputs, input_grads)):
            if gx is None or (gx.__class__ is Tensor and gx.shape == x.shape):
                continue
            if not isinstance(gx, Tensor):
                raise VJPError(
                    f"the VJP of op '{node.name}' returned a {type(gx).__name__} for input "
                    f"{position}; it must return Tensors (or None), built from Tensor ops"
                )
            if not _broadcasts_to(x.shape, gx.shape):
                raise VJPError(
                    f"the VJP of op '{node.name}' returned a gradient of shape {gx.shape} for "
                    f"input {position} of shape {x.shape}"
                )


CONTRACT = VJPContract()


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether broadcasting ``shape`` gives exactly ``target`` (so summing undoes it)."""
    if len(target) < len(shape):
        return False
    return all(n == m or n == 1 for n, m in zip(shape[::-1], target[::-1]))


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
    watchers = (CONTRACT, *graph.observers())
    for watcher in watchers:
        watcher.backward_started(outputs, seeds)
    grads: dict[int, Tensor] = {}
    heap: list[tuple[int, int, Tensor]] = []  # (-sequence, tie-breaker, tensor)
    leaves: list[Tensor] = []
    for output, seed in zip(outputs, seeds):
        if id(output) not in grads:
            _discover(output, heap, leaves)
        _add(grads, output, seed)
    state = graph._state
    outer = state.narrowed, state.grad_enabled
    try:
        state.narrowed = {}  # for this thread and this sweep only (a sweep nested in a hook
        if targets is not None:  # starts from the recorded masks)
            state.narrowed = _narrow(_reaching(outputs, targets))
        state.grad_enabled = create_graph  # the VJPs are recorded only with create_graph
        return _sweep(heap, grads, leaves, targets, retain_graph, create_graph, watchers)
    finally:
        state.narrowed, state.grad_enabled = outer
        for watcher in watchers:
            watcher.backward_finished()


def _sweep(heap, grads, leaves, targets, retain_graph, create_graph, watchers) -> dict:
    """Pop nodes in decreasing sequence order, apply their VJPs, then deliver the leaves.

    With ``targets`` the sweep stops as soon as every target has its gradient; the leaves not
    asked for are then skipped (their gradients may be incomplete, so no hook sees them).
    """
    delivered: dict[int, Tensor] = {}
    remaining = len(targets) if targets is not None else -1
    narrowing = bool(graph._state.narrowed)  # a grad() sweep asks nodes for fewer gradients
    observed = len(watchers) > 1  # observers beside the contract see every VJP, contract first
    while heap and remaining:
        tensor = heapq.heappop(heap)[2]  # 1. pop: every consumer of it is done
        g = grads.pop(id(tensor))
        if tensor._hooks:
            g = _run_hooks(tensor, g)  # 2. hooks may read or replace g
        if targets is not None and id(tensor) in targets:
            delivered[id(tensor)] = g
            remaining -= 1
        node = tensor._node
        if tensor._version_counter[0] != node.saved_output_version or node.saved_versions != tuple(
            [x._version_counter[0] for x in node.inputs]
        ):
            _check_unchanged(node, tensor)  # raises, naming what was changed in place
        input_grads = node.vjp(g, tensor, *node.inputs)  # 3. the op's derivative rule
        if input_grads.__class__ is not tuple:
            input_grads = (input_grads,)
        if observed or len(input_grads) != len(node.inputs):
            for watcher in watchers:  # 4. contract, anomaly, trace
                watcher.vjp_applied(node, tensor, g, input_grads)
        mask = node.needs_input_grad if narrowing else node._needs_input_grad
        for parent, parent_grad, wanted in zip(node.inputs, input_grads, mask):
            if parent_grad is None:
                continue
            if parent_grad.__class__ is not Tensor or parent_grad.data.shape != parent.data.shape:
                if not observed:  # 4. the contract (already run if observed): raises if wrong
                    CONTRACT.vjp_applied(node, tensor, g, input_grads)
                if wanted and parent_grad.shape != parent.shape:
                    parent_grad = parent_grad.sum_to(parent.shape)  # undo broadcasting
            if wanted:  # 5. accumulate: the first gradient schedules the parent
                key = id(parent)
                previous = grads.get(key)
                if previous is None:
                    _discover(parent, heap, leaves)
                    grads[key] = parent_grad
                else:
                    grads[key] = previous + parent_grad
        if not retain_graph:
            tensor._node = RELEASED
    for leaf in leaves:
        if targets is not None and id(leaf) not in targets:
            continue
        g = grads.pop(id(leaf))
        if leaf._hooks:
            g = _run_hooks(leaf, g)
        if targets is None:
            _accumulate(leaf, g, create_graph)
        else:
            delivered[id(leaf)] = g
    return delivered


def _check_unchanged(node: Op, out: Tensor) -> None:
    """Refuse a VJP whose inputs or output were changed in place after the op was recorded.

    The VJP reads the tensors' *current* arrays; had an optimizer step (or ``copy_``,
    ``load_state_dict`` ...) changed one since the forward pass, the gradient would silently mix
    old and new values. Each recorded op saved its inputs' and its output's version counters.
    """
    if out._version_counter[0] != node.saved_output_version:
        _modified(node, "its output", out, node.saved_output_version)
    versions = tuple([x._version_counter[0] for x in node.inputs])
    if versions != node.saved_versions:
        for position, (x, version) in enumerate(zip(node.inputs, node.saved_versions)):
            if x._version_counter[0] != version:
                _modified(node, f"input {position}", x, version)


def _modified(node: Op, which: str, tensor: Tensor, expected: int) -> None:
    raise RuntimeError(
        f"one of the tensors needed for gradient computation has been modified by an in-place "
        f"operation: {which} of op '{node.name}' (shape {tensor.shape}, {tensor.dtype}) is at "
        f"version {tensor._version}; expected version {expected}. Run backward() before changing "
        "it (e.g. optimizer.step() after loss.backward()), or change a copy"
    )


def _discover(tensor: Tensor, heap: list, leaves: list[Tensor]) -> None:
    """First gradient for ``tensor``: schedule its node, or remember it as a leaf."""
    node = tensor._node
    if node is None:
        leaves.append(tensor)
    else:
        heapq.heappush(heap, (-node.sequence, id(tensor), tensor))


def _narrow(reaches: dict[int, Tensor]) -> dict[int, tuple[weakref.ref, tuple[bool, ...]]]:
    """While a ``grad()`` sweep runs, ask each node only for the input gradients that reach a
    target: the narrowed masks of the nodes on paths to a target, by node id (the recorded
    masks are read: no narrowing is active while this runs).

    A tensor *reaches* a target if it is one or if an input of its node reaches one. The
    masks live in the thread's engine state for one sweep (VJPs skip work for ``False``
    entries); the nodes themselves are unchanged, so a retained graph, another thread's sweep
    over it and a sweep nested in a hook all see the masks recorded in the forward pass. The
    nodes are held weakly, and ``reaches`` is dropped on return: the sweep releases each
    node, and with it the activations it saved, right after its VJP -- holding them all until
    the end would keep every activation of the forward pass alive through the whole sweep.
    """
    narrowed = {}
    for node in {id(t._node): t._node for t in reaches.values() if t._node}.values():
        recorded = node.needs_input_grad
        mask = tuple(wanted and id(x) in reaches for x, wanted in zip(node.inputs, recorded))
        if mask != recorded:
            narrowed[id(node)] = (weakref.ref(node), mask)
    return narrowed


def _reaching(outputs: Sequence[Tensor], targets: set[int]) -> dict[int, Tensor]:
    """The tensors (by id) from which a path of recorded ops leads to a target.

    An iterative depth-first search: a tensor is finished once all its node's inputs are.
    """
    reaches: dict[int, Tensor] = {}
    finished: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(o, False) for o in outputs]
    while stack:
        tensor, inputs_done = stack.pop()
        key = id(tensor)
        if key in finished:
            continue
        node = tensor._node
        parents = node.inputs if node is not None else ()
        if not inputs_done:
            stack.append((tensor, True))
            stack.extend((p, False) for p in parents if id(p) not in finished)
            continue
        finished.add(key)
        if key in targets or any(id(p) in reaches for p in parents):
            reaches[key] = tensor
    return reaches


def _run_hooks(tensor: Tensor, g: Tensor) -> Tensor:
    """``g`` after ``tensor``'s hooks, each of which may return a replacement.

    As in PyTorch, a replacement must be a Tensor of the gradient's shape and dtype: anything
    else raises (``TypeError``, ``RuntimeError``) naming the hook, before it could change
    ``.grad`` or be broadcast into the rest of the graph.
    """
    if tensor._hooks:
        for hook in list(tensor._hooks):
            replaced = hook(g)
            if replaced is None:
                continue
            name = getattr(hook, "__qualname__", None) or repr(hook)
            if not isinstance(replaced, Tensor):
                raise TypeError(
                    f"hook {name!r} returned a {type(replaced).__name__}; a gradient hook must "
                    "return a Tensor or None"
                )
            if replaced.shape != g.shape:
                raise RuntimeError(
                    f"hook {name!r} has changed the size of value: it was given a gradient of "
                    f"shape {g.shape} and returned shape {replaced.shape}"
                )
            if replaced.dtype != g.dtype:
                raise RuntimeError(
                    f"hook {name!r} has changed the type of value: it was given a {g.dtype} "
                    f"gradient and returned {replaced.dtype}"
                )
            g = replaced
    return g


def _add(grads: dict[int, Tensor], tensor: Tensor, g: Tensor) -> None:
    previous = grads.get(id(tensor))
    grads[id(tensor)] = g if previous is None else previous + g


#: held while a ``.grad`` is read, summed and written back: backward passes in several threads
#: that reach one leaf must each add their share (PyTorch's accumulation holds a lock too)
_ACCUMULATING = threading.Lock()


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool) -> None:
    """``leaf.grad += g`` in the leaf's dtype; ``.grad`` is created on first use, always as a
    fresh array (with ``create_graph``: a differentiable cast and sum, so it keeps its graph)."""
    with _ACCUMULATING:
        if not create_graph:
            data = g.data.astype(leaf.data.dtype)  # a new array: g's may be shared
            if leaf.grad is not None:
                data += leaf.grad.data
            leaf.grad = Tensor._wrap(data)
        else:
            if g.dtype != leaf.dtype:
                g = g.astype(leaf.dtype)
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


def _one_per_output(grad_outputs: object) -> bool:
    """Whether ``grad_outputs`` for a single output is PyTorch's one-element list of it
    (``[g]`` or ``[None]``) rather than array-like data."""
    return (
        isinstance(grad_outputs, (list, tuple))
        and len(grad_outputs) == 1
        and (grad_outputs[0] is None or isinstance(grad_outputs[0], Tensor))
    )


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
    outputs). No ``.grad`` attribute is touched. Inputs may be leaves or intermediate tensors;
    an output listed twice counts twice, an input listed twice gets its gradient twice.

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
    elif single_output and not _one_per_output(grad_outputs):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for position, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"grad: input {position} is a {type(tensor).__name__}, not a Tensor")
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
        if g is not None and g.dtype != tensor.dtype:
            with graph._GradMode(create_graph):  # the cast op: its graph (create_graph) and
                g = g.astype(tensor.dtype)  # forward-mode tangents (hessian) survive
        results.append(g)
    return results
