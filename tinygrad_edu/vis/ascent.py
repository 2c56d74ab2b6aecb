r"""Gradient ascent in input space: the image that most excites one filter.

The document's algorithm ("classic" mode), per filter ``f`` of a conv layer:

1. start from grey noise (:func:`~.images.grey_noise`);
2. 20 times: compute the loss :math:`L = \operatorname{mean}_{i,j} a_{f,i,j}(x)` (the filter's mean
   activation after its ReLU) and its gradient :math:`g = \partial L / \partial x`, then step
   :math:`x \leftarrow x + \eta\, g / (\sqrt{\operatorname{mean}(g^2)} + \epsilon)` with
   :math:`\eta = 1` and Keras' ``K.epsilon()`` :math:`\epsilon = 10^{-7}`; *then* stop early if
   the loss (computed before that step) was :math:`\le 0` (the filter is dead for this image);
3. keep the filter if its last loss is positive.

As in the script, the image is fed to the network in float32 and the gradient is normalised in
float32, while the image itself accumulates the steps in float64 (NumPy's ``random`` array).

**Batching.** Images do not interact inside VGG16, so many filters run at once, one per image of
a batch: the loss is the sum of the per-image losses, and each image's gradient is its own
filter's gradient. Each batch slot carries its own step counter; when a filter finishes, the next
pending filter takes its slot, so batches stay full even when most filters die at step one. The
results equal one-filter-at-a-time runs (up to float rounding; tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..autograd import grad
from ..models.vgg import VGG16
from ..nn import functional as F
from ..tensor import Tensor
from .images import KERAS_EPSILON, deprocess_image, grey_noise

#: ``progress(filters_done, filters_total, last_loss)`` after each finished filter
Progress = Callable[[int, int, float], None]


def normalize(g: np.ndarray) -> np.ndarray:
    r"""The script's ``normalize``, per image of a batch ``(B, ...)``:
    :math:`g / (\sqrt{\operatorname{mean}(g^2)} + 10^{-7})`, the mean over each image's entries.

    The result keeps ``g``'s dtype (float32 for the network's gradients, as in Keras).
    """
    g = np.asarray(g)
    rms = np.sqrt(np.mean(np.square(g), axis=tuple(range(1, g.ndim)), keepdims=True))
    return g / (rms + g.dtype.type(KERAS_EPSILON))


@dataclass
class _Slot:
    filter_index: int
    image: np.ndarray  # (3, H, W), float64
    step: int = 0
    loss: float = 0.0


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


def classic_ascent(
    model: VGG16,
    layer: str,
    filters: list[int],
    steps: int = 20,
    step_size: float = 1.0,
    size: int = 128,
    batch: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[tuple[int, np.ndarray, float]]:
    """Run the document's ascent for each filter; ``(filter, final image (3,H,W), last loss)``."""
    pending = deque(filters)
    slots: list[_Slot] = []
    finished: list[tuple[int, np.ndarray, float]] = []
    while pending or slots:
        while pending and len(slots) < batch:
            f = pending.popleft()
            slots.append(_Slot(f, grey_noise(model.input_space, f, size, seed)))
        losses, gradients = _loss_and_gradient(model, layer, slots)
        still_running = []
        for slot, loss, g in zip(slots, losses, normalize(gradients)):
            slot.image += step_size * g  # the step comes first, then the loss <= 0 check
            slot.step += 1
            slot.loss = float(loss)
            if slot.loss <= 0 or slot.step >= steps:
                finished.append((slot.filter_index, slot.image, slot.loss))
                if progress is not None:
                    progress(len(finished), len(filters), slot.loss)
            else:
                still_running.append(slot)
        slots = still_running
    position = {f: i for i, f in enumerate(filters)}
    finished.sort(key=lambda item: position[item[0]])  # back to the order scanned
    return finished


def _loss_and_gradient(
    model: VGG16, layer: str, slots: list[_Slot]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image mean activation of each slot's filter, and its gradient w.r.t. that image.

    Only one filter per image matters at the target layer, so that convolution runs with just the
    batch's chosen kernels: ``(B, C, 3, 3)`` instead of all ``K`` of them, giving ``(B, B, H, W)``
    of which the diagonal (image ``i``, kernel ``i``) is kept -- the same numbers as the full layer
    for a fraction of its work.
    """
    conv_index = model.conv_index(layer)
    conv = model.features[conv_index]
    x = Tensor(np.stack([s.image for s in slots]).astype(np.float32), requires_grad=True)
    below = model(x, until=f"features.{conv_index - 1}") if conv_index > 0 else x
    chosen_filters = np.array([s.filter_index for s in slots])
    kernels = Tensor(conv.weight.data[chosen_filters])
    biases = Tensor(conv.bias.data[chosen_filters])
    response = F.conv2d_relu(below, kernels, biases, conv.stride, conv.padding)
    own = response[np.arange(len(slots)), np.arange(len(slots))]  # (B, H, W)
    per_image = own.mean(axis=(1, 2))
    (g,) = grad(per_image.sum(), [x])
    return per_image.data, g.data


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
    if steps < 1 or size < 8 or step_size <= 0:
        raise ValueError(
            f"need steps >= 1, size >= 8 and step_size > 0; got {steps}, {size}, {step_size}"
        )
    batch = 16 if batch is None else batch
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if mode == "classic":
        if improved_options:
            raise TypeError(f"options {sorted(improved_options)} only apply to mode='improved'")
        raw = classic_ascent(model, layer, chosen, steps, step_size, size, batch, seed, progress)
    elif mode == "improved":
        from .improved import improved_ascent

        raw = improved_ascent(
            model, layer, chosen, steps, step_size, size, batch, seed, progress, **improved_options
        )
    else:
        raise ValueError(f"mode must be 'classic' or 'improved', got {mode!r}")
    return [(f, deprocess_image(x, model.input_space), loss) for f, x, loss in raw if loss > 0]


def best(
    results: list[tuple[int, np.ndarray, float]], count: int
) -> list[tuple[int, np.ndarray, float]]:
    """The ``count`` results with the highest loss, highest first."""
    return sorted(results, key=lambda item: item[2], reverse=True)[:count]
