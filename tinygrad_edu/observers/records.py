"""What a trace keeps: plain, frozen records of a backward sweep, with no tie to the engine.

A :class:`Recording` holds the steps (one :class:`Step` per VJP the engine applied, each with a
:class:`Delivery` per input) and, per sweep, the graph it ran over (one :class:`NodeRecord` per
tensor). Arrays are kept as :class:`Summary` objects -- shape, a few statistics and the first
values -- so memory stays bounded however large the tensors are.
:class:`~tinygrad_edu.observers.trace.Trace` fills a recording while backward runs; the explorer
draws one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: how many leading values a :class:`Summary` keeps
HEAD = 6
#: running gradient totals (for accumulation at shared tensors) are kept up to this many elements
TOTAL_LIMIT = 1 << 20


@dataclass(frozen=True)
class Summary:
    """A bounded picture of an array: shape, statistics and its first :data:`HEAD` values."""

    shape: tuple[int, ...]
    norm: float
    mean: float
    min: float
    max: float
    head: tuple[float, ...]

    @classmethod
    def of(cls, array: np.ndarray) -> Summary:
        values = np.asarray(array, dtype=np.float64)
        if values.size == 0:
            return cls(values.shape, 0.0, 0.0, 0.0, 0.0, ())
        with np.errstate(all="ignore"):
            return cls(
                shape=values.shape,
                norm=float(np.linalg.norm(values)),
                mean=float(values.mean()),
                min=float(values.min()),
                max=float(values.max()),
                head=tuple(float(v) for v in values.reshape(-1)[:HEAD]),
            )


@dataclass(frozen=True)
class NodeRecord:
    """One tensor of a traced graph: ``op`` is the name of the op that made it (``None`` for a
    leaf); ``inputs`` are the ids of its node's inputs."""

    id: int
    op: str | None
    shape: tuple[int, ...]
    requires_grad: bool
    value: Summary | None
    inputs: tuple[int, ...]
    sequence: int


@dataclass(frozen=True)
class Delivery:
    """What one input of a step receives: the VJP's gradient (``grad``, possibly broadcast-larger
    than the input), the same summed back to the input's shape (``reduced``, only when
    broadcasting was undone), whether it was *added* to gradient the input had already received
    from another consumer (``accumulated``) and the running total then (``total``, for tensors up
    to :data:`TOTAL_LIMIT` elements)."""

    input_id: int
    grad: Summary | None
    reduced: Summary | None
    accumulated: bool
    total: Summary | None


@dataclass(frozen=True)
class Step:
    """One VJP application: ``op`` turned the gradient of its output into its inputs' gradients."""

    index: int
    op: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    grad_output_norm: float | None
    grad_input_norms: tuple[float | None, ...]
    output_id: int
    input_ids: tuple[int, ...]
    created_at: str | None = None
    sweep: int = 0
    grad_output: Summary | None = None
    deliveries: tuple[Delivery, ...] = ()


@dataclass
class Recording:
    """The steps of every backward sweep and the graphs they ran over.

    ``steps`` are in the order the engine applied them; ``graphs[k]`` is the graph of the
    ``k``-th sweep (:attr:`Step.sweep`), by tensor id.
    """

    steps: list[Step] = field(default_factory=list)
    graphs: list[dict[int, NodeRecord]] = field(default_factory=list)
