r"""What feature visualisation needs to know about a network: a :class:`Target`.

A target sees a CNN as a list of modules run in order -- VGG16's ``features``, or any
:class:`~tinygrad_edu.nn.Sequential` (nested ones are flattened) -- and answers four questions:

* **which layers** there are: every :class:`~tinygrad_edu.nn.Conv2d`, by its Keras name for
  VGG16 (``block1_conv1`` ...) and by its path in ``named_modules`` otherwise (``"0"``,
  ``"3"``, ``"1.0"``);
* **what a filter's response is**: the convolution's output channel together with the
  per-channel modules right after it -- BatchNorm, an activation, Identity or Dropout -- as
  Keras's ``Conv2D(activation="relu")`` fuses its ReLU. :meth:`Target.response` gives it with
  or without the final nonlinearity;
* **where an ascent starts**: the document's grey noise in the network's input space;
* **how to draw** an input as a picture: the document's ``deprocess_image``.

**One kernel per image.** An ascent optimises a batch of images, image :math:`i` for filter
:math:`f_i`. At the target layer only that filter matters, so :meth:`Target.response`
convolves the batch with just the chosen kernels, :math:`W_{f_1} \dots W_{f_B}`, and keeps
the diagonal (image :math:`i`, kernel :math:`i`): the same numbers as the whole layer for
:math:`B / K` of its work. A BatchNorm after the convolution is, in eval mode, an affine map
per channel, :math:`\gamma (y - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`, so it folds into
the chosen kernels and biases.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..models.vgg import VGG16, to_input_space
from ..nn import functional as F
from ..nn.layers import run_in_order
from ..tensor import Tensor
from .images import deprocess_image, grey_noise

#: the input spaces a target understands: Keras's VGG16 (BGR minus the mean pixel), torchvision's
#: (standardised RGB), and plain pixels scaled to 0..1 ("unit", e.g. the digits CNN)
INPUT_SPACES = ("caffe", "torch", "unit")
#: modules that act on each channel on its own and so belong to the response of the convolution
#: before them: nonlinear activations, the identity in eval mode, and BatchNorm (affine)
ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh)
PASS_THROUGH = (nn.Identity, nn.Dropout)
#: characters a layer name may use: it names a folder of the microscope's atlas
LAYER_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer of a target: its ``name``, its ``position`` in the module list,
    the ``conv`` module, and the per-channel modules that follow it (``tail``)."""

    name: str
    position: int
    conv: nn.Conv2d
    tail: tuple[nn.Module, ...]

    @property
    def channels(self) -> int:
        return self.conv.out_channels

    def describe(self) -> str:
        """E.g. ``Conv2d(3 -> 64, 3x3) + ReLU``."""
        kh, kw = self.conv.kernel_size
        parts = [f"Conv2d({self.conv.in_channels} -> {self.conv.out_channels}, {kh}x{kw})"]
        parts += [type(m).__name__ for m in self.tail if not isinstance(m, PASS_THROUGH)]
        return " + ".join(parts)


