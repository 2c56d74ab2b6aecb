"""The tinygrad-edu console script, run in-process."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.cli import main

QUIET = ["--no-progress"]


def _train(out, *extra):
    return main(["text-color", "train", *QUIET, "--out", str(out), *extra])


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default run: the document's data, seed, budget and stopping rule (~2 s)."""
    out = tmp_path_factory.mktemp("text_color")
    assert _train(out) == 0
    return out


def test_default_run_is_the_documents(tmp_path, capsys):
    assert _train(tmp_path, "--no-figure") == 0
    out = capsys.readouterr().out
    assert "trained on the document's 10 colours" in out
    assert "minimum error reached at iteration 9066\n" in out
    assert "follows its label: 10/10" in out
    assert "2 of 10 labels disagree with WCAG 2 (pure green, #00ffff)" in out
    assert out.count("<- label disagrees with WCAG") == 2
    assert "held-out WCAG agreement:" in out and "of 1000 random colours" in out
    assert not (tmp_path / "text_color.png").exists()


def test_train_writes_checkpoint_and_figure(trained):
    assert (trained / "text_color.npz").exists()
    png = (trained / "text_color.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_train_without_matplotlib_still_succeeds(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    assert _train(tmp_path, "--max-iteration", "20") == 0
    out = capsys.readouterr().out
    assert (tmp_path / "text_color.npz").exists() and not (tmp_path / "text_color.png").exists()
    assert "held-out WCAG agreement" in out
    hints = [line for line in out.splitlines() if "figure" in line]
    assert hints == [
        "figure skipped: it needs matplotlib, the 'plot' extra (pip install matplotlib)"
    ]


def test_budget_without_target_reports_the_smallest_error(tmp_path, capsys):
    assert _train(tmp_path, "--max-iteration", "50", "--target", "0", "--no-figure") == 0
    out = capsys.readouterr().out
    assert "ran iterations 0..50 (no target)" in out and "smallest E = " in out


def test_wcag_training_option(tmp_path, capsys):
    argv = ["--data", "wcag", "--samples", "50", "--max-iteration", "100", "--no-figure"]
    assert _train(tmp_path, *argv) == 0
    out = capsys.readouterr().out
    assert "trained on 50 random WCAG-labelled colours" in out and "disagree" not in out


def test_predict_answers_per_colour(trained, capsys):
    checkpoint = str(trained / "text_color.npz")
    code = main(
        ["text-color", "predict", "#000000", "rgb(255,255,255)", "--checkpoint", checkpoint]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "-> white text" in lines[0] and "-> black text" in lines[1]


def test_a_command_keeps_freed_memory_for_reuse(trained, monkeypatch, capsys):
    import tinygrad_edu.cli as cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept") or True)
    checkpoint = str(trained / "text_color.npz")
    assert main(["text-color", "predict", "#000000", "--checkpoint", checkpoint]) == 0
    assert calls == ["kept"]


def test_predict_rejects_bad_colours(trained, capsys):
    code = main(["text-color", "predict", "#12", "--checkpoint", str(trained / "text_color.npz")])
    assert code == 2
    assert "cannot read colour '#12'" in _one_line_error(capsys)


def test_predict_with_a_3kb_backtracking_argument_is_a_prompt_error(trained, capsys):
    hostile = "1" + " " * 1500 + "1" + " " * 1500 + "x"
    code = main(["text-color", "predict", hostile, "--checkpoint", str(trained / "text_color.npz")])
    assert code == 2
    assert "at most 64 are read" in _one_line_error(capsys)


def test_predict_without_checkpoint_says_how_to_get_one(tmp_path, capsys):
    code = main(["text-color", "predict", "#fff", "--checkpoint", str(tmp_path / "none.npz")])
    assert code == 2
    assert "tinygrad-edu text-color train" in _one_line_error(capsys)


def _npy(path):
    np.save(path, np.zeros((5, 4)))


def _one_dimensional_weight(path):
    np.savez(path, **{"0.weight": np.zeros(5), "0.bias": np.zeros(5)})


def _raw_member(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("0.weight", b"\x00" * 40)  # not an .npy member


def _not_a_zip(path):
    path.write_bytes(b"hello")


def _string_weight(path):
    np.savez(path, **{"0.weight": np.array([["a", "b"]]), "0.bias": np.zeros(1)})


def _broken_chain(path):
    arrays = {"0.weight": np.zeros((5, 3)), "0.bias": np.zeros(5), "2.weight": np.zeros((1, 4))}
    np.savez(path, **arrays, **{"2.bias": np.zeros(1)})


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("weights.npy", _npy),
        ("flat.npz", _one_dimensional_weight),
        ("raw.npz", _raw_member),
        ("junk.npz", _not_a_zip),
        ("strings.npz", _string_weight),
        ("chain.npz", _broken_chain),
    ],
)
@pytest.mark.parametrize("action", [["predict", "#fff"], ["explain"]])
def test_bad_checkpoints_are_one_line_errors(tmp_path, capsys, name, write, action):
    path = tmp_path / name
    write(path)
    code = main(["text-color", *action, "--checkpoint", str(path)])
    assert code != 0
    assert str(path) in _one_line_error(capsys)


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("mine")
    assert _train(out, "--max-iteration", "5") == 2
    assert "is a file, not a folder" in _one_line_error(capsys)
    assert out.read_text() == "mine"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "-0.2"),
        ("--lr", "0"),
        ("--lr", "fast"),
        ("--target", "nan"),
        ("--target", "-1"),
        ("--max-iteration", "-1"),
        ("--samples", "0"),
        ("--seed", "-4"),
    ],
)
def test_meaningless_numbers_are_refused_in_one_line(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path, option, value)
    assert exit_info.value.code == 2
    err = _one_line_error(capsys)
    assert f"argument {option}" in err and repr(value) in err
    assert not any(tmp_path.iterdir())


