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

**Batching.** Images do not interact inside a CNN in eval mode, so many filters run at once, one
per image of a batch: the loss is the sum of the per-image losses, and each image's gradient is
its own filter's gradient. Each batch slot carries its own step counter; when a filter finishes,
the next pending filter takes its slot, so batches stay full even when most filters die at step
one. Batches are also padded to their full size (:class:`AscentSettings`), so a filter's result
is the same to the last bit whichever filters share its batch (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..autograd import grad
from ..tensor import Tensor
from .images import KERAS_EPSILON
from .targets import Target


@dataclass(frozen=True)
class Ascended:
    """One filter's ascent: the ``filter`` index, the final ``image`` (the network's input,
    ``(C, H, W)`` float64), its last ``loss`` (mean activation) and the ``curve`` of losses,
    one per step."""

    filter: int
    image: np.ndarray
    loss: float
    curve: tuple[float, ...]


#: ``progress(filters_done, filters_total, result)`` after each finished filter
Progress = Callable[[int, int, Ascended], None]


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
    mode), ``step_size`` (the script's 1.0, in units of :attr:`.Target.pixel_step`), the image
    side ``size`` in pixels, ``batch`` images at once, and the ``seed`` of the start noise.

    Every batch holds exactly ``batch`` images -- when fewer filters are left, copies of one of
    them fill the batch and are thrown away -- so the arithmetic each image goes through, and
    so its result to the last bit, does not depend on which filters share its batch."""

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


def padded(items: list, size: int) -> list:
    """``items`` filled up to ``size`` with copies of the first (see :class:`AscentSettings`)."""
    return items + [items[0]] * (size - len(items))


@dataclass
class _Slot:
    filter_index: int
    image: np.ndarray  # (C, H, W), float64
    curve: list[float] = field(default_factory=list)


def classic_ascent(
    target: Target,
    layer: str,
    filters: list[int],
    settings: AscentSettings,
    progress: Progress | None = None,
) -> list[Ascended]:
    """Run the document's ascent for each filter, in the order given."""
    steps, batch = settings.steps, settings.batch
    step = settings.step_size * target.pixel_step
    pending = deque(filters)
    slots: list[_Slot] = []
    finished: list[Ascended] = []
    while pending or slots:
        while pending and len(slots) < batch:
            f = pending.popleft()
            slots.append(_Slot(f, target.start_image(f, settings.size, settings.seed)))
        losses, gradients = _loss_and_gradient(target, layer, padded(slots, batch))
        still_running = []
        for slot, loss, g in zip(slots, losses, normalize(gradients)):
            slot.image += step * g  # the step comes first, then the loss <= 0 check
            slot.curve.append(float(loss))
            if loss <= 0 or len(slot.curve) >= steps:
                result = Ascended(slot.filter_index, slot.image, float(loss), tuple(slot.curve))
                finished.append(result)
                if progress is not None:
                    progress(len(finished), len(filters), result)
            else:
                still_running.append(slot)
        slots = still_running
    position = {f: i for i, f in enumerate(filters)}
    return sorted(finished, key=lambda result: position[result.filter])


def _loss_and_gradient(
    target: Target, layer: str, slots: list[_Slot]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image mean activation of each slot's filter, and its gradient w.r.t. that image."""
    x = Tensor(np.stack([s.image for s in slots]).astype(np.float32), requires_grad=True)
    own = target.response(x, layer, [s.filter_index for s in slots])  # (B, H, W)
    per_image = own.mean(axis=(1, 2))
    (g,) = grad(per_image.sum(), [x])
    return per_image.data, g.data
