"""The digits CNN example: its shortened run trains, reports and plots within seconds."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_like.py"


def test_fast_run_learns_and_saves_a_plot(tmp_path, capsys):
    main = runpy.run_path(str(EXAMPLE), run_name="example")["main"]
    plot = tmp_path / "curves.png"
    history = main(["--fast", "--no-progress", "--plot", str(plot)])
    assert len(history["loss"]) == 4 and history["loss"][-1] < history["loss"][0]
    assert history["final_test_accuracy"] > 0.5  # 10 classes: chance is 0.1 (measured: 0.85)
    out = capsys.readouterr().out
    assert "test accuracy" in out
    if "matplotlib is not installed" not in out:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_uses_normalisation_dropout_and_pooling():
    namespace = runpy.run_path(str(EXAMPLE), run_name="example")
    model = namespace["DigitNet"]()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Conv2d", "BatchNorm2d", "Dropout", "MaxPool2d", "AdaptiveAvgPool2d"} <= kinds
