"""Which filters to draw, in which mode, and which images to keep: the front of :mod:`.ascent`
(the document's classic ascent) and :mod:`.improved`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import numpy as np

from ..models.vgg import VGG16
from ..nn import Sequential
from .ascent import Ascended, AscentSettings, Progress, classic_ascent
from .images import picture_of_pixels
from .improved import ImprovedOptions, improved_ascent
from .targets import Target, as_target


def filter_indices(
    model: VGG16 | Sequential | Target, layer: str, filters: int | Iterable[int]
) -> list[int]:
    """The filters to scan: the first ``filters`` (all when fewer) or the given indices."""
    channels = as_target(model).channels(layer)
    if isinstance(filters, (int, np.integer)):
        if filters < 1:
            raise ValueError(f"filters must be at least 1, got {filters}")
        return list(range(min(int(filters), channels)))
    chosen = [int(f) for f in filters]
    bad = [f for f in chosen if not 0 <= f < channels]
    if bad:
        raise ValueError(f"layer {layer} has filters 0..{channels - 1}; got {bad}")
    return chosen


def visualize_filters(
    model: VGG16 | Sequential | Target,
    layer: str,
    filters: int | Iterable[int],
    steps: int = 20,
    step_size: float = 1.0,
    size: int = 128,
    batch: int | None = None,
    seed: int = 0,
    mode: str = "classic",
    progress: Progress | None = None,
    **improved_options,
) -> list[tuple[int, np.ndarray, float]]:
    """Images that maximise filters of ``layer``: ``[(filter_index, image_uint8_hwc, loss)]``.

    ``filters`` is a count (the first ones; all when the layer has fewer) or a list of indices.
    ``model`` is VGG16 (Keras layer names), an :class:`~tinygrad_edu.nn.Sequential` CNN (layers
    named as in ``named_modules``) or a :class:`~.targets.Target`.
    Filters whose final loss is not positive are dropped, as in the document; the rest come in
    the order scanned. ``batch`` filters run at once (default 16, at most as many as scanned);
    ``seed`` fixes the start noise. ``mode="improved"`` uses :func:`.improved.improved_ascent`
    (its options pass through). Images are drawn by :meth:`.Target.picture` (the document's
    ``deprocess_image``), except the spectral parameterisation's, which are pixels already
    (:func:`.images.picture_of_pixels`).
    """
    target = as_target(model)
    chosen = filter_indices(target, layer, filters)
    batch = min(16 if batch is None else batch, len(chosen))
    raw = ascend(
        target,
        layer,
        chosen,
        AscentSettings(steps, step_size, size, batch, seed),
        mode,
        progress,
        **improved_options,
    )
    draw = target.picture
    if improved_options.get("parameterization") == "spectral":  # its images are pixels already
        draw = partial(picture_of_pixels, input_space=target.input_space)
    return [(r.filter, draw(r.image), r.loss) for r in raw if r.loss > 0]


def ascend(
    target: Target,
    layer: str,
    filters: list[int],
    settings: AscentSettings,
    mode: str = "classic",
    progress: Progress | None = None,
    **improved_options,
) -> list[Ascended]:
    """Every filter's ascent in ``mode`` ("classic" or "improved"), dead ones included."""
    if mode == "classic":
        if improved_options:
            raise TypeError(f"options {sorted(improved_options)} only apply to mode='improved'")
        return classic_ascent(target, layer, filters, settings, progress)
    if mode == "improved":
        options = ImprovedOptions(**improved_options)
        return improved_ascent(target, layer, filters, settings, options, progress)
    raise ValueError(f"mode must be 'classic' or 'improved', got {mode!r}")


def best(
    results: list[tuple[int, np.ndarray, float]], count: int
) -> list[tuple[int, np.ndarray, float]]:
    """The ``count`` results with the highest loss, highest first."""
    return sorted(results, key=lambda item: item[2], reverse=True)[:count]
