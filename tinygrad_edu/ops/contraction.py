r"""Einstein summation: ``einsum("ij,jk->ik", a, b)`` and the contractions built on it.

For :math:`y = \mathrm{einsum}(s_1, \dots, s_n \to s_y)` each operand's gradient is again an
einsum: the upstream gradient (labels :math:`s_y`) contracted with every *other* operand, written
out to the operand's own labels,

.. math:: \bar x_k = \mathrm{einsum}(s_y, s_1, \dots, \hat{s_k}, \dots, s_n \to s_k)(\bar y, \dots)

Labels of :math:`s_k` that appear nowhere else were summed away inside :math:`x_k` alone; their
gradient is a copy, so the result is broadcast along them. The JVP is the sum over operands of
the einsum with one operand replaced by its tangent (the product rule).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..graph import Op
from .common import add_tangents


def parse(subscripts: str, count: int) -> tuple[list[str], str]:
    """``"ij,jk->ik"`` as ``(["ij", "jk"], "ik")``; the implicit form gets NumPy's output."""
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ValueError("einsum: ellipses ('...') are not supported; name every axis")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise ValueError(f"einsum: {subscripts!r} names {len(terms)} operands, got {count}")
    counts = Counter("".join(terms))
    if not arrow:
        output = "".join(sorted(label for label, n in counts.items() if n == 1))
    for term in terms:
        if len(set(term)) != len(term):
            raise ValueError(f"einsum: repeated label within one operand ({term!r}) unsupported")
    if not all(c.isalpha() for c in "".join(terms) + output):
        raise ValueError(f"einsum: labels must be letters, got {subscripts!r}")
    return terms, output


class Einsum(Op):
    r"""y = einsum(subscripts, *xs) (see the module docstring for the rule)."""

    name = "einsum"

    def __init__(self, terms: tuple[str, ...], output: str) -> None:
        self.terms, self.output = terms, output

    def forward(self, *xs):
        for term, x in zip(self.terms, xs):
            if len(term) != x.ndim:
                raise ValueError(f"einsum: operand {term!r} has shape {x.shape}")
        return np.einsum(f"{','.join(self.terms)}->{self.output}", *xs, optimize=len(xs) > 2)

    def vjp(self, g, out, *xs):
        grads = []
        for k, (term, x, need) in enumerate(zip(self.terms, xs, self.needs_input_grad)):
            if not need:
                grads.append(None)
                continue
            others = [t for i, t in enumerate(self.terms) if i != k]
            present = set(self.output).union(*others)
            kept = "".join(label for label in term if label in present)
            partial = Einsum.apply(
                g,
                *[x2 for i, x2 in enumerate(xs) if i != k],
                terms=(self.output, *others),
                output=kept,
            )
            if kept != term:  # labels summed inside x_k alone: their gradient is a copy
                shape = tuple(n if label in present else 1 for label, n in zip(term, x.shape))
                partial = partial.reshape(shape).broadcast_to(x.shape)
            grads.append(partial)
        return tuple(grads)

    def jvp(self, tangents, out, *xs):
        terms = [
            None
            if t is None
            else Einsum.apply(
                *xs[:k],
                t.broadcast_to(xs[k].shape),
                *xs[k + 1 :],
                terms=self.terms,
                output=self.output,
            )
            for k, t in enumerate(tangents)
        ]
        return add_tangents(*terms)
