"""Which filters to draw, in which mode, and which images to keep: the front of :mod:`.ascent`
(the document's classic ascent) and :mod:`.improved`."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..models.vgg import VGG16
from .ascent import AscentSettings, Progress, classic_ascent
from .images import deprocess_image
from .improved import ImprovedOptions, improved_ascent


def filter_indices(model: VGG16, layer: str, filters: int | Iterable[int]) -> list[int]:
    """The filters to scan: the first ``filters`` (all when fewer) or the given indices."""
    channels = channel_count(model, layer)
    if isinstance(filters, (int, np.integer)):
        if filters < 1:
            raise ValueError(f"filters must be at least 1, got {filters}")
        return list(range(min(int(filters), channels)))
    chosen = [int(f) for f in filters]
    bad = [f for f in chosen if not 0 <= f < channels]
    if bad:
        raise ValueError(f"layer {layer} has filters 0..{channels - 1}; got {bad}")
    return chosen


def channel_count(model: VGG16, layer: str) -> int:
    return model.features[model.conv_index(layer)].out_channels


def visualize_filters(
    model: VGG16,
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
    Filters whose final loss is not positive are dropped, as in the document; the rest come in
    the order scanned. ``batch`` filters run at once (default 16); ``seed`` fixes the start noise.
    ``mode="improved"`` uses :func:`.improved.improved_ascent` (its options pass through).
    """
    chosen = filter_indices(model, layer, filters)
    settings = AscentSettings(steps, step_size, size, 16 if batch is None else batch, seed)
    if mode == "classic":
        if improved_options:
            raise TypeError(f"options {sorted(improved_options)} only apply to mode='improved'")
        raw = classic_ascent(model, layer, chosen, settings, progress)
    elif mode == "improved":
        options = ImprovedOptions(**improved_options)
        raw = improved_ascent(model, layer, chosen, settings, options, progress)
    else:
        raise ValueError(f"mode must be 'classic' or 'improved', got {mode!r}")
    return [(f, deprocess_image(x, model.input_space), loss) for f, x, loss in raw if loss > 0]


def best(
    results: list[tuple[int, np.ndarray, float]], count: int
) -> list[tuple[int, np.ndarray, float]]:
    """The ``count`` results with the highest loss, highest first."""
    return sorted(results, key=lambda item: item[2], reverse=True)[:count]
