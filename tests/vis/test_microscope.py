"""The microscope's Python API: deterministic, resumable, re-rendering on any parameter change,
tolerant of a worker dying, and strict about its arguments.

Every test renders small random-weight ``nn.Sequential`` CNNs with tiny settings. The cluster
tests share one real ``distributed.LocalCluster`` of two worker processes per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinygrad_edu import nn
from tinygrad_edu.kernels.fast import threads
from tinygrad_edu.vis import microscope
from tinygrad_edu.vis.atlas.run import render
from tinygrad_edu.vis.targets import Target

TINY = {"steps": 2, "size": 20}


def small_cnn(seed: int = 0, channels: int = 3, width: int = 20) -> nn.Sequential:
    """conv-ReLU-pool-conv-BN-ReLU: layers "0" (8 filters) and "3" (``width`` filters)."""
    model = nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1, rng=seed),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, width, 3, padding=1, rng=seed + 1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    )
    norm, rng = model[4], np.random.default_rng(seed)
    norm.running_mean.data[:] = rng.normal(0, 0.1, width)
    norm.running_var.data[:] = rng.uniform(0.5, 2, width)
    norm.weight.data[:] = rng.uniform(0.5, 2, width)
    return model


def pictures(out: Path) -> dict[str, bytes]:
    """Every PNG of an atlas by its path in the folder (``"3/0007.png"``), with its bytes."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("*/*.png"))}


def stamps(out: Path) -> dict[str, int]:
    """The modification time (ns) of every picture and record of an atlas."""
    files = [*out.glob("*/*.png"), *out.glob("*/[0-9]*.json")]
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in sorted(files)}


def atlas_file(out: Path) -> dict:
    return json.loads((out / "atlas.json").read_text("utf-8"))


def copy_atlas(source: Path, destination: Path) -> Path:
    """A copy of an atlas folder, modification times included."""
    shutil.copytree(source, destination)
    return destination


def assert_same_atlas(a: Path, b: Path) -> None:
    assert (a / "atlas.json").read_bytes() == (b / "atlas.json").read_bytes()
    first, second = pictures(a), pictures(b)
    assert first and first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"pictures differ: {differing}"


@pytest.fixture(scope="module")
def client():
    """A real two-process LocalCluster (skipped without Dask), shared by the module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787, maybe taken
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The in-process atlas of ``small_cnn()`` with the tiny settings, every filter."""
    out = tmp_path_factory.mktemp("reference")
    report = render(small_cnn(), out, **TINY)
    assert report.rendered == 28 and report.kept == 0
    return out


# ----------------------------------------------------------------------------- what it writes
def test_atlas_lists_every_filter_with_its_picture(reference):
    atlas = atlas_file(reference)
    assert [(f["layer"], f["filter"]) for f in atlas["filters"]] == [
        *(("0", i) for i in range(8)),
        *(("3", i) for i in range(20)),
    ]
    assert all(f["image"] == f"{f['layer']}/{f['filter']:04d}.png" for f in atlas["filters"])
    assert all(np.isfinite(f["activation"]) for f in atlas["filters"])
    assert atlas["parameters"] | TINY == atlas["parameters"]
    assert atlas["parameters"]["mode"] == "classic" and atlas["parameters"]["seed"] == 0
    assert len(pictures(reference)) == 28 and (reference / "index.html").is_file()


def test_microscope_returns_the_atlas_it_writes(tmp_path):
    atlas = microscope(small_cnn(), tmp_path, layers=["0"], filters=2, **TINY)
    assert atlas == atlas_file(tmp_path)
    assert [f["image"] for f in atlas["filters"]] == ["0/0000.png", "0/0001.png"]


def test_digits_like_cnn_renders_grey_pictures_named_by_index(tmp_path):
    atlas = microscope(small_cnn(channels=1), tmp_path, filters=3, **TINY)
    assert [f["image"] for f in atlas["filters"]] == [
        f"{layer}/{i:04d}.png" for layer in ("0", "3") for i in range(3)
    ]
    for name in pictures(tmp_path):
        image = np.asarray(Image.open(tmp_path / name).convert("RGB")).astype(int)
        assert image.shape == (20, 20, 3)
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        assert image.std() > 0  # a picture, not a flat square


