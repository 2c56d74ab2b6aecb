"""``tinygrad-edu microscope``: the same atlas in-process and on two local Dask workers, a run
killed with SIGKILL that resumes to the uninterrupted result, and one-line errors.

The network is a random-weight VGG16 saved as ``.npz``; every run renders a few filters of
block1_conv1 and block2_conv1 as small pictures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.cli import main
from tinygrad_edu.models.vgg import vgg16

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["--layers", "block1_conv1", "block2_conv1"]
TINY = [*LAYERS, "--filters", "6", "--size", "16", "--steps", "2", "--no-progress"]
#: the console script, started the way an installed ``tinygrad-edu`` would run it
COMMAND = [sys.executable, "-c", "import sys; from tinygrad_edu.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "vgg_random.npz"
    np.savez(path, **vgg16(rng=0).state_dict())
    return path


def child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module", autouse=True)
def closed_port_run(weights):
    """``--scheduler`` at a port where nothing listens, started with the module's first test.

    Dask retries the connection until its 10 s timeout; running the command in the
    background while the other tests run keeps the module fast.
    """
    command = [*COMMAND, "microscope", "--weights", str(weights), "--scheduler"]
    command += ["tcp://127.0.0.1:9", "--out", str(weights.parent / "never"), *TINY]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    finished = {}

    def wait() -> None:
        finished["out"], finished["err"] = child.communicate(timeout=60)
        finished["seconds"] = time.perf_counter() - started

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    yield child, waiter, finished
    if child.poll() is None:
        child.kill()
    waiter.join()


def pictures(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("*/*.png"))}


def visible_files(out: Path) -> dict[str, bytes]:
    """Every file of an atlas folder except hidden ones (its lock)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# ----------------------------------------------------------------------------- deterministic
def test_two_workers_give_the_in_process_atlas_and_a_rerun_renders_nothing(
    weights, tmp_path, capsys, recwarn
):
    pytest.importorskip("distributed")
    here, cluster = tmp_path / "here", tmp_path / "cluster"
    assert main(["microscope", "--weights", str(weights), "--out", str(here), *TINY]) == 0
    assert "rendered 12 filters (0 already done)" in capsys.readouterr().out
    argv = ["microscope", "--weights", str(weights), "--out", str(cluster), "--workers", "2"]
    with socket.socket() as dashboard_port:  # Dask's default HTTP port, taken (here or elsewhere)
        with contextlib.suppress(OSError):
            dashboard_port.bind(("127.0.0.1", 8787))
            dashboard_port.listen()
        environment = dict(os.environ)
        assert main([*argv, *TINY]) == 0
        assert dict(os.environ) == environment  # Dask's OMP_NUM_THREADS=1 & co. are undone
    assert "rendered 12 filters (0 already done)" in capsys.readouterr().out
    assert not [w for w in recwarn if "already in use" in str(w.message)]  # no word of a port

    atlas = json.loads((here / "atlas.json").read_text("utf-8"))
    assert len(atlas["filters"]) == 12 and atlas["parameters"]["model"] == "VGG16"
    assert (here / "block2_conv1" / "0005.png").is_file() and (here / "index.html").is_file()
    assert (here / "atlas.json").read_bytes() == (cluster / "atlas.json").read_bytes()
    assert pictures(here) == pictures(cluster) and len(pictures(here)) == 12

    assert main(["microscope", "--weights", str(weights), "--out", str(here), *TINY]) == 0
    assert "rendered 0 filters (12 already done)" in capsys.readouterr().out


# ----------------------------------------------------------------------------- resumable
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_run_killed_part_way_resumes_to_the_uninterrupted_atlas(weights, tmp_path, capsys):
    options = [*LAYERS, "--filters", "48", "--size", "24", "--steps", "3", "--no-progress"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = [*COMMAND, "microscope", "--weights", str(weights), "--out", str(killed), *options]
    child = subprocess.Popen(command, env=child_environment(), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(killed.glob("*/*.png")) and child.poll() is None:
        assert time.monotonic() < deadline, "no picture after 60 s"
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    done_before = len(list(killed.glob("*/*.png")))
    assert 1 <= done_before < 96, "the kill did not land part-way"
    assert not (killed / "atlas.json").exists()

    assert main(["microscope", "--weights", str(weights), "--out", str(killed), *options]) == 0
    rerun = capsys.readouterr().out
    assert main(["microscope", "--weights", str(weights), "--out", str(whole), *options]) == 0
    assert "rendered 96 filters (0 already done)" in capsys.readouterr().out
    assert "rendered 0 filters" not in rerun and "already done)" in rerun
    assert visible_files(killed) == visible_files(whole)
    # a temporary file the kill left behind is deleted by the re-run: the folders are the same
    assert sorted(p.relative_to(killed) for p in killed.rglob("*")) == sorted(
        p.relative_to(whole) for p in whole.rglob("*")
    )
    atlas = json.loads((killed / "atlas.json").read_text("utf-8"))
    assert [f["image"] for f in atlas["filters"]] == [
        f"{layer}/{i:04d}.png" for layer in ("block1_conv1", "block2_conv1") for i in range(48)
    ]


# ----------------------------------------------------------------------------- errors
def test_unknown_layer_is_one_line_and_writes_nothing(tmp_path, capsys):
    argv = ["microscope", "--weights", "unused.npz", "--out", str(tmp_path / "atlas")]
    assert main([*argv, "--layers", "block1_conv1", "block9_conv1"]) == 2
    err = one_line_error(capsys)
    assert "unknown layer 'block9_conv1'" in err and "block5_conv3" in err
    assert not (tmp_path / "atlas").exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--filters", "0"], "argument --filters: must be from 1 to 512"),
        (["--size", "4"], "argument --size: must be from 8 to 256"),
        (["--steps", "0"], "argument --steps: must be from 1 to"),
        (["--mode", "x"], "argument --mode: invalid choice: 'x'"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
    ],
)
def test_bad_option_is_a_usage_error(options, says, tmp_path, capsys):
    argv = ["microscope", "--weights", "unused.npz", "--out", str(tmp_path / "atlas"), *options]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert says in one_line_error(capsys)
    assert not (tmp_path / "atlas").exists()


def test_missing_weights_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "no_such_weights.npz"
    argv = ["microscope", "--weights", str(missing), "--out", str(tmp_path / "atlas")]
    assert main([*argv, "--no-progress"]) == 1
    assert str(missing) in one_line_error(capsys)
    assert not (tmp_path / "atlas").exists()


def test_out_that_is_a_file_is_one_line(weights, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    assert main(["microscope", "--weights", str(weights), "--out", str(out), *TINY]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert out.read_text() == "not a folder"


def test_scheduler_at_a_closed_port_is_one_line_within_15_seconds(closed_port_run, weights):
    pytest.importorskip("distributed")
    child, waiter, finished = closed_port_run
    waiter.join(timeout=30)
    assert not waiter.is_alive(), "still trying to connect after 30 s"
    assert child.returncode not in (0, None)
    err = finished["err"]
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("tinygrad-edu: error: no Dask scheduler at tcp://127.0.0.1:9")
    assert finished["seconds"] < 15
    assert finished["out"] == "" and not (weights.parent / "never").exists()
