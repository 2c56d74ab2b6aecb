"""benchmarks/microscope.py: its smoke runs end with their tables (the cluster run's per-layer
figures come from the task names the microscope gives its Dask tasks, so a change of those names
must show here, not only on a long run)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def benchmark_main(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its sibling report.py
    return runpy.run_path(str(BENCHMARKS / "microscope.py"), run_name="benchmark")["main"]


def test_the_quick_run_measures_every_layer_on_the_cluster(benchmark_main, capsys):
    pytest.importorskip("distributed")
    benchmark_main(["--quick"])
    out = capsys.readouterr().out
    assert "PNGs byte-identical between the two runs: 26 of 26" in out
    assert out.count("per worker: together") == 13  # a row per layer, from the task stream
    assert "| 32 machines |" in out


def test_the_paths_run_compares_the_numpy_and_fused_kernels(benchmark_main, capsys):
    pytest.importorskip("numba")
    benchmark_main(["--quick", "--paths"])
    out = capsys.readouterr().out
    found = re.search(r"PNGs byte-identical: (\d+) of 26, largest pixel difference (\d+)", out)
    assert found is not None, out
    assert int(found[2]) <= 2  # two steps from the same start: the paths' roundoff, no more
    assert "| NumPy kernels |" in out and "| jit kernels (fused) |" in out
