"""The recorder: an observer that writes down every op a step applies, forward and backward.

Recording needs no new machinery: the engine already tells every
:class:`~tinygrad_edu.graph.Observer` about each op it applies. A :class:`Recorder` writes each
op, the tensors it read and the tensor it wrote into a list -- the *tape*. Since every VJP is
written in Tensor ops, the backward pass lands on the same tape as the forward. A hook on each
leaf that requires grad catches its final gradient.

On the way it checks what the engine shows it: a forward op given an array parameter (a mask,
an index array) or a generator, a tensor computed outside the step, a derivative rule not
marked replayable (:attr:`~tinygrad_edu.graph.Op.replayable_vjp`), hooks. What the Python around
the ops does is the business of the :class:`~tinygrad_edu.compile.watcher.PythonWatcher` it
also is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..graph import Observer, Op
from ..tensor import Tensor
from .op_parameters import given, has_array, parameters
from .watcher import RANDOM_SOURCES, PythonWatcher

#: one entry of a tape: an op, the tensors it read, the one it wrote
Event = tuple[Op, tuple[Tensor, ...], Tensor]


class Recorder(PythonWatcher, Observer):
    """Writes down every op applied (forward and backward) and each leaf's final gradient, and
    watches the Python around the ops for what a tape cannot replay (the first ``problem``).

    ``args`` are the call's values by position; ``first`` is the first recording of the same
    signature, when this is the second.
    """

    def __init__(self, args: Sequence[Any], first: Recorder | None = None) -> None:
        read_before = (
            [t for _, inputs, _ in first.events for t in inputs] if first is not None else []
        )
        super().__init__(read_before)
        self.args = tuple(args)
        self.events: list[Event] = []
        self.produced: set[int] = set()
        self.forward_leaves: set[int] = set()  # the forward's inputs no recorded op made
        self.leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}
        self._removers: list[Callable[[], None]] = []
        self._hooked: set[int] = set()
        self._in_backward = False

    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        if self.problem is None:
            self._check_op(op, inputs)
        if not self._in_backward:
            self.forward_leaves.update(id(t) for t in inputs if id(t) not in self.produced)
        self.events.append((op, tuple(inputs), out))
        self.produced.add(id(out))
        self.data_arrays.add(id(out.data))
        if self._watching:
            self.watch(out)
        self.data_arrays.update(id(t.data) for t in inputs)

    def _check_op(self, op: Op, inputs: Sequence[Tensor]) -> None:
        # forward ops only: the backward's come from the replayable rules (a value
        # reading rule is named by vjp_applied)
        if any(isinstance(v, RANDOM_SOURCES) for _, v in parameters(op)):
            self.note(f"{op.name!r} draws random numbers in its kernel")
        if not self._in_backward and has_array(given(op)):
            self.note(
                f"{op.name!r} takes an array parameter (a mask or an index array, such as "
                "where's condition or x[x > 0]), which may be computed from values; a tape "
                "would freeze it"
            )
        for t in inputs:
            if id(t) not in self.produced and t._node is not None:
                self.note(
                    f"the step uses a tensor of shape {t.shape} computed outside it (by "
                    f"{t._node.name!r}), whose graph the tape does not hold"
                )

    def forward_finished(self) -> None:
        """Before backward: check the forward's side effects, and watch the final gradient of
        every leaf that requires grad."""
        self._in_backward = True
        self.forward_side_effects()
        for _, inputs, _ in self.events:
            for t in inputs:
                if t.requires_grad and t._node is None and id(t) not in self._hooked:
                    self._hooked.add(id(t))
                    if t._hooks:
                        self.note(f"a tensor of shape {t.shape} has hooks")
                    self._removers.append(t.register_hook(self._catcher(t)))

    def _catcher(self, leaf: Tensor) -> Callable[[Tensor], None]:
        def catch(g: Tensor) -> None:
            self.leaf_grads[id(leaf)] = (leaf, g)

        return catch

    def vjp_applied(self, node: Op, out: Tensor, g: Tensor, input_grads: tuple) -> None:
        if not type(node).replayable_vjp:
            self.note(
                f"the derivative rule of {node.name!r} reads concrete values outside ops, so a "
                "tape of its backward would freeze them"
            )
        if out._hooks:
            self.note(f"a tensor of shape {out.shape} made by {node.name!r} has hooks")

    def remove_hooks(self) -> None:
        """Remove the gradient catchers, leaving each leaf's hooks as they were."""
        for remove in self._removers:
            remove()
        for _, inputs, _ in self.events:
            for t in inputs:
                if id(t) in self._hooked and t._hooks == []:
                    t._hooks = None  # as it was: no hook list at all
