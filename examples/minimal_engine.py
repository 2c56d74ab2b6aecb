"""Reverse-mode autodiff in about 100 lines: read this first, then docs/engine.md.

A ``Value`` is a NumPy array (or a number) that remembers the values it was computed from
(``parents``) and a function ``vjp`` turning the gradient of the result, ``g = dL/d(self)``, into
one gradient per parent -- the vector-Jacobian product. ``backward()`` orders the graph so that
every value comes after its parents, then walks that order backwards applying each ``vjp`` and
*adding* what arrives at each parent (a value used twice gets both contributions: the chain rule).

The real engine (``tinygrad_edu``) computes the same gradients --
``tests/examples/test_minimal_engine.py`` checks it on the shared op table -- and adds what this
file leaves out; docs/engine.md goes through it step by step. Run this file to see a gradient
of a tiny network.
"""

from __future__ import annotations

import numpy as np


class Value:
    def __init__(self, data, parents=(), vjp=None):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = None  # dL/d(self) after backward(), an array of the same shape
        self.parents = parents
        self.vjp = vjp  # g -> one gradient per parent

    # -- ops: the forward value and the derivative rule side by side -------------------------
    def __add__(self, other):
        other = lift(other)
        return Value(self.data + other.data, (self, other), lambda g: (g, g))

    def __mul__(self, other):
        other = lift(other)
        a, b = self.data, other.data
        return Value(a * b, (self, other), lambda g: (g * b, g * a))

    def __pow__(self, other):
        a = self.data
        if not isinstance(other, Value):  # a constant exponent: the power rule
            return Value(a**other, (self,), lambda g: (g * other * a ** (other - 1),))
        b, out = other.data, a**other.data
        return Value(out, (self, other), lambda g: (g * b * a ** (b - 1), g * out * np.log(a)))

    def __matmul__(self, other):
        a, b = self.data, other.data
        a2 = a[None, :] if a.ndim == 1 else a  # a vector acts as a row ...
        b2 = b[:, None] if b.ndim == 1 else b  # ... or as a column

        def vjp(g):
            g2 = np.reshape(g, (a2 @ b2).shape)  # put back the axes matmul dropped
            gb = np.swapaxes(a2, -1, -2) @ g2
            return g2 @ np.swapaxes(b2, -1, -2), gb[..., 0] if b.ndim == 1 else gb

        return Value(a @ b, (self, other), vjp)

    def exp(self):
        out = np.exp(self.data)
        return Value(out, (self,), lambda g: (g * out,))

    def log(self):
        return Value(np.log(self.data), (self,), lambda g: (g / self.data,))

    def tanh(self):
        out = np.tanh(self.data)
        return Value(out, (self,), lambda g: (g * (1 - out**2),))

    def sigmoid(self):
        out = 1 / (1 + np.exp(-self.data))
        return Value(out, (self,), lambda g: (g * out * (1 - out),))

    def relu(self):
        return Value(np.maximum(self.data, 0), (self,), lambda g: (g * (self.data > 0),))

    def sum(self, axis=None, keepdims=False):
        shape = self.data.shape
        axes = tuple(range(len(shape))) if axis is None else axis

        def vjp(g):  # every summed entry receives the gradient of the sum
            return (np.broadcast_to(g if keepdims else np.expand_dims(g, axes), shape),)

        return Value(self.data.sum(axis=axis, keepdims=keepdims), (self,), vjp)

    # -- everything else is made of the ops above --------------------------------------------
    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + -lift(other)

    def __truediv__(self, other):
        return self * lift(other) ** -1.0

    def mean(self, axis=None, keepdims=False):
        total = self.sum(axis, keepdims)
        return total * (total.data.size / self.data.size)

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return lift(other) - self

    def __rtruediv__(self, other):
        return lift(other) / self

    def __rpow__(self, other):
        return lift(other) ** self

    # -- reverse mode ---------------------------------------------------------------------------
    def backward(self):
        order, seen = [], set()

        def visit(v):  # depth first: a value is appended after everything it was computed from
            if id(v) not in seen:
                seen.add(id(v))
                for parent in v.parents:
                    visit(parent)
                order.append(v)

        visit(self)
        grads = {id(self): np.ones_like(self.data)}
        for v in reversed(order):  # each value's gradient is complete when it is reached
            g = grads.pop(id(v))
            v.grad = g if v.grad is None else v.grad + g
            for parent, gp in zip(v.parents, v.vjp(g) if v.parents else ()):
                gp = unbroadcast(gp, parent.data.shape)
                grads[id(parent)] = grads[id(parent)] + gp if id(parent) in grads else gp


def lift(x):
    return x if isinstance(x, Value) else Value(x)


def unbroadcast(g, shape):
    """Sum ``g`` back to ``shape``: a broadcast value was used once per copy."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=ones, keepdims=True) if ones else g


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = Value(rng.uniform(size=(4, 3)))  # four colours
    w1, w2 = Value(rng.normal(0, 0.5, (3, 5))), Value(rng.normal(0, 0.5, (5, 1)))
    y = Value([[1.0], [0.0], [1.0], [0.0]])
    loss = 0.5 * ((((x @ w1).sigmoid() @ w2).sigmoid() - y) ** 2).sum()
    loss.backward()
    print("loss", loss.data, "\ndL/dw2", w2.grad.ravel())
