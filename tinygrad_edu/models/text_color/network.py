r"""The worked example's network on the engine: ``Linear`` + ``Sigmoid`` pairs.

The document writes layer :math:`k` as one matrix :math:`W^k` of shape ``(out, in + 1)`` whose last
column is the bias, acting on the previous activations with a 1 appended:
:math:`a^k = \sigma(W^k [a^{k-1}; 1])`. ``nn.Linear`` keeps the same numbers as ``weight`` (the
first ``in`` columns) and ``bias`` (the last column); :func:`to_augmented` and
:func:`from_augmented` convert between the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ... import nn
from ...autograd import grad
from ...tensor import Tensor

DOCUMENT_SIZES = (3, 5, 2, 1)
DOCUMENT_INIT_STD = 0.15


def build_mlp(
    sizes: Sequence[int] = DOCUMENT_SIZES,
    rng: np.random.Generator | int | None = None,
    std: float = DOCUMENT_INIT_STD,
    dtype: type = np.float64,
) -> nn.Sequential:
    r"""``Sequential(Linear, Sigmoid, Linear, Sigmoid, ...)`` with the given layer sizes.

    Every entry of every augmented matrix (weights *and* biases) is drawn from
    :math:`N(0, \mathrm{std}^2)`, the document's initialisation (std 0.15).
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"build_mlp needs at least two positive layer sizes, got {sizes}")
    generator = np.random.default_rng(rng)
    matrices = [
        generator.normal(0.0, std, size=(out, inp + 1)) for inp, out in itertools.pairwise(sizes)
    ]
    return from_augmented([m.astype(dtype) for m in matrices])


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    layers = [m for _, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear layers")
    return layers


def to_augmented(model: nn.Module) -> list[np.ndarray]:
    """The document's matrices ``W^k = [weight | bias]`` of shape ``(out, in + 1)``, in order."""
    matrices = []
    for layer in linear_layers(model):
        bias = np.zeros(layer.out_features) if layer.bias is None else layer.bias.data
        matrices.append(np.concatenate([layer.weight.data, bias[:, None]], axis=1))
    return matrices


def from_augmented(matrices: Sequence[np.ndarray]) -> nn.Sequential:
    """A ``Linear`` + ``Sigmoid`` network holding copies of the document's matrices."""
    matrices = [np.asarray(m) for m in matrices]
    if not matrices:
        raise ValueError("from_augmented needs at least one matrix")
    modules: list[nn.Module] = []
    for k, matrix in enumerate(matrices):
        if matrix.ndim != 2 or matrix.shape[1] < 2:
            raise ValueError(f"W^{k + 1} must have shape (out, in + 1), got {matrix.shape}")
        if k and matrix.shape[1] != matrices[k - 1].shape[0] + 1:
            raise ValueError(
                f"W^{k + 1} has shape {matrix.shape}, so it expects {matrix.shape[1] - 1} inputs, "
                f"but W^{k} (shape {matrices[k - 1].shape}) produces {matrices[k - 1].shape[0]}"
            )
        dtype = matrix.dtype if matrix.dtype.kind == "f" else np.float64
        layer = nn.Linear(matrix.shape[1] - 1, matrix.shape[0], dtype=dtype)
        layer.weight.data[...] = matrix[:, :-1]
        layer.bias.data[...] = matrix[:, -1]
        layer.weight._bump_version()
        layer.bias._bump_version()
        modules += [layer, nn.Sigmoid()]
    return nn.Sequential(*modules)


def model_from_state_dict(state_dict: dict[str, np.ndarray]) -> nn.Sequential:
    """Rebuild a :func:`build_mlp` network from its state dict (layer sizes read off the shapes).

    Raises ``nn.StateDictError`` naming the entry when a key is not ``'<n>.weight'`` /
    ``'<n>.bias'``, a value is not a floating-point array, or a weight is not 2-D.
    """
    weights = []
    for key, value in state_dict.items():
        index, _, kind = key.partition(".")
        if not (index.isascii() and index.isdigit() and kind in ("weight", "bias")):
            raise nn.StateDictError(f"unexpected entry {key!r}: expected '<n>.weight', '<n>.bias'")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            found = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise nn.StateDictError(f"entry {key!r} is not a floating-point array ({found})")
        if kind == "weight":
            if value.ndim != 2 or 0 in value.shape:
                raise nn.StateDictError(
                    f"entry {key!r} must be a non-empty 2-D (out, in) matrix, got {value.shape}"
                )
            weights.append((int(index), value))
    if not weights:
        raise nn.StateDictError(
            f"no '<n>.weight' keys in the checkpoint (keys: {list(state_dict)})"
        )
    weights.sort(key=lambda item: item[0])
    sizes = [weights[0][1].shape[1]] + [w.shape[0] for _, w in weights]
    model = build_mlp(sizes, dtype=weights[0][1].dtype.type)
    model.load_state_dict(state_dict)
    return model


def error(output: Tensor, target: np.ndarray) -> Tensor:
    r"""The document's error :math:`E = \frac12 \sum (o - t)^2`, summed over outputs and batch."""
    return 0.5 * nn.functional.mse_loss(output, target, reduction="sum")


def forward_with_preactivations(model: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Run ``model`` keeping each ``Linear`` output (the pre-activations :math:`z^k`)."""
    preactivations = []
    for module in model.children() if isinstance(model, nn.Sequential) else [model]:
        x = module(x)
        if isinstance(module, nn.Linear):
            preactivations.append(x)
    return x, preactivations


def engine_deltas(model: nn.Module, X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    r"""The engine's :math:`\delta^k = \partial E / \partial z^k`, output layer first.

    Each has shape ``(layer_size, batch)``, like :func:`handderived.deltas`.

    These are what the document calls the deltas; here they come from ``tinygrad_edu.grad`` on the
    pre-activation tensors, not from any formula.
    """
    dtype = linear_layers(model)[0].weight.dtype
    output, zs = forward_with_preactivations(model, Tensor(np.asarray(X, dtype=dtype)))
    gradients = grad(error(output, np.asarray(Y, dtype=dtype)), zs)
    return [g.data.T for g in reversed(gradients)]