# ----------------------------------------------------------------------------- deterministic
def test_cluster_atlas_is_byte_identical_to_in_process(client, reference, tmp_path):
    report = render(small_cnn(), tmp_path, client=client, **TINY)
    assert report.rendered == 28
    assert_same_atlas(reference, tmp_path)


def test_cluster_rerun_renders_exactly_the_deleted_pictures(client, reference, tmp_path):
    """Rendered on the cluster, then filters 0, 7 and 15 of layer "3" deleted: the rerun
    renders those three and touches nothing else."""
    out = tmp_path / "atlas"
    render(small_cnn(), out, client=client, **TINY)
    gone = ["3/0000.png", "3/0007.png", "3/0015.png"]
    for name in gone:
        (out / name).unlink()
    before, calls = stamps(out), []
    report = render(small_cnn(), out, client=client, progress=lambda *a: calls.append(a), **TINY)
    assert (report.rendered, report.kept, calls) == (3, 25, [(1, 3), (2, 3), (3, 3)])
    after = stamps(out)
    touched = {name for name in before if after[name] != before[name]}
    assert touched == {name.replace(".png", ".json") for name in gone}
    assert_same_atlas(reference, out)


def test_two_runs_at_once_on_one_cluster_each_render_their_own(client, reference, tmp_path):
    """Two clients of one scheduler, same network and parameters: a fresh atlas, and (started
    while the first runs) one missing filters 0, 5 and 15 of layer "3" -- a task with the first
    and last filters of one of the first run's, which must not be taken for it."""
    distributed = pytest.importorskip("distributed")
    partial = copy_atlas(reference, tmp_path / "partial")
    gone = ["3/0000.png", "3/0005.png", "3/0015.png"]
    for name in gone:
        (partial / name).unlink()
    before, other_calls, other_report = stamps(partial), [], []

    with distributed.Client(client.scheduler.address) as other:

        def count(done: int, total: int) -> None:
            other_calls.append((done, total))

        def start_the_other_run(done: int, total: int) -> None:
            if not other_report:
                other_report.append(
                    render(small_cnn(), partial, client=other, progress=count, **TINY)
                )

        fresh = tmp_path / "fresh"
        report = render(small_cnn(), fresh, client=client, progress=start_the_other_run, **TINY)

    assert report.rendered == 28 and other_report[0].rendered == 3
    assert other_calls == [(1, 3), (2, 3), (3, 3)]
    after = stamps(partial)
    touched = {name for name in before if after[name] != before[name]}
    assert touched == {name.replace(".png", ".json") for name in gone}
    assert_same_atlas(reference, fresh)
    assert_same_atlas(reference, partial)


@pytest.mark.parametrize("mode", ["classic", "improved"])
def test_picture_depends_neither_on_filter_count_nor_on_other_layers(mode, tmp_path):
    """The first 3 filters, then the first 8 in the same folder (filters 3 to 7 now share a
    batch with other filters, at other places in it), and layer "3" alone: the same pictures as
    every filter rendered at once."""
    grown, every, alone = tmp_path / "grown", tmp_path / "every", tmp_path / "alone"
    microscope(small_cnn(), grown, filters=3, mode=mode, **TINY)
    first3, stamped = pictures(grown), stamps(grown)
    report = render(small_cnn(), grown, filters=8, mode=mode, **TINY)
    assert (report.rendered, report.kept) == (10, 6)
    assert all(stamps(grown)[name] == stamp for name, stamp in stamped.items())
    microscope(small_cnn(), every, mode=mode, **TINY)
    microscope(small_cnn(), alone, layers=["3"], mode=mode, **TINY)
    eight, whole, one_layer = pictures(grown), pictures(every), pictures(alone)
    assert len(first3) == 6 and len(eight) == 16 and len(whole) == 28 and len(one_layer) == 20
    assert all(first3[name] == eight[name] for name in first3)
    assert [name for name in eight if eight[name] != whole[name]] == []
    assert [name for name in one_layer if one_layer[name] != whole[name]] == []
    # the final activations too, to the last bit (a picture rounds them to 8-bit pixels)
    activations = {f["image"]: f["activation"] for f in atlas_file(every)["filters"]}
    for out in (grown, alone):
        assert all(f["activation"] == activations[f["image"]] for f in atlas_file(out)["filters"])


