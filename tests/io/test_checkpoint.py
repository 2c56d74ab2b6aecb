"""save / load: .npz checkpoints written atomically."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.io import atomic_write


def test_round_trip_of_a_model(tmp_path):
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.Sigmoid())
    path = tg.save(net.state_dict(), tmp_path / "model.npz")
    loaded = tg.load(path)
    assert list(loaded) == ["0.weight", "0.bias"]
    other = nn.Sequential(nn.Linear(3, 2, rng=9), nn.Sigmoid())
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other[0].weight.data, net[0].weight.data)


def test_tensors_are_accepted_and_dtypes_kept(tmp_path):
    tg.save({"a": Tensor(np.ones(2, dtype=np.float32)), "b": np.arange(3.0)}, tmp_path / "c.npz")
    loaded = tg.load(tmp_path / "c.npz")
    assert loaded["a"].dtype == np.float32 and loaded["b"].dtype == np.float64


def test_a_crash_mid_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    tg.save({"w": np.zeros(3)}, path)

    def exploding_write_array(member, array, **options):
        member.write(b"\x93NUMPY partial garbage")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np.lib.format, "write_array", exploding_write_array)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"w": np.ones(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(tg.load(path)["w"], np.zeros(3))
    assert os.listdir(tmp_path) == ["model.npz"], "a temporary file was left behind"


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        tg.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(tg.CheckpointError, match=r"junk\.npz"):
        tg.load(junk)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, evil=np.array([object()], dtype=object))
    with pytest.raises(tg.CheckpointError, match=r"pickled\.npz"):
        tg.load(pickled)
    with pytest.raises(TypeError, match="keys must be strings"):
        tg.save({1: np.zeros(1)}, tmp_path / "x.npz")


def test_checkpoints_get_ordinary_file_permissions(tmp_path):
    path = tg.save({"w": np.zeros(1)}, tmp_path / "m.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# ----------------------------------------------------------------------------- every file writer
def _explorer_page(path):
    x = Tensor(np.ones(2), requires_grad=True)
    with tg.trace() as recorded:
        (x * 2).sum().backward()
    return recorded.to_html(path)


def _png(path):
    pytest.importorskip("PIL")
    from tinygrad_edu.vis import save_png

    save_png(path, np.zeros((4, 4, 3), np.uint8))
    return path


def _figure(path):
    pytest.importorskip("matplotlib")
    from tinygrad_edu.models.text_color.figure import draw_figure

    return draw_figure(path, np.ones((2, 3)) / 2, np.array([0.2, 0.8]))


def _dot_file(path):
    from tinygrad_edu.observers import dot

    return dot.render("digraph g { a -> b; }", path)[0]


def _raw(path):
    with atomic_write(path) as handle:
        handle.write(b"bytes")
    return path


#: every writer of files (all but the DOT render, which is below ``io`` in the layers, are atomic)
WRITERS = {
    "tg.save": lambda path: tg.save({"w": np.zeros(1)}, path),
    "atomic_write": _raw,
    "explorer page": _explorer_page,
    "png image": _png,
    "figure": _figure,
    "dot": _dot_file,
}
SUFFIX = {"explorer page": ".html", "png image": ".png", "figure": ".png", "dot": ".svg"}


@contextlib.contextmanager
def _umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_0666_less_the_umask_like_open(writer, mask, expected, tmp_path):
    with _umask(mask):
        path = WRITERS[writer](tmp_path / f"new{SUFFIX.get(writer, '.npz')}")
    assert stat.S_IMODE(path.stat().st_mode) == expected


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_replaced_file_keeps_its_permission_bits(writer, tmp_path):
    """A private (0600) checkpoint or page stays private when it is written again. (Without
    Graphviz the DOT writer writes ``file.dot`` beside the ``file.svg`` it was asked for.)"""
    target = tmp_path / f"file{SUFFIX.get(writer, '.npz')}"
    path = WRITERS[writer](target)
    for mode in (0o600, 0o640, 0o604):
        path.chmod(mode)
        with _umask(0o022):
            assert WRITERS[writer](target) == path
        assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(os.listdir(tmp_path)) == [path.name], "a temporary file was left behind"


@given(existing=st.one_of(st.none(), st.integers(0, 0o777)), mask=st.integers(0, 0o777))
def test_written_modes_are_what_open_would_leave(tmp_path_factory, existing, mask):
    """Any umask and any existing mode: replaced files keep their bits, new ones follow the umask,
    and the umask itself is never changed (even for a moment: it is not read by setting it)."""
    path = tmp_path_factory.mktemp("modes") / "m.npz"
    if existing is not None:
        path.write_bytes(b"old")
        path.chmod(existing)
    with _umask(mask):
        tg.save({"w": np.zeros(1)}, path)
        assert os.umask(mask) == mask
    assert stat.S_IMODE(path.stat().st_mode) == (0o666 & ~mask if existing is None else existing)


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging (a writer that opens a FIFO waits for a reader forever)."""

    def expire(signum, frame):
        raise TimeoutError(f"still writing after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["directory", "FIFO"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_no_writer_replaces_or_writes_into_a_directory_or_fifo(writer, kind, tmp_path):
    """A FIFO at the destination was replaced by a regular file (or, for Graphviz, waited on
    forever); a directory gave Python's "has an empty name" or IsADirectoryError."""
    path = tmp_path / f"out{SUFFIX.get(writer, '.npz')}"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    with _deadline(10), pytest.raises(ValueError, match="not a regular file"):
        WRITERS[writer](path)
    assert path.is_dir() if kind == "directory" else stat.S_ISFIFO(path.lstat().st_mode)
    assert sorted(os.listdir(tmp_path)) == [path.name], "a temporary file was left behind"
    with pytest.raises(ValueError, match="not a regular file"):
        WRITERS[writer](Path("."))


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path):
    target = tmp_path / "target.npz"
    target.write_bytes(b"precious")
    target.chmod(0o600)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    with _umask(0o022):
        tg.save({"w": np.zeros(1)}, link)
    assert not link.is_symlink() and stat.S_IMODE(link.stat().st_mode) == 0o644
    assert target.read_bytes() == b"precious"
