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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..autograd import grad
from ..models.vgg import VGG16
from ..nn import functional as F
from ..tensor import Tensor
from .images import KERAS_EPSILON, grey_noise

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


@dataclass(frozen=True)
class AscentSettings:
    """How an ascent runs, in either mode: ``steps`` per filter (per octave in the improved
    mode), ``step_size`` (the script's 1.0), the image side ``size`` in pixels, ``batch``
    filters at once, and the ``seed`` of the start noise."""

    steps: int = 20
    step_size: float = 1.0
    size: int = 128
    batch: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.size < 8 or self.step_size <= 0:
            raise ValueError(
                f"need steps >= 1, size >= 8 and step_size > 0; "
                f"got {self.steps}, {self.size}, {self.step_size}"
            )
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")


@dataclass
class _Slot:
    filter_index: int
    image: np.ndarray  # (3, H, W), float64
    step: int = 0
    loss: float = 0.0


def classic_ascent(
    model: VGG16,
    layer: str,
    filters: list[int],
    settings: AscentSettings,
    progress: Progress | None = None,
) -> list[tuple[int, np.ndarray, float]]:
    """Run the document's ascent for each filter; ``(filter, final image (3,H,W), last loss)``."""
    steps, batch = settings.steps, settings.batch
    pending = deque(filters)
    slots: list[_Slot] = []
    finished: list[tuple[int, np.ndarray, float]] = []
    while pending or slots:
        while pending and len(slots) < batch:
            f = pending.popleft()
            slots.append(_Slot(f, grey_noise(model.input_space, f, settings.size, settings.seed)))
        losses, gradients = _loss_and_gradient(model, layer, slots)
        still_running = []
        for slot, loss, g in zip(slots, losses, normalize(gradients)):
            slot.image += settings.step_size * g  # the step comes first, then the loss <= 0 check
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
