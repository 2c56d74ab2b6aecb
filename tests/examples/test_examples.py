"""Every example runs (in its fast mode) and prints something sensible."""

from __future__ import annotations

import itertools
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(path.parent))  # as `python examples/x.py` puts examples/ first
    monkeypatch.setenv("TINYGRAD_EDU_FAST", "1")
    monkeypatch.setattr(sys, "argv", [str(path)])
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{path.name} printed nothing"


def _load(name: str):
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    return runpy.run_path(str(path), run_name="example")


def test_vanishing_gradients_example_shows_the_effect():
    norms = _load("vanishing_gradients")["main"]()
    sigmoid, tanh = norms["Sigmoid"], norms["Tanh"]
    assert all(a < b for a, b in itertools.pairwise(sigmoid))  # shrinking towards the input
    assert sigmoid[0] / sigmoid[-1] < 1e-5 < tanh[0] / tanh[-1]


def test_toy_network_example_learns_the_spirals(monkeypatch):
    monkeypatch.setenv("TINYGRAD_EDU_FAST", "1")
    assert _load("toy_network")["main"]() > 0.9


def test_hessian_vector_product_example_is_exact():
    assert _load("hessian_vector_product")["main"]() < 1e-10
