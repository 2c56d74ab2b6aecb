"""save / load: .npz checkpoints written atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn


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