def test_a_nan_producing_run_never_replaces_the_checkpoint(tmp_path, monkeypatch, capsys):
    from tinygrad_edu.cli import text_color
    from tinygrad_edu.models.text_color import build_mlp

    assert _train(tmp_path, "--max-iteration", "30", "--no-figure") == 0
    before = (tmp_path / "text_color.npz").read_bytes()
    capsys.readouterr()

    def poisoned(*args, **kwargs):  # initial weights with a NaN: every error after is NaN
        model = build_mlp(*args, **kwargs)
        model[0].weight.data[0, 0] = np.nan
        return model

    monkeypatch.setattr(text_color, "build_mlp", poisoned)
    with np.errstate(invalid="ignore"):
        assert _train(tmp_path, "--max-iteration", "30", "--no-figure") == 2
    assert "training diverged (the error became nan at iteration 0)" in _one_line_error(capsys)
    assert (tmp_path / "text_color.npz").read_bytes() == before


def test_explain_shows_labels_against_wcag_and_matching_deltas(trained, capsys):
    assert main(["text-color", "explain", "--checkpoint", str(trained / "text_color.npz")]) == 0
    out = capsys.readouterr().out
    assert out.count("<- label disagrees with WCAG") == 2 and "15.30:1" in out
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
        _train(tmp_path / name, "--max-iteration", "20", "--seed", "3", "--no-figure")
    a = np.load(tmp_path / "a" / "text_color.npz")
    b = np.load(tmp_path / "b" / "text_color.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])


# ----------------------------------------------------------------------------- version, ranges
def test_version_is_the_package_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"tinygrad-edu {metadata.version('tinygrad_edu')}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["visualize", "--size", "100000"],
        ["visualize", "--grid", "100000"],
        ["visualize", "--filters", "100000"],
        ["visualize", "--batch", "1000000"],
        ["visualize", "--steps", str(10**9)],
        ["visualize", "--size", "4"],
        ["text-color", "train", "--data", "wcag", "--samples", str(10**12)],
        ["text-color", "train", "--max-iteration", str(10**12)],
        ["text-color", "train", "--samples", "9" * 5000],  # beyond int()'s digit limit
    ],
)
def test_sizes_that_would_exhaust_memory_are_refused_up_front(argv, tmp_path, capsys):
    """They used to end in a MemoryError traceback after loading everything."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = _one_line_error(capsys)
    assert f"argument {argv[-2]}:" in err and "tinygrad-edu" in err
    assert not (tmp_path / "out").exists()


def test_batch_times_size_is_bounded_before_the_weights_load(tmp_path, capsys):
    argv = ["visualize", "--batch", "256", "--size", "512", "--weights", "unused.h5"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "pixels at once" in _one_line_error(capsys) and not (tmp_path / "out").exists()


#: numeric options whose size costs neither memory nor time (seeds, rates, weights, an index)
UNBOUNDED = {"--seed", "--lr", "--target", "--step-size", "--tv", "--sweep"}


def _numeric_options():
    from tinygrad_edu.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif action.option_strings and action.type not in (None, str, Path):
                yield path, action.option_strings[0]

    return list(walk(build_parser(), []))


def test_the_survey_of_numeric_options_is_complete():
    found = {option for _, option in _numeric_options()}
    assert {"--size", "--grid", "--samples", "--max-iteration", "--batch"} <= found


@pytest.mark.parametrize("command, option", _numeric_options())
def test_every_numeric_option_has_a_range(command, option, capsys):
    """A new count or size without an upper limit fails here unless listed in UNBOUNDED."""
    positionals = {"explore": ["text-color"], "predict": ["#fff"]}.get(command[-1], [])
    for value in ("ten", *(() if option in UNBOUNDED else ("-1", str(10**12)))):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, *positionals, option, value])
        assert exit_info.value.code == 2 and f"argument {option}" in _one_line_error(capsys)


# ----------------------------------------------------------------------------- Ctrl-C, memory
@pytest.mark.parametrize(
    "argv, where",
    [
        (["text-color", "train", "--no-progress"], "tinygrad_edu.cli.text_color.train"),
        (["visualize", "--weights", "x.npz"], "tinygrad_edu.cli.loading.vgg16"),
        (["explore", "text-color"], "tinygrad_edu.cli.explore._text_color"),
    ],
)
@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, 130), (MemoryError, 1)])
def test_interrupts_and_exhausted_memory_end_in_one_line(
    argv, where, error, status, tmp_path, monkeypatch, capsys
):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(where, fail)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == status
    message = _one_line_error(capsys)
    assert ("interrupted" if error is KeyboardInterrupt else "ran out of memory") in message
    assert list(tmp_path.rglob("*.*")) == []


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_during_training_exits_130_and_writes_nothing(tmp_path):
    command = [sys.executable, "-m", "tinygrad_edu.cli", "text-color", "train", "--target", "0"]
    command += ["--max-iteration", "10000000", "--no-progress", "--out", str(tmp_path / "out")]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    time.sleep(4)  # imports done, training under way
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert err == "tinygrad-edu: interrupted: text-color train stopped, no file half-written\n"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------- wcag runs
def test_wcag_training_has_its_own_folder_and_title(tmp_path, monkeypatch, capsys):
    """--data wcag used to overwrite the document model and title it "the document's colours"."""
    from tinygrad_edu.models.text_color import figure

    titles = []
    monkeypatch.setattr(figure, "draw_figure", lambda path, *a, **k: titles.append(k["title"]))
    monkeypatch.chdir(tmp_path)
    argv = ["text-color", "train", *QUIET, "--max-iteration", "20"]
    assert main([*argv, "--data", "wcag", "--samples", "30"]) == 0
    assert (tmp_path / "runs" / "text_color_wcag" / "text_color.npz").is_file()
    assert not (tmp_path / "runs" / "text_color").exists()
    assert main(argv) == 0
    assert (tmp_path / "runs" / "text_color" / "text_color.npz").is_file()
    assert titles == [
        "White or black text? The 3-5-2-1 network trained on 30 random WCAG-labelled colours "
        "(the first 10 shown)",
        "White or black text? The 3-5-2-1 network trained on the document's 10 colours",
    ]
    capsys.readouterr()


def test_train_refuses_samples_without_wcag_and_an_unusable_folder_before_training(
    tmp_path, capsys, monkeypatch
):
    """``--samples`` used to be ignored silently with the document's data, and an ``--out``
    that cannot be created failed only after the whole training run."""
    from tinygrad_edu.cli import text_color as cli_text_color

    trained = []
    monkeypatch.setattr(cli_text_color, "train", lambda *a, **k: trained.append(1))
    argv = ["text-color", "train", *QUIET, "--max-iteration", "5"]
    assert main([*argv, "--samples", "30", "--out", str(tmp_path / "a")]) == 2
    assert "--samples" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*argv, "--out", str(blocker / "below")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert trained == []
    assert not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------- special files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("action", [["predict", "#fff"], ["explain"]])
def test_a_fifo_as_checkpoint_is_a_one_line_error_not_a_hang(action, tmp_path, capsys):
    """``predict --checkpoint FIFO`` used to wait forever for a writer."""
    fifo = tmp_path / "weights.npz"
    os.mkfifo(fifo)
    outcome = []
    argv = ["text-color", *action, "--checkpoint", str(fifo)]
    worker = threading.Thread(target=lambda: outcome.append(main(argv)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert outcome == [2], "the command blocked on the FIFO"
    assert "is a FIFO (named pipe), not a regular file" in _one_line_error(capsys)
