"""VGG16 on the engine, with pretrained weights from Keras, PyTorch, safetensors or npz files.

The network is torchvision's layout -- ``features`` (13 convolutions, each followed by a ReLU,
and 5 max pools) and an optional ``classifier`` (fc1, fc2, predictions) -- so PyTorch state dicts
load by name. Every feature module also answers to its Keras name (``block1_conv1`` ...
``block5_pool``).

=================  =====================  ==========================================
Keras name         torchvision module     output returned by ``model(x, until=...)``
=================  =====================  ==========================================
``blockB_convC``   ``features.N`` (conv)  after the conv's ReLU (Keras fuses it)
``blockB_pool``    ``features.N`` (pool)  the pooled map
``features.N``     any feature module     that module's output (a conv: before ReLU)
``fc1``, ``fc2``   ``classifier.0/3``     after ReLU
``predictions``    ``classifier.6``       logits (apply ``softmax`` for probabilities)
=================  =====================  ==========================================

Input space: each weights file expects its own preprocessing. Keras files: BGR channels,
0..255 minus the ImageNet mean pixel. torchvision files: RGB, /255, minus mean, divided by std.
:meth:`VGG16.preprocess` and :meth:`VGG16.deprocess` convert uint8 RGB images into and out of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import nn
from ..graph import ShapeError
from ..io.download import KNOWN, fetch
from ..io.errors import WeightsError
from ..io.weights import read_weights
from ..nn.layers import run_in_order
from ..nn.module import load_into
from ..tensor import Tensor

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)

#: (block, convolutions, channels) of VGG16's feature stack
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
CLASSIFIER = (("fc1", 0, 25088, 4096), ("fc2", 3, 4096, 4096), ("predictions", 6, 4096, 1000))

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
TORCH_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TORCH_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SPACES = ("caffe", "torch")


def to_input_space(pixels: ArrayOrTensor, input_space: str) -> ArrayOrTensor:
    """RGB pixels on 0..255, channels last ``(..., 3)`` -> the network's input values.

    ``caffe`` (Keras's VGG16): BGR order minus the ImageNet mean pixel, no scaling.
    ``torch`` (torchvision's): RGB scaled to 0..1, minus the mean, divided by the std.
    Works on arrays and on Tensors alike (then it is differentiable).
    """
    if input_space == "caffe":
        return pixels[..., ::-1] - CAFFE_MEAN_BGR
    return (pixels / 255.0 - TORCH_MEAN_RGB) / TORCH_STD_RGB


def from_input_space(values: ArrayOrTensor, input_space: str) -> ArrayOrTensor:
    """The inverse of :func:`to_input_space`: channels-last input values -> RGB on 0..255."""
    if input_space == "caffe":
        return (values + CAFFE_MEAN_BGR)[..., ::-1]
    return (values * TORCH_STD_RGB + TORCH_MEAN_RGB) * 255.0


def _feature_layout() -> list[tuple[str, str, int, int]]:
    """(keras_name, kind, in_channels, out_channels) for the 18 conv and pool layers in order."""
    layout, channels = [], 3
    for block, convs, width in BLOCKS:
        for c in range(1, convs + 1):
            layout.append((f"block{block}_conv{c}", "conv", channels, width))
            channels = width
        layout.append((f"block{block}_pool", "pool", channels, channels))
    return layout


class _InferenceDropout(nn.Module):
    """torchvision's Dropout slots in the classifier: the identity at inference. Kept so that the
    module indices -- and so the state-dict names -- match torchvision's."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class VGG16(nn.Module):
    """VGG16: ``features`` (torchvision indices), optional ``classifier``; see the module doc.

    ``rng`` seeds the random initialisation; ``initialise=False`` leaves zeros for weights that
    are about to be loaded (initialising 138M parameters only to overwrite them takes seconds).
    """

    def __init__(
        self,
        include_top: bool = False,
        input_space: str = "caffe",
        rng=None,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        if input_space not in INPUT_SPACES:
            raise ValueError(f"input_space must be 'caffe' or 'torch', got {input_space!r}")
        self.input_space = input_space
        generator = np.random.default_rng(rng)
        modules: list[nn.Module] = []
        #: Keras layer name -> (module path of its weights, index of the module whose output it is)
        self.keras_layers: dict[str, tuple[str, int]] = {}
        for name, kind, c_in, c_out in _feature_layout():
            if kind == "conv":
                conv = nn.Conv2d(c_in, c_out, 3, padding=1, rng=generator, initialise=initialise)
                modules += [conv, nn.ReLU()]
                self.keras_layers[name] = (f"features.{len(modules) - 2}", len(modules) - 1)
            else:
                modules.append(nn.MaxPool2d(2))
                self.keras_layers[name] = (f"features.{len(modules) - 1}", len(modules) - 1)
        self.features = nn.Sequential(*modules)
        self.classifier = None
        if include_top:
            options = {"rng": generator, "initialise": initialise}
            self.classifier = nn.Sequential(
                nn.Linear(25088, 4096, **options),
                nn.ReLU(),
                _InferenceDropout(),
                nn.Linear(4096, 4096, **options),
                nn.ReLU(),
                _InferenceDropout(),
                nn.Linear(4096, 1000, **options),
            )

    # ------------------------------------------------------------------ names
    @property
    def layer_names(self) -> list[str]:
        """The Keras layer names in order (``block1_conv1`` ... ``block5_pool`` [, fc1, ...])."""
        names = list(self.keras_layers)
        if self.classifier is not None:
            names += [name for name, *_ in CLASSIFIER]
        return names

    @property
    def conv_layer_names(self) -> list[str]:
        return [n for n in self.keras_layers if "_conv" in n]

    def conv_index(self, layer: str) -> int:
        """The position in ``features`` of the convolution of Keras layer ``layer``."""
        if layer not in self.conv_layer_names:
            raise ValueError(
                f"{layer!r} is not a convolution layer of VGG16; choose one of "
                f"{', '.join(self.conv_layer_names)}"
            )
        return int(self.keras_layers[layer][0].split(".")[1])

    def _stop(self, until: str | None) -> tuple[int, int | None]:
        """(last feature module to run, last classifier module to run or None)."""
        last_feature = len(self.features) - 1
        if until is None:
            return last_feature, (len(self.classifier) - 1 if self.classifier is not None else None)
        if until in self.keras_layers:
            return self.keras_layers[until][1], None
        index = until[len("features.") :]
        if until.startswith("features.") and index.isdigit() and int(index) <= last_feature:
            return int(index), None
        stages = {name: i + (0 if name == "predictions" else 1) for name, i, *_ in CLASSIFIER}
        if self.classifier is not None and until in stages:
            return last_feature, stages[until]  # fc1/fc2: after their ReLU
        raise ValueError(
            f"unknown VGG16 layer {until!r}; valid names: {', '.join(self.layer_names)}, "
            f"or features.0 ... features.{last_feature}"
        )

    # ------------------------------------------------------------------ running
    def forward(self, x: Tensor, until: str | None = None) -> Tensor:
        """Run NCHW ``x`` (in the weights' input space) up to and including layer ``until``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ShapeError(f"VGG16 expects images of shape (N, 3, H, W), got {x.shape}")
        last_feature, last_classifier = self._stop(until)
        x = run_in_order(list(self.features)[: last_feature + 1], x)
        if last_classifier is None:
            return x
        if x.shape[2:] != (7, 7):
            raise ShapeError(
                f"the classifier needs 7x7 feature maps (224x224 images); these are {x.shape[2:]}"
            )
        x = x.reshape(x.shape[0], -1)  # torchvision's (c, h, w) order
        for module in list(self.classifier)[: last_classifier + 1]:
            x = module(x)
        return x

    def __call__(self, x: Tensor, until: str | None = None) -> Tensor:
        return self.forward(x, until)

    # ------------------------------------------------------------------ input space
    def preprocess(self, images: np.ndarray) -> Tensor:
        """uint8 (or 0..255 float) RGB images ``(N, H, W, 3)`` -> NCHW float32 input."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ShapeError(f"preprocess expects RGB images (N, H, W, 3), got {images.shape}")
        x = to_input_space(images, self.input_space)
        return Tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))

    def deprocess(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Inverse of :meth:`preprocess`: NCHW input -> float RGB ``(N, H, W, 3)`` on 0..255."""
        data = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        return from_input_space(data.transpose(0, 2, 3, 1), self.input_space)

    # ------------------------------------------------------------------ weights
    def load_weights(
        self, arrays: Mapping[str, np.ndarray], kind: str, path: str = "weights"
    ) -> None:
        """Load a flat dict from :func:`~tinygrad_edu.io.weights.read_weights` by format.

        Every parameter must be present with its exact shape; otherwise :class:`WeightsError`
        names the file, the layer and both shapes, and nothing is modified.
        """
        state = self._keras_state(arrays, path) if kind == "keras_h5" else dict(arrays)
        expected = dict(self.named_parameters())
        for key, parameter in expected.items():
            if key not in state:
                raise WeightsError(
                    f"{path}: no weights for {self._describe(key)}; the file has "
                    f"{_summarise_keys(arrays)}"
                )
            if state[key].shape != parameter.shape:
                raise WeightsError(
                    f"{path}: {self._describe(key)} has shape {state[key].shape} in the file but "
                    f"VGG16 expects {parameter.shape} (not VGG16 weights, or another architecture)"
                )
            if np.asarray(state[key]).dtype.kind not in "biuf":
                raise WeightsError(
                    f"{path}: {self._describe(key)} holds {np.asarray(state[key]).dtype} data, "
                    "not numbers"
                )
        for key, parameter in expected.items():
            load_into(parameter, state[key])

    def _describe(self, key: str) -> str:
        """``features.5.weight`` -> ``layer block2_conv1 (features.5.weight)``."""
        module = key.rpartition(".")[0]
        names = {path: name for name, (path, _) in self.keras_layers.items()}
        names.update({f"classifier.{i}": name for name, i, *_ in CLASSIFIER})
        return f"layer {names.get(module, module)} ({key})"

    def _keras_state(self, arrays: Mapping[str, np.ndarray], path: str) -> dict[str, np.ndarray]:
        """Keras ``layer/i`` arrays -> torchvision parameter names and layouts."""
        state = {}
        layers = {
            name: module for name, (module, _) in self.keras_layers.items() if "_conv" in name
        }
        layers.update({name: f"classifier.{i}" for name, i, *_ in CLASSIFIER})
        for name, module in layers.items():
            kernel, bias = arrays.get(f"{name}/0"), arrays.get(f"{name}/1")
            if kernel is None:
                continue
            if name in ("fc1", "fc2", "predictions"):
                kernel = kernel.T  # Dense (in, out) -> Linear (out, in)
                if name == "fc1" and kernel.shape == (4096, 25088):  # Keras flattens (h, w, c)
                    kernel = kernel.reshape(4096, 7, 7, 512).transpose(0, 3, 1, 2).reshape(4096, -1)
            elif kernel.ndim == 4:
                kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            else:
                raise WeightsError(f"{path}: layer {name} has a kernel of shape {kernel.shape}")
            state[f"{module}.weight"] = kernel
            if bias is not None:
                state[f"{module}.bias"] = bias
        return state


def _summarise_keys(arrays: Mapping[str, np.ndarray]) -> str:
    keys = list(arrays)
    shown = ", ".join(keys[:6])
    return f"{len(keys)} arrays: {shown}{', ...' if len(keys) > 6 else ''}"


def _resolve(weights: str | os.PathLike) -> Path:
    if isinstance(weights, str) and weights in KNOWN:
        return fetch(KNOWN[weights])
    return Path(weights)


def vgg16(weights: str | os.PathLike | None = None, rng=None) -> VGG16:
    """VGG16, randomly initialised (``weights=None``) or loaded from a file.

    ``weights`` is a path to a Keras HDF5 file (legacy or Keras 3), a PyTorch ``.pth`` state
    dict (zip or legacy layout, read without PyTorch), a ``.safetensors`` or an ``.npz`` file --
    the format is detected from the content -- or ``"keras"`` / ``"torchvision"`` to download the
    canonical file into the cache. The classifier is built when the file carries it. Loaded
    weights track no gradient (``requires_grad=False``); call ``requires_grad_(True)`` to
    fine-tune, or :meth:`~tinygrad_edu.nn.Module.freeze` to make them constant.
    """
    if weights is None:
        return VGG16(include_top=False, rng=rng)
    path = _resolve(weights)
    kind, arrays = read_weights(path)
    keras = kind == "keras_h5"
    has_top = ("fc1/0" in arrays) if keras else ("classifier.0.weight" in arrays)
    space = "caffe" if keras else "torch"
    model = VGG16(include_top=has_top, input_space=space, initialise=False)
    model.load_weights(arrays, kind, str(path))
    model.requires_grad_(False)
    return model
