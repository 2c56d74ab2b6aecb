"""benchmarks/vgg_iteration.py: a smoke run (random weights, 32x32, batch 2) ends with its table,
every contender measured, its peak memory and kept kernel layouts from the fresh child process
included (a child that failed would show "n/a")."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_smoke_run_measures_every_contender_with_its_memory(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its siblings
    script = runpy.run_path(str(BENCHMARKS / "vgg_iteration.py"), run_name="benchmark")
    args = script["parse"](["--size", "32", "--batch", "2", "--rounds", "1"])
    results = script["main"](args)
    out = capsys.readouterr().out
    assert "| peak memory | kernel layouts |" in out
    rows = [line for line in out.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == len(results[2]) >= 1
    for row in rows:
        assert re.search(r"\| \d+ MiB \| \d+ MiB \|", row), row  # both measured by the child
