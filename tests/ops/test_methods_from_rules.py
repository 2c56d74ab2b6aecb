"""Tensor's elementwise methods and operators come from the rule table (ops/elementwise.py).

Each row that names a Tensor method (``as_method=``, ``as_methods=``) gives Tensor that method:
it applies the rule, has a code object of its own named after it (tg.compile and profilers tell
methods apart by their code) and a docstring made of the rule's maths.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu.ops import elementwise

RULES = [
    rule
    for rule in vars(elementwise).values()
    if isinstance(rule, type) and getattr(rule, "tensor_methods", ())
]
METHODS = [(rule, name) for rule in RULES for name in rule.tensor_methods]


def test_the_table_names_the_elementwise_methods_and_operators():
    names = {name for _, name in METHODS}
    assert {"exp", "log", "sin", "relu", "floor", "maximum", "__add__", "__rtruediv__"} <= names
    assert len(names) == len(METHODS)  # no method named by two rules


@pytest.mark.parametrize(("rule", "name"), METHODS, ids=[name for _, name in METHODS])
def test_each_method_is_named_documented_and_has_its_own_code(rule, name):
    method = getattr(tg.Tensor, name)
    assert method.__name__ == name and method.__code__.co_name == name
    assert method.__qualname__ == f"Tensor.{name}"
    derivative = rule.math.split(";  ")[1]
    assert derivative in method.__doc__ and "Returns\n-------" in method.__doc__
    others = [getattr(tg.Tensor, other) for _, other in METHODS if other != name]
    assert all(method.__code__ is not other.__code__ for other in others)


@pytest.mark.parametrize(("rule", "name"), METHODS, ids=[name for _, name in METHODS])
def test_each_method_applies_its_rule(rule, name):
    a = tg.Tensor(np.array([0.25, 0.5, 0.75]), requires_grad=True)
    b = tg.Tensor(np.array([0.5, 0.25, 2.0]), requires_grad=True)
    if rule.arity == 1:
        out = getattr(a, name)()
        assert isinstance(out._node, rule) and out._node.inputs == (a,)
        return
    out = getattr(a, name)(b)
    assert isinstance(out._node, rule)
    reflected = name == rule.tensor_methods[-1] and len(rule.tensor_methods) == 2
    assert out._node.inputs == ((b, a) if reflected else (a, b))


@pytest.mark.parametrize("rule", [r for r in RULES if r.arity == 1], ids=lambda r: r.name)
def test_floating_rules_compute_integer_tensors_in_float32(rule):
    (name,) = rule.tensor_methods
    x = tg.Tensor(np.array([1, 2, 3], dtype=np.int32))
    with np.errstate(all="ignore"):
        out = getattr(x, name)()
    if rule.floating_input:
        assert out.dtype == np.float32
    else:
        assert out.dtype == np.dtype(rule().forward(x.data).dtype)