# ----------------------------------------------------------------------------- resumable
def test_rerun_renders_nothing_and_touches_no_picture(reference, tmp_path):
    out = copy_atlas(reference, tmp_path / "atlas")
    before, calls = stamps(out), []
    report = render(small_cnn(), out, progress=lambda *a: calls.append(a), **TINY)
    assert (report.rendered, report.kept, calls) == (0, 28, [])
    assert stamps(out) == before
    assert_same_atlas(reference, out)


def test_more_filters_renders_only_the_new_ones(tmp_path):
    first = render(small_cnn(), tmp_path, filters=3, **TINY)
    assert (first.rendered, first.kept) == (6, 0)
    before = stamps(tmp_path)
    more = render(small_cnn(), tmp_path, filters=5, **TINY)
    assert (more.rendered, more.kept) == (4, 6)
    after = stamps(tmp_path)
    assert all(after[name] == stamp for name, stamp in before.items())


def test_deleting_two_pictures_renders_exactly_those_two(reference, tmp_path):
    out = copy_atlas(reference, tmp_path / "atlas")
    gone = ["0/0005.png", "3/0017.png"]
    for name in gone:
        (out / name).unlink()
    before, calls = stamps(out), []
    report = render(small_cnn(), out, progress=lambda *a: calls.append(a), **TINY)
    assert (report.rendered, report.kept, calls) == (2, 26, [(1, 2), (2, 2)])
    after = stamps(out)
    untouched = {name for name in before if name.rsplit(".", 1)[0] + ".png" not in gone}
    assert len(untouched) == 26 + 26 and all(after[name] == before[name] for name in untouched)
    assert_same_atlas(reference, out)


def test_bad_records_and_replaced_pictures_are_rendered_again(reference, tmp_path):
    out = copy_atlas(reference, tmp_path / "atlas")
    (out / "0/0001.json").unlink()  # a picture without its record
    (out / "0/0002.json").write_text('{"layer": "0", "filt')  # a torn record
    record = json.loads((out / "3/0004.json").read_text())
    (out / "3/0004.json").write_text(json.dumps(record | {"key": "0" * 32}))  # stale key
    record = json.loads((out / "3/0005.json").read_text())
    (out / "3/0005.json").write_text(json.dumps(record | {"activation": None}))
    (out / "3/0009.png").write_bytes((out / "3/0010.png").read_bytes())  # other bytes
    (out / "3/0011.png").write_bytes(b"")  # emptied
    report = render(small_cnn(), out, **TINY)
    assert (report.rendered, report.kept) == (6, 22)
    assert_same_atlas(reference, out)


def test_leftover_temporary_files_are_deleted_by_the_next_run(reference, tmp_path):
    """A SIGKILL during an atomic write can leave its temporary file behind."""
    out = copy_atlas(reference, tmp_path / "atlas")
    (out / "3/0007.png").unlink()
    leftovers = [
        out / "3" / ".0007.png.0123456789ab.partial",
        out / "0" / ".0001.json.00000000abcd.partial",
        out / ".atlas.json.ffffffffffff.partial",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"\x89PNG half")
    kept = out / "3" / ".notes.partial"  # not one of an atomic write's names: not ours to delete
    kept.write_bytes(b"mine")
    report = render(small_cnn(), out, **TINY)
    assert report.rendered == 1
    assert_same_atlas(reference, out)
    assert not any(leftover.exists() for leftover in leftovers) and kept.exists()