class Target:
    """A CNN as feature visualisation sees it (see the module docstring).

    Parameters
    ----------
    modules
        The network's modules in the order they run.
    names
        The public name of the convolution at each position, e.g. ``{0: "block1_conv1"}``.
    input_space
        One of :data:`INPUT_SPACES`.
    label
        What to call the network (``"VGG16"``, ``"Sequential"``).
    """

    def __init__(
        self, modules: Sequence[nn.Module], names: dict[int, str], input_space: str, label: str
    ) -> None:
        if input_space not in INPUT_SPACES:
            raise ValueError(f"input_space must be one of {INPUT_SPACES}, got {input_space!r}")
        self.modules, self.input_space, self.label = list(modules), input_space, label
        self.layers: dict[str, ConvLayer] = {}
        for position, name in names.items():
            conv = self.modules[position]
            if not isinstance(conv, nn.Conv2d):
                raise TypeError(f"layer {name!r} is a {type(conv).__name__}, not a Conv2d")
            self.layers[name] = ConvLayer(name, position, conv, self._tail(position))
        if not self.layers:
            raise ValueError(f"the {label} has no Conv2d layer to visualise")
        first = self.modules[min(names)]
        self.input_channels = first.in_channels if isinstance(first, nn.Conv2d) else 3
        if input_space in ("caffe", "torch") and self.input_channels != 3:
            raise ValueError(
                f"input space {input_space!r} is for RGB images, but the first convolution reads "
                f"{self.input_channels} channels"
            )

    def _tail(self, position: int) -> tuple[nn.Module, ...]:
        tail = []
        for module in self.modules[position + 1 :]:
            if not isinstance(module, (*ACTIVATIONS, *PASS_THROUGH, nn.BatchNorm2d)):
                break
            tail.append(module)
        return tuple(tail)

    # ------------------------------------------------------------------ layers
    def layer(self, name: str) -> ConvLayer:
        """The convolution layer called ``name``; ``ValueError`` listing the valid names."""
        try:
            return self.layers[name]
        except KeyError:
            raise ValueError(
                f"{name!r} is not a convolution layer of the {self.label}; choose one of "
                f"{', '.join(self.layers)}"
            ) from None

    def channels(self, name: str) -> int:
        """How many filters layer ``name`` has."""
        return self.layer(name).channels

    # ------------------------------------------------------------------ running
    def response(
        self, x: Tensor, name: str, filters: Sequence[int], activated: bool = True
    ) -> Tensor:
        r"""Image ``i``'s response map of filter ``filters[i]``, ``(B, H, W)`` for NCHW ``x``.

        ``activated=False`` stops before the layer's last nonlinearity (the "pre-ReLU"
        response). Runs the modules below the layer, then only the chosen kernels (see the
        module docstring); a grouped convolution runs whole, and its chosen channels are kept.
        The network runs in eval mode (BatchNorm's running statistics, no Dropout): a filter's
        response must not depend on the other images of the batch.
        """
        layer = self.layer(name)
        chosen = np.asarray(filters, dtype=np.int64)
        if len(chosen) != x.shape[0]:
            raise ValueError(f"{len(chosen)} filters for a batch of {x.shape[0]} images")
        with _eval_mode(self.modules):
            below = run_in_order(self.modules[: layer.position], x)
        tail = list(layer.tail)
        if activated is False:
            while tail and not isinstance(tail[-1], ACTIVATIONS):
                tail.pop()
            if tail:
                tail.pop()
        diagonal = (np.arange(len(chosen)), np.arange(len(chosen)))
        if layer.conv.groups != 1:  # each filter reads only its group: run the layer whole
            with _eval_mode(tail):
                whole = run_in_order([layer.conv, *tail], below)
            return whole[np.arange(len(chosen)), chosen]
        kernels, biases = _chosen_kernels(layer, tail, chosen)
        conv = layer.conv
        activations = [m for m in tail if isinstance(m, ACTIVATIONS)]
        if activations and isinstance(activations[0], nn.ReLU):
            y = F.conv2d_relu(below, kernels, biases, conv.stride, conv.padding, conv.dilation)
            activations = activations[1:]
        else:
            y = F.conv2d(below, kernels, biases, conv.stride, conv.padding, conv.dilation)
        own = y[diagonal]
        return run_in_order(activations, own) if activations else own

    # ------------------------------------------------------------------ images
    def start_image(self, filter_index: int, size: int, seed: int) -> np.ndarray:
        """The document's start image for ``filter_index`` in this input space, ``(C, H, W)``
        (:func:`.images.grey_noise`)."""
        return grey_noise(self.input_space, filter_index, size, seed, self.input_channels)

    @property
    def pixel_step(self) -> float:
        """The unit of an ascent's step size, in input units: 1 in the Keras and torchvision
        spaces (the script's step is 1 in the network's own input units), 1/255 in the "unit"
        space, where a step of 1 would cross the whole range of a pixel."""
        return 1 / 255 if self.input_space == "unit" else 1.0

    def from_pixels(self, pixels: Tensor) -> Tensor:
        """RGB pixels on 0..255, ``(N, H, W, 3)`` -> the network's NCHW input (differentiable).

        A one-channel network sees the mean of the three channels."""
        if self.input_space == "unit":
            values = pixels / 255.0
            if self.input_channels == 1:
                values = values.mean(axis=3, keepdims=True)
        else:
            values = to_input_space(pixels, self.input_space)
        return values.transpose(0, 3, 1, 2)

    def picture(self, x: np.ndarray) -> np.ndarray:
        """The script's ``deprocess_image`` for an input ``(C, H, W)``: an ``(H, W, 3)`` uint8
        picture (see :func:`.images.deprocess_image`; one channel is drawn grey)."""
        return deprocess_image(x, self.input_space)


