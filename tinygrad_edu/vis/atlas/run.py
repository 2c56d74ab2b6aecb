"""Rendering an atlas: in this process, or as tasks on a Dask cluster.

**In-process**, each layer's remaining filters go through one ascent, batched as ``visualize``
batches them, and every filter is saved the moment it finishes.

**On a cluster** (a ``dask.distributed.Client``), the network is sent to every worker once
(``client.scatter(..., broadcast=True)``); each task renders a few batches of one layer and
hands back finished PNGs (so workers need no shared disk), which this process saves as each task
completes. Task keys are derived from what they compute, and tasks are pure: when a worker dies,
the scheduler runs its tasks again elsewhere and they give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...kernels.fast import threads
from ...models.vgg import VGG16
from ...nn import Sequential
from ..ascent import Ascended, AscentSettings
from ..filters import ascend
from ..images import png_bytes
from ..targets import Target, as_target
from . import store
from .plan import Plan, layer_key, make_plan, tasks
from .site import LayerSummary, write_site

#: ``progress(filters_done, filters_to_render)`` after each saved filter
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Report:
    """What a run did: the ``atlas`` (as written to ``atlas.json``), how many filters it
    ``rendered`` and how many were already done (``kept``)."""

    atlas: dict
    rendered: int
    kept: int


def microscope(
    model: VGG16 | Sequential | Target,
    out: str | Path,
    layers: Sequence[str] | None = None,
    filters: int | None = None,
    steps: int = 20,
    size: int = 128,
    mode: str = "classic",
    seed: int = 0,
    client=None,
    *,
    progress: Progress | None = None,
) -> dict:
    """Render every filter of ``layers`` (default: every convolution) into a static atlas.

    Parameters
    ----------
    model
        VGG16 (layers by Keras name, ``block1_conv1`` ...) or any
        :class:`~tinygrad_edu.nn.Sequential` CNN (layers by their ``named_modules`` path:
        ``"0"``, ``"3"``; inputs are pixels on 0..1), or a :class:`~..targets.Target`.
    out
        The atlas folder: ``atlas.json``, ``index.html``, ``<layer>/index.html`` and
        ``<layer>/<NNNN>.png`` (see :mod:`.store`).
    layers, filters
        Which layers, and the first ``filters`` of each (default: all).
    steps, size, mode, seed
        The ascent: steps per filter (per octave in "improved" mode), image side in pixels,
        "classic" (the document's) or "improved", and the seed of the start noise.
    client
        A ``dask.distributed.Client`` to render on its cluster; ``None`` renders here.
    progress
        Called as ``progress(done, to_render)`` after each filter saved.

    Returns
    -------
    dict
        The atlas, ``{"parameters": {...}, "filters": [{"layer", "filter", "activation",
        "image"}, ...]}``, also written to ``out/atlas.json``.

    Re-running renders only what is missing or stale (:mod:`.plan`); a filter's picture
    depends only on the weights, its layer and index, the parameters and the seed -- never on
    where or with which other filters it was rendered.
    """
    return render(model, out, layers, filters, steps, size, mode, seed, client, progress).atlas


def render(
    model: VGG16 | Sequential | Target,
    out: str | Path,
    layers: Sequence[str] | None = None,
    filters: int | None = None,
    steps: int = 20,
    size: int = 128,
    mode: str = "classic",
    seed: int = 0,
    client=None,
    progress: Progress | None = None,
) -> Report:
    """:func:`microscope`, returning the :class:`Report` of the run."""
    plan = make_plan(as_target(model), layers, filters, steps, size, mode, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the atlas folder {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    with store.writing(out, plan.layers):
        parameters = plan.parameters
        keys = {layer: layer_key(parameters, layer) for layer in plan.layers}
        todo = {
            layer: store.missing(out, layer, plan.filters[layer], keys[layer])
            for layer in plan.layers
        }
        total = sum(map(len, todo.values()))
        counter = _Counter(total, progress)

        def save(rendered: store.Rendered) -> None:
            store.save(out, rendered, keys[rendered.layer])
            counter.step()

        if total:
            if client is None:
                _render_here(plan, todo, save)
            else:
                _render_on_cluster(plan, todo, keys, save, client)
        records = _records(out, plan, keys)
        atlas = {
            "parameters": parameters,
            "filters": [
                {
                    "layer": layer,
                    "filter": f,
                    "activation": record["activation"],
                    "image": store.picture_path(layer, f),
                }
                for (layer, f), record in records.items()
            ],
        }
        store.write_atlas(out, atlas)
        curves = {where: record["curve"] for where, record in records.items()}
        write_site(out, atlas, _summaries(plan), curves)
    kept = sum(len(plan.filters[layer]) for layer in plan.layers) - total
    return Report(atlas, total, kept)


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def rendered(target: Target, layer: str, result: Ascended) -> store.Rendered:
    """One ascent result as the atlas keeps it: its picture as PNG bytes, and its numbers.

    ``ValueError`` when its final activation is not a finite number (a network whose values
    overflow): the atlas could not record it, and every run would render it again."""
    if not math.isfinite(result.loss):
        raise ValueError(
            f"filter {result.filter} of layer {layer!r} ended with activation {result.loss}: "
            "the network's values overflow (are its weights sensible?)"
        )
    return store.Rendered(
        layer, result.filter, result.loss, result.curve, png_bytes(target.picture(result.image))
    )


def _render_here(
    plan: Plan, todo: dict[str, list[int]], save: Callable[[store.Rendered], None]
) -> None:
    for layer, filters in todo.items():
        if filters:

            def finished(done: int, total: int, result: Ascended, layer: str = layer) -> None:
                save(rendered(plan.target, layer, result))

            ascend(plan.target, layer, filters, plan.settings(layer), plan.mode, finished)


def render_task(
    target: Target,
    layer: str,
    filters: tuple[int, ...],
    settings: AscentSettings,
    mode: str,
    partitions: int,
) -> list[store.Rendered]:
    """One cluster task: the ascent of a few batches of ``layer``'s filters, as PNGs.

    The kernels cut their work into as many shares as the calling process's
    (``partitions``, :mod:`~tinygrad_edu.kernels.fast.threads`): the size of each matrix
    product decides how BLAS rounds, and so the last bits of every picture.
    """
    previous = threads.workers()
    threads.set_workers(partitions)
    try:
        results = ascend(target, layer, list(filters), settings, mode)
    finally:
        threads.set_workers(previous)
    return [rendered(target, layer, r) for r in results]


def task_key(key: str, chunk: Sequence[int], partitions: int) -> str:
    """The name of the task rendering ``chunk`` under a layer's ``key`` with ``partitions``
    work shares: everything it computes from, every filter included. The scheduler gives a
    task to everyone who submits its name (another run on the same cluster), so two tasks that
    compute different pictures must never share one."""
    what = json.dumps([key, list(chunk), partitions])
    digest = hashlib.sha256(what.encode("utf-8")).hexdigest()[:32]
    return f"microscope-{chunk[0]}-{chunk[-1]}-{digest}"


def _render_on_cluster(
    plan: Plan,
    todo: dict[str, list[int]],
    keys: dict[str, str],
    save: Callable[[store.Rendered], None],
    client,
) -> None:
    try:
        from distributed import as_completed
    except ImportError as err:
        raise ImportError(
            "rendering on a cluster needs Dask (the 'cluster' extra): "
            "pip install 'dask[distributed]'"
        ) from err
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    partitions = plan.shares
    target = client.scatter(plan.target, broadcast=True, hash=False)
    futures = []
    for layer, filters in todo.items():
        settings = plan.settings(layer)
        key = keys[layer]
        for chunk in tasks(filters, settings.batch, workers):
            futures.append(
                client.submit(
                    render_task,
                    target,
                    layer,
                    chunk,
                    settings,
                    plan.mode,
                    partitions,
                    key=task_key(key, chunk, partitions),
                )
            )
    try:
        for future in as_completed(futures):
            for result in future.result():
                save(result)
    finally:
        client.cancel([*futures, target])


def _records(out: Path, plan: Plan, keys: dict[str, str]) -> dict[tuple[str, int], dict]:
    """Every requested filter's record, in layer and filter order."""
    records = {}
    for layer in plan.layers:
        for f in plan.filters[layer]:
            record = store.load(out, layer, f, keys[layer])
            if record is None:  # e.g. another process deleted it meanwhile
                raise RuntimeError(f"filter {f} of layer {layer} is missing from {out}")
            records[(layer, f)] = record
    return records


def _summaries(plan: Plan) -> list[LayerSummary]:
    summaries = []
    for name in plan.layers:
        layer = plan.target.layer(name)
        kernels = None
        reads_pixels = layer.position == 0 and plan.target.input_channels == 3
        if reads_pixels and layer.conv.groups == 1:
            kernels = layer.conv.weight.data
            if plan.target.input_space == "caffe":
                kernels = kernels[:, ::-1]  # Keras's BGR kernels, drawn in RGB
        summaries.append(LayerSummary(name, layer.describe(), layer.channels, kernels))
    return summaries