@pytest.mark.skipif(os.name != "posix", reason="fcntl locks")
def test_a_second_run_on_the_same_folder_is_refused_while_one_writes(reference, tmp_path):
    import fcntl

    out = copy_atlas(reference, tmp_path / "atlas")
    (out / "3/0007.png").unlink()
    before = stamps(out)
    with open(out / ".microscope.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running microscope holds it
        with pytest.raises(RuntimeError, match="another microscope run is writing to"):
            render(small_cnn(), out, **TINY)
        assert stamps(out) == before
    assert render(small_cnn(), out, **TINY).rendered == 1  # once released


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("change", "dead_too"),
    [
        ({"steps": 3}, False),
        ({"size": 24}, True),
        ({"mode": "improved"}, True),
        ({"seed": 1}, True),
    ],
    ids=["steps", "size", "mode", "seed"],
)
def test_changed_parameter_renders_everything_again(change, dead_too, reference, tmp_path):
    """Every picture is rendered again; the pictures of live filters all change (a dead
    filter's classic ascent stops at its start noise, which more steps leave as it was)."""
    out = copy_atlas(reference, tmp_path / "atlas")
    old = pictures(out)
    report = render(small_cnn(), out, **(TINY | change))
    assert (report.rendered, report.kept) == (28, 0)
    name, value = next(iter(change.items()))
    assert atlas_file(out)["parameters"][name] == value
    new = pictures(out)
    assert new.keys() == old.keys()
    live = {f["image"] for f in atlas_file(reference)["filters"] if f["activation"] > 0}
    should_change = set(new) if dead_too else live
    assert len(live) >= 20
    assert {name for name in new if new[name] != old[name]} >= should_change


def test_changed_weight_renders_everything_again(reference, tmp_path):
    out = copy_atlas(reference, tmp_path / "atlas")
    old = pictures(out)
    model = small_cnn()
    model[3].weight.data[0, 0, 0, 0] += 1.0  # one weight of layer "3"'s filter 0
    report = render(model, out, **TINY)
    assert (report.rendered, report.kept) == (28, 0)
    fingerprints = {atlas_file(where)["parameters"]["weights"] for where in (out, reference)}
    assert len(fingerprints) == 2
    new = pictures(out)
    # only filter 0 of layer "3" computes anything else: every other picture comes out the same
    assert [name for name in new if new[name] != old[name]] == ["3/0000.png"]


# ----------------------------------------------------------------------------- fault tolerant
def test_killed_worker_still_gives_the_in_process_atlas(client, tmp_path):
    """Kill a worker process that is rendering, right after the first filter is saved."""
    model = small_cnn(seed=3, width=48)  # four tasks of up to 16 filters
    settings = {"steps": 8, "size": 28}
    expected = tmp_path / "here"
    render(model, expected, **settings)

    client.wait_for_workers(2)
    pids = client.run(os.getpid)
    killed = {}

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed:
            return
        busy = [address for address, keys in client.processing().items() if keys]
        assert busy, "no task left running: the job is too short for the kill to land mid-run"
        os.kill(pids[busy[0]], signal.SIGKILL)
        killed.update(pid=pids[busy[0]], at=done, of=total)

    out = tmp_path / "cluster"
    report = render(model, out, client=client, progress=kill_a_busy_worker, **settings)
    assert killed and killed["at"] < killed["of"] == report.rendered == 56
    assert_same_atlas(expected, out)
    client.wait_for_workers(2, timeout=60)
    assert killed["pid"] not in client.run(os.getpid).values()


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"layers": ["7"]}, ValueError, r"'7' is not a convolution layer .* choose one of 0, 3"),
        ({"layers": "0"}, TypeError, "layers must be a list of layer names, got '0'"),
        ({"layers": []}, ValueError, "layers is empty"),
        ({"filters": 0}, ValueError, "filters must be a count of at least 1"),
        ({"filters": 2.5}, ValueError, "filters must be a count"),
        ({"steps": 0}, ValueError, "steps must be from 1 to"),
        ({"size": 4}, ValueError, "size must be from 8 to 256, got 4"),
        ({"size": 16.0}, TypeError, "size must be an int"),
        ({"mode": "x"}, ValueError, "mode must be 'classic' or 'improved', got 'x'"),
        ({"seed": -1}, ValueError, "seed must be from 0"),
    ],
)
def test_bad_arguments_are_named_and_nothing_is_written(arguments, error, message, tmp_path):
    out = tmp_path / "atlas"
    with pytest.raises(error, match=message):
        microscope(small_cnn(), out, **(TINY | arguments))
    assert not out.exists()


def test_out_that_is_a_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"):
        microscope(small_cnn(), out, **TINY)
    assert out.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [out]


