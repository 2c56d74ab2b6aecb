"""The digits CNN example: its shortened run trains, reports and plots within seconds."""

from __future__ import annotations

import json
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


def test_the_trained_network_renders_its_own_atlas(tmp_path, capsys):
    pytest.importorskip("PIL")
    main = runpy.run_path(str(EXAMPLE), run_name="example")["main"]
    out = tmp_path / "atlas"
    history = main(
        ["--fast", "--no-progress", "--plot", str(tmp_path / "p.png"), "--atlas", str(out)]
    )
    atlas = history["atlas"]
    counts = {}
    for entry in atlas["filters"]:
        counts[entry["layer"]] = counts.get(entry["layer"], 0) + 1
        assert (out / entry["image"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert counts == {"0": 16, "3": 32, "8": 64}
    assert atlas["parameters"]["model"] == "Sequential" and atlas["parameters"]["size"] == 16
    assert atlas["parameters"]["steps"] == 100
    assert (out / "index.html").is_file() and (out / "8" / "index.html").is_file()
    assert json.loads((out / "atlas.json").read_text()) == atlas
    assert f"{out}/index.html" in capsys.readouterr().out


def test_model_uses_normalisation_dropout_and_pooling():
    namespace = runpy.run_path(str(EXAMPLE), run_name="example")
    model = namespace["DigitNet"]()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Conv2d", "BatchNorm2d", "Dropout", "MaxPool2d", "AdaptiveAvgPool2d"} <= kinds
