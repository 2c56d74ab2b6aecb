"""The ~100-line engine in examples/minimal_engine.py computes the real engine's gradients.

The same op-spec table drives both: each spec's ``fn`` is written with Tensor methods and
operators, which the minimal ``Value`` spells the same way, so one call works on either engine.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.op_specs import SPECS, SPECS_BY_NAME, OpSpec
from tinygrad_edu import Tensor

PATH = Path(__file__).resolve().parents[2] / "examples" / "minimal_engine.py"
minimal = runpy.run_path(str(PATH), run_name="minimal_engine")
Value = minimal["Value"]

#: the specs whose ops the minimal engine has (everything else is what the real engine adds)
MINIMAL_OPS = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "pow_nonzero_exponent",
    "pow_scalar",
    "rpow_scalar",
    "rsub_scalar",
    "rdiv_scalar",
    "neg",
    "matmul",
    "exp",
    "log",
    "sigmoid",
    "tanh",
    "relu",
    "sum",
    "mean",
]


def test_the_list_names_real_specs():
    assert set(MINIMAL_OPS) <= set(SPECS_BY_NAME)
    assert len(MINIMAL_OPS) < len(SPECS)  # the real engine has more


def weighted_sum(out):
    """A scalar with a different weight on every output element, so each gradient is distinct."""
    weights = np.cos(np.arange(np.size(out.data), dtype=np.float64)).reshape(np.shape(out.data))
    return (out * weights).sum()


@pytest.mark.parametrize("spec", [SPECS_BY_NAME[n] for n in MINIMAL_OPS], ids=lambda s: s.name)
@given(data=st.data())
def test_same_values_and_gradients_as_the_real_engine(spec: OpSpec, data):
    arrays, kwargs = spec.draw(data)
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    values = [Value(a.copy()) for a in arrays]
    real = spec.fn(*tensors, **kwargs)
    mini = spec.fn(*values, **kwargs)
    np.testing.assert_allclose(mini.data, real.data, rtol=1e-12, atol=1e-14)
    weighted_sum(real).backward()
    weighted_sum(mini).backward()
    for position, (t, v) in enumerate(zip(tensors, values)):
        assert v.grad.shape == t.shape, f"input {position}"
        np.testing.assert_allclose(v.grad, t.grad.data, rtol=1e-10, atol=1e-12)


def test_a_value_used_twice_gets_both_contributions():
    x = Value(3.0)
    y = x * x
    (y * y + y).backward()  # d/dx (x^4 + x^2) = 4x^3 + 2x
    assert x.grad == 114.0


def test_broadcasting_is_summed_back():
    row = Value([1.0, 2.0, 3.0])
    (Value(np.ones((2, 3))) * row).sum().backward()
    np.testing.assert_array_equal(row.grad, [2.0, 2.0, 2.0])


def test_the_recursive_order_is_what_limits_depth():
    """The minimal engine's depth-first sort recurses once per op: a long chain hits Python's
    recursion limit, which the real engine's heap-ordered loop does not have."""
    x = Value(1.0)
    y = x
    for _ in range(sys.getrecursionlimit() + 10):
        y = y * 1.0
    with pytest.raises(RecursionError):
        y.backward()


ROOT = PATH.parent.parent
LINE_LINK = re.compile(r"\[`([^`]+)`\]\((\.\./[^)#\s]+)#L(\d+)\)")


def test_engine_page_links_point_at_the_lines_they_quote():
    """docs/engine.md links code to exact lines; each link quotes the code found on its line."""
    page = ROOT / "docs" / "engine.md"
    links = LINE_LINK.findall(page.read_text())
    assert len(links) >= 15
    for quoted, target, line in links:
        path = (page.parent / target).resolve()
        assert path.is_file(), target
        lines = path.read_text().splitlines()
        assert int(line) <= len(lines), f"{target}#L{line}: the file has {len(lines)} lines"
        assert quoted in lines[int(line) - 1], f"{target}#L{line} does not hold {quoted!r}"