def test_not_a_cnn_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"needs a VGG16 or an nn\.Sequential CNN, got Linear"):
        microscope(nn.Linear(2, 2), tmp_path / "atlas", **TINY)
    with pytest.raises(ValueError, match="no Conv2d layer"):
        microscope(nn.Sequential(nn.Linear(2, 2)), tmp_path / "atlas", **TINY)
    assert not (tmp_path / "atlas").exists()


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "x\\y"])
def test_layer_name_that_is_no_folder_name_is_refused_before_writing(name, tmp_path):
    """A hand-made Target names its layers freely; "../0000.png" would land outside the atlas."""
    conv = nn.Conv2d(3, 2, 3, rng=0)
    target = Target([conv, nn.ReLU()], {0: name}, "unit", "hand-made")
    with pytest.raises(ValueError, match=f"layer name {re.escape(repr(name))} cannot be a folder"):
        microscope(target, tmp_path / "inner" / "atlas", steps=1, size=8)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_network_that_overflows_is_named_not_reported_missing(tmp_path):
    """Huge weights make every activation infinite: a clear error, not "filter 0 is missing"."""
    model = nn.Sequential(nn.Conv2d(3, 2, 3, rng=0), nn.ReLU())
    model[0].weight.data[:] = 1e38
    with pytest.raises(ValueError, match=r"filter 0 of layer '0' ended with activation (inf|nan)"):
        microscope(model, tmp_path / "atlas", steps=2, size=8)
    assert list((tmp_path / "atlas").glob("*/*.png")) == []


# ----------------------------------------------------------------------------- the atlas as a cache
#: what may change between two runs into one folder, and what the next run must see: each
#: parameter flips between two values, so every such change is a real one
FLIPS = {"steps": (2, 3), "size": (16, 20), "seed": (0, 1), "mode": ("classic", "improved")}
CHOICES = {"filters": (None, 3, 5), "layers": (None, ["0"], ["3"])}
#: a weight or a BatchNorm buffer changed in place, the model's mode (no effect on pictures),
#: the kernels' shares, a picture deleted, a record cut short, a picture replaced by another's
EVENTS = ("weight", "running_var", "train", "kernel_shares", "delete", "truncate", "swap")
CHANGES = st.tuples(st.sampled_from([*FLIPS, *CHOICES, *EVENTS]), st.integers(0, 2**16))


@settings(deadline=None, max_examples=30)
@given(changes=st.lists(CHANGES, min_size=3, max_size=6))
def test_any_sequence_of_changes_leaves_the_atlas_a_fresh_run_would_write(changes):
    """The atlas folder is a cache of pictures: after any run, whatever changed before it (the
    parameters, weights or buffers in place, the model's mode, the kernels' shares, files
    deleted or damaged), it holds what a run into an empty folder writes, byte for byte."""
    model = small_cnn(width=6)
    options = {"steps": 2, "size": 16, "mode": "classic", "seed": 0, "filters": None}
    options["layers"] = None
    shares = threads.workers()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "kept"
        try:
            render(model, out, **options)
            for step, (change, value) in enumerate(changes):
                rng = np.random.default_rng(value)
                files = sorted(out.glob("*/[0-9]*.*"))
                if change == "weight":
                    model[3].weight.data.flat[value % model[3].weight.data.size] += 0.5
                elif change == "running_var":
                    model[4].running_var.data[value % 6] *= 1.5
                elif change == "train":
                    model.train(value % 2 == 0)
                elif change == "kernel_shares":
                    threads.set_workers(1 + value % 2)
                elif change in ("delete", "truncate", "swap"):
                    kind = ".json" if change == "truncate" else ".png"
                    chosen = [f for f in files if f.suffix == kind]
                    one, other = (chosen[i] for i in rng.integers(len(chosen), size=2))
                    if change == "delete":
                        one.unlink()
                    elif change == "truncate":
                        one.write_bytes(one.read_bytes()[:10])
                    else:
                        one.write_bytes(other.read_bytes())
                elif change in FLIPS:
                    first, second = FLIPS[change]
                    options[change] = second if options[change] == first else first
                else:
                    options[change] = CHOICES[change][value % 3]
                kept = render(model, out, **options).atlas
                fresh = render(model, Path(folder) / f"fresh{step}", **options).atlas
                assert kept == fresh, change
                for entry in kept["filters"]:
                    picture = entry["image"]
                    assert (out / picture).read_bytes() == (
                        Path(folder) / f"fresh{step}" / picture
                    ).read_bytes(), (change, picture)
        finally:
            threads.set_workers(shares)