@contextmanager
def _eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Run ``modules`` in eval mode (BatchNorm's running statistics, no Dropout), then restore."""
    before = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, training in zip(modules, before):
            module.train(training)


def _chosen_kernels(
    layer: ConvLayer, tail: list[nn.Module], chosen: np.ndarray
) -> tuple[Tensor, Tensor]:
    """The chosen filters' kernels and biases, with every BatchNorm of ``tail`` folded in."""
    weight = layer.conv.weight.data[chosen].astype(np.float64)
    bias = (
        np.zeros(len(chosen))
        if layer.conv.bias is None
        else layer.conv.bias.data[chosen].astype(np.float64)
    )
    for module in tail:
        if isinstance(module, nn.BatchNorm2d):
            scale, shift = _batch_norm_affine(module, chosen)
            weight, bias = weight * scale[:, None, None, None], bias * scale + shift
    dtype = layer.conv.weight.dtype
    return Tensor(weight.astype(dtype)), Tensor(bias.astype(dtype))


def _batch_norm_affine(norm: nn.BatchNorm2d, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm of the chosen channels as ``y * scale + shift``."""
    if norm.running_mean is None:
        raise ValueError(
            "a BatchNorm2d without running statistics (track_running_stats=False) normalises "
            "by each batch, so a filter's response would depend on the other images"
        )
    mean = norm.running_mean.data[chosen].astype(np.float64)
    var = norm.running_var.data[chosen].astype(np.float64)
    gamma = np.ones(len(chosen)) if norm.weight is None else norm.weight.data[chosen]
    beta = np.zeros(len(chosen)) if norm.bias is None else norm.bias.data[chosen]
    scale = gamma / np.sqrt(var + norm.eps)
    return scale, beta - mean * scale


def as_target(model: VGG16 | nn.Sequential | Target, input_space: str | None = None) -> Target:
    """The :class:`Target` of ``model``: VGG16 (Keras layer names, its own input space) or an
    :class:`~tinygrad_edu.nn.Sequential` (layers named as in ``named_modules``; input space
    ``input_space``, default "unit": pixels scaled to 0..1). A target passes through."""
    if isinstance(model, Target):
        return model
    if isinstance(model, VGG16):
        positions = {int(path.split(".")[1]): name for name, (path, _) in _conv_paths(model)}
        return Target(list(model.features), positions, input_space or model.input_space, "VGG16")
    if isinstance(model, nn.Sequential):
        modules, names = _flatten(model)
        convs = {i: names[i] for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)}
        for name in convs.values():
            if not LAYER_NAME.fullmatch(name):
                raise ValueError(f"layer name {name!r} is not usable as a folder name")
        return Target(modules, convs, input_space or "unit", type(model).__name__)
    raise TypeError(
        f"feature visualisation needs a VGG16 or an nn.Sequential CNN, got {type(model).__name__}"
    )


def _conv_paths(model: VGG16) -> list[tuple[str, tuple[str, int]]]:
    return [(name, where) for name, where in model.keras_layers.items() if "_conv" in name]


def _flatten(sequence: nn.Sequential, prefix: str = "") -> tuple[list[nn.Module], list[str]]:
    """The modules of a Sequential in running order, nested Sequentials expanded, with their
    ``named_modules`` paths."""
    modules, names = [], []
    for name, module in sequence.named_children():
        path = f"{prefix}{name}"
        if isinstance(module, nn.Sequential):
            inner, inner_names = _flatten(module, f"{path}.")
            modules += inner
            names += inner_names
        else:
            modules.append(module)
            names.append(path)
    return modules, names
