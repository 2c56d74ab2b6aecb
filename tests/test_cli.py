"""The tinygrad-edu console script, run in-process."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("text_color")
    assert (
        main(["text-color", "train", "--iterations", "1500", "--no-progress", "--out", str(out)])
        == 0
    )
    return out


def test_train_writes_checkpoint_and_figure(trained, capsys):
    assert (trained / "text_color.npz").exists()
    png = (trained / "text_color.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_train_reports_minimum_and_generalisation(tmp_path, capsys):
    main(
        [
            "text-color",
            "train",
            "--iterations",
            "50",
            "--no-progress",
            "--no-figure",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert "minimum error E = " in out and "at iteration" in out
    assert "held-out WCAG agreement:" in out and "of 1000 random colours" in out
    assert not (tmp_path / "text_color.png").exists()


def test_wcag_training_option(tmp_path, capsys):
    argv = ["text-color", "train", "--data", "wcag", "--samples", "50", "--iterations", "100"]
    assert main([*argv, "--no-progress", "--no-figure", "--out", str(tmp_path)]) == 0
    assert "trained on 50 colours (wcag)" in capsys.readouterr().out


def test_predict_answers_per_colour(trained, capsys):
    code = main(
        [
            "text-color",
            "predict",
            "#000000",
            "rgb(255,255,255)",
            "--checkpoint",
            str(trained / "text_color.npz"),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "-> white text" in lines[0] and "-> black text" in lines[1]


def test_predict_rejects_bad_colours(trained, capsys):
    code = main(["text-color", "predict", "#12", "--checkpoint", str(trained / "text_color.npz")])
    assert code == 2
    assert "cannot read colour '#12'" in capsys.readouterr().err


def test_predict_without_checkpoint_says_how_to_get_one(tmp_path, capsys):
    code = main(["text-color", "predict", "#fff", "--checkpoint", str(tmp_path / "none.npz")])
    assert code == 1
    assert "tinygrad-edu text-color train" in capsys.readouterr().err


def test_explain_shows_matching_deltas(trained, capsys):
    assert main(["text-color", "explain", "--checkpoint", str(trained / "text_color.npz")]) == 0
    out = capsys.readouterr().out
    for k in (3, 2, 1):
        assert f"delta^{k} of shape" in out
    worst = float(out.strip().splitlines()[-1].split(":")[-1])
    assert worst < 1e-12


@pytest.mark.parametrize(
    "argv", [[], ["text-color"], ["text-color", "train"], ["text-color", "predict"]]
)
def test_help_explains_itself(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tinygrad-edu" in capsys.readouterr().out


def test_training_is_reproducible(tmp_path):
    for name in ("a", "b"):
        main(
            [
                "text-color",
                "train",
                "--iterations",
                "20",
                "--seed",
                "3",
                "--no-progress",
                "--no-figure",
                "--out",
                str(tmp_path / name),
            ]
        )
    a = np.load(tmp_path / "a" / "text_color.npz")
    b = np.load(tmp_path / "b" / "text_color.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
