"""``dim``/``keepdim`` are handled in one place for every method."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.axes import TORCH_ALIASES

X = Tensor(np.arange(24.0).reshape(2, 3, 4))

#: method -> the NumPy-spelled arguments its PyTorch spellings map to
CALLS = [
    ("sum", {"axis": 1, "keepdims": True}),
    ("mean", {"axis": (0, 2)}),
    ("max", {"axis": 2, "keepdims": True}),
    ("min", {"axis": 0}),
    ("amax", {"axis": 1}),
    ("amin", {"axis": 1, "keepdims": True}),
    ("prod", {"axis": 2}),
    ("var", {"axis": 1, "keepdims": True}),
    ("std", {"axis": 0}),
    ("logsumexp", {"axis": 2, "keepdims": True}),
    ("norm", {"axis": 1}),
    ("argmax", {"axis": 1, "keepdims": True}),
    ("argmin", {"axis": 2}),
    ("any", {"axis": 0}),
    ("all", {"axis": 2, "keepdims": True}),
    ("cumsum", {"axis": 1}),
    ("cumprod", {"axis": 2}),
    ("softmax", {"axis": 0}),
    ("log_softmax", {"axis": 1}),
    ("flip", {"axis": 2}),
    ("squeeze", {"axis": 0}),
    ("unsqueeze", {"axis": 1}),
    ("flatten", {"start_axis": 1, "end_axis": 2}),
    ("diagonal", {"axis1": 1, "axis2": 2}),
]
TORCH_NAMES = {value: key for key, value in TORCH_ALIASES.items() if key != "dims"}


@pytest.mark.parametrize(("method", "arguments"), CALLS, ids=[c[0] for c in CALLS])
def test_the_pytorch_spelling_gives_the_same_result(method, arguments):
    name = "dims" if method == "flip" else None
    torch_arguments = {name or TORCH_NAMES[k]: v for k, v in arguments.items()}
    expected = getattr(X, method)(**arguments)
    assert np.array_equal(getattr(X, method)(**torch_arguments).data, expected.data)


@pytest.mark.parametrize("method", ["sum", "mean", "softmax", "cumsum", "var"])
def test_both_spellings_of_one_argument_are_refused(method):
    with pytest.raises(TypeError, match="give axis or its alias dim, not both"):
        getattr(X, method)(axis=1, dim=1)


def test_an_alias_the_method_has_no_argument_for_is_refused():
    with pytest.raises(TypeError, match="unexpected keyword argument 'keepdim'"):
        X.softmax(dim=1, keepdim=True)


def test_the_documented_signature_is_numpys():
    assert list(inspect.signature(Tensor.sum).parameters) == ["self", "axis", "keepdims"]
