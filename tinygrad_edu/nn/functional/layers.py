r"""Layer functions: the stateless maths behind the layers of :mod:`tinygrad_edu.nn`.

Each validates its arguments (naming the shapes that do not fit) and is either one op of
:mod:`tinygrad_edu.ops` or a **composition** of differentiable ops, so every gradient -- of any
order -- comes from the op table:

* ``conv1d`` = ``conv2d`` of a height-1 image (the length axis as the width);
* convolution with ``groups`` = one convolution per channel group, joined by ``concatenate``;
  ``dilation`` = the kernel spread out with zeros (a ``scatter_add`` into a larger zero kernel);
  unequal padding = :func:`pad` first; unequal strides = stride 1, then strided slicing;
* ``conv_transpose2d`` = the input gradient of a convolution (``ops.conv.Conv2dInputGrad``);
* ``pad`` = concatenation with constants, or indexing with computed index arrays
  (reflect, replicate, circular);
* average pooling and bilinear resizing = two small matrices applied with ``matmul``, one per
  spatial axis (:math:`Y = A_h X A_w^T`); nearest resizing = indexing;
* ``batch_norm``, ``layer_norm`` and ``rms_norm`` = means and squares; ``group_norm`` =
  ``layer_norm`` of the channels regrouped; ``instance_norm`` = ``group_norm`` with one channel
  per group; ``dropout`` = a random mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import ops
from ...func import side_effect
from ...graph import ShapeError
from ...ops.common import constant
from ...tensor import Tensor, where

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "conv2d_relu",
    "conv_transpose2d",
    "dropout",
    "embedding",
    "group_norm",
    "instance_norm",
    "interpolate",
    "layer_norm",
    "linear",
    "max_pool2d",
    "pad",
    "rms_norm",
]

Pair = int | tuple[int, int]
RNG = np.random.Generator | int | None


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""y = x W^T + b, with ``W`` of shape ``(out, in)`` and ``x`` of shape ``(..., in)``."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ShapeError(
            f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
            f"the weight expects {weight.shape[1]} (weight shape {weight.shape})"
        )
    if bias is None:
        return ops.linalg.Linear.apply(x, weight)
    return ops.linalg.Linear.apply(x, weight, bias)


# ----------------------------------------------------------------------------- helpers
def _pair(value: Pair | Sequence[int], name: str, op: str, minimum: int = 0) -> tuple[int, int]:
    """``(v, v)`` for an int, the pair itself for a 2-sequence; checks ``>= minimum``."""
    if isinstance(value, (int, np.integer)):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_conv_padding(padding: Pair | str, stride: tuple[int, int], op: str) -> None:
    """``padding`` is ``"valid"``, ``"same"`` (stride 1 only, as in PyTorch) or ints >= 0."""
    if not isinstance(padding, str):
        _pair(padding, "padding", op)
    elif padding not in ("valid", "same"):
        raise ValueError(f"{op}: padding string must be 'valid' or 'same', not {padding!r}")
    elif padding == "same" and stride != (1, 1):
        raise ValueError(
            f"{op}: padding='same' is not supported for strided convolutions ('same' needs "
            f"stride 1, got {stride})"
        )


def check_conv_transpose_settings(
    stride: Pair, padding: Pair, output_padding: Pair, dilation: Pair, op: str
) -> tuple[tuple[int, int], ...]:
    """``(stride, padding, output_padding, dilation)`` as pairs, each in range: strides and
    dilations >= 1, paddings >= 0, ``output_padding`` below the stride or the dilation."""
    stride, padding = _pair(stride, "stride", op, 1), _pair(padding, "padding", op)
    dilation = _pair(dilation, "dilation", op, 1)
    extra = _pair(output_padding, "output_padding", op)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding {extra} must be smaller than the stride {stride} or the "
            f"dilation {dilation}"
        )
    return stride, padding, extra, dilation


def _need_nchw(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{op}: needs input (N, C, H, W), got shape {x.shape}")


def _check_conv_operands(
    op: str,
    x: Tensor,
    weight: Tensor,
    groups: Any,
    weight_axes: str,
    channels: str,
    rank: int = 4,
) -> None:
    """Input and weight of ``rank`` axes (4: images, 3: sequences; ``weight_axes`` names the
    weight's), and ``groups`` dividing the weight's first axis (its ``channels`` channels)."""
    if x.ndim != rank or weight.ndim != rank:
        input_axes = "(N, C, H, W)" if rank == 4 else "(N, C, L)"
        raise ShapeError(
            f"{op}: needs input {input_axes} and weight {weight_axes}, got {x.shape} and "
            f"{weight.shape}"
        )
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(
            f"{op}: groups must be a positive int dividing the {weight.shape[0]} {channels} "
            f"channels (weight shape {weight.shape}), got {groups!r}"
        )


def _dilate_kernel(weight: Tensor, dilation: tuple[int, int]) -> Tensor:
    """The kernel with ``d - 1`` zeros between taps: what a dilated convolution really applies."""
    if dilation == (1, 1):
        return weight
    dh, dw = dilation
    o, c, kh, kw = weight.shape
    shape = (o, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1)
    index = (slice(None), slice(None), slice(None, None, dh), slice(None, None, dw))
    return ops.shape.ScatterAdd.apply(weight, shape=shape, index=index)


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, ...]:
    """PyTorch's ``padding="same"``: total ``d (k - 1)``, the odd pixel on the right/bottom."""
    total_h, total_w = (d * (k - 1) for k, d in zip(kernel, dilation))
    return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)


# ----------------------------------------------------------------------------- convolution
def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Pair = 1,
    padding: Pair | str = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> Tensor:
    r"""2-D cross-correlation of NCHW ``x`` with ``weight`` of shape ``(out, in / groups, kh, kw)``.

    :math:`y_{n,k,i,j} = b_k + \sum_{c,a,b} x_{n,c,\,i s + a d - p,\,j s + b d - p}\; w_{k,c,a,b}`
    with zero padding ``p``, stride ``s`` and dilation ``d`` (each an int or an ``(h, w)`` pair),
    and output size :math:`\lfloor (H + 2p - d (k - 1) - 1) / s \rfloor + 1`. ``padding`` may
    also be ``"valid"`` (0) or ``"same"`` (stride 1; output size = input size). With ``groups``
    = g the channels split into g independent convolutions (g = C: depthwise).
    """
    return _convolve(x, weight, bias, stride, padding, dilation, groups, relu=False)


def _single(value: int | Sequence[int], name: str, op: str, minimum: int = 0) -> int:
    """The int itself, or the one entry of a 1-sequence; checks it is an int ``>= minimum``."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple of ints, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> Tensor:
    r"""1-D cross-correlation of ``(N, C, L)`` ``x`` with ``weight`` of shape
    ``(out, in / groups, k)``.

    :math:`y_{n,o,i} = b_o + \sum_{c,a} x_{n,c,\,i s + a d - p}\; w_{o,c,a}`, output length
    :math:`\lfloor (L + 2p - d (k - 1) - 1) / s \rfloor + 1`; ``padding`` may also be
    ``"valid"`` or ``"same"`` (stride 1). Computed as :func:`conv2d` of the height-1 image
    ``(N, C, 1, L)`` with the kernel ``(out, in / groups, 1, k)``, so its gradients are
    :func:`conv2d`'s.
    """
    _check_conv_operands("conv1d", x, weight, groups, "(out, in / groups, k)", "output", rank=3)
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"conv1d: input has {x.shape[1]} channels (shape {x.shape}) but the weight expects "
            f"{weight.shape[1] * groups} (weight shape {weight.shape}, groups={groups})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv1d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    stride = _single(stride, "stride", "conv1d", 1)
    dilation = _single(dilation, "dilation", "conv1d", 1)
    if isinstance(padding, str):
        check_conv_padding(padding, (stride, stride), "conv1d")
    else:
        padding = _single(padding, "padding", "conv1d")
    if not isinstance(padding, str):
        reach, padded = dilation * (weight.shape[2] - 1) + 1, x.shape[2] + 2 * padding
        if padded < reach:
            raise ShapeError(
                f"conv1d: kernel {weight.shape[2]} (dilation {dilation}) reaches {reach} values, "
                f"more than the padded input length {padded} (input shape {x.shape})"
            )
    image = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    kernel = weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    padding2d = padding if isinstance(padding, str) else (0, padding)
    y = conv2d(image, kernel, bias, (1, stride), padding2d, (1, dilation), groups)
    return y.reshape(y.shape[0], y.shape[1], y.shape[3])


def conv2d_relu(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Pair = 1,  # one fused op when the strides are equal,
    padding: Pair | str = 0,  # the padding symmetric,
    dilation: Pair = 1,  # no dilation
    groups: int = 1,  # and no groups (else conv2d, then relu)
) -> Tensor:
    """``relu(conv2d(x, weight, bias, ...))``, the maths of the two, computed as one fused op
    (:class:`~tinygrad_edu.ops.conv.Conv2dReLU`: fewer passes over memory, no mask array) where
    the convolution is a plain one (equal strides, symmetric padding, no dilation or groups)."""
    return _convolve(x, weight, bias, stride, padding, dilation, groups, relu=True)


def _convolve(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair | str,
    dilation: Pair,
    groups: int,
    relu: bool,
) -> Tensor:
    """:func:`conv2d`, followed by a ReLU when ``relu`` (fused into one op where it can be)."""
    stride = _pair(stride, "stride", "conv2d", 1)
    dilation = _pair(dilation, "dilation", "conv2d", 1)
    _check_conv_operands("conv2d", x, weight, groups, "(K, C, kh, kw)", "output")
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but the weight expects "
            f"{weight.shape[1] * groups} (weight shape {weight.shape}, groups={groups})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv2d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if isinstance(padding, str):
        check_conv_padding(padding, stride, "conv2d")
        sides = (0,) * 4 if padding == "valid" else _same_padding(weight.shape[2:], dilation)
        if sides[0] != sides[1] or sides[2] != sides[3]:
            x, padding = pad(x, sides), (0, 0)
        else:
            padding = (sides[2], sides[0])
    padding = _pair(padding, "padding", "conv2d")
    kernel = _dilate_kernel(weight, dilation)
    padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], padding))
    if any(n < k for n, k in zip(padded, kernel.shape[2:])):
        raise ShapeError(
            f"conv2d: kernel {tuple(kernel.shape[2:])} (dilation {dilation}) is larger than the "
            f"padded input {padded} (input shape {x.shape})"
        )
    if groups > 1:
        xs, ks = x.shape[1] // groups, weight.shape[0] // groups
        parts = [
            conv2d(
                x[:, g * xs : (g + 1) * xs],
                weight[g * ks : (g + 1) * ks],
                None if bias is None else bias[g * ks : (g + 1) * ks],
                stride,
                padding,
                dilation,
            )
            for g in range(groups)
        ]
        joined = Tensor.concatenate(parts, axis=1)
        return joined.relu() if relu else joined
    if padding[0] != padding[1]:
        x, padding = pad(x, (padding[1], padding[1], padding[0], padding[0])), (0, 0)
    inputs = (x, kernel) if bias is None else (x, kernel, bias)
    if stride[0] == stride[1]:
        op = ops.conv.Conv2dReLU if relu else ops.conv.Conv2d
        return op.apply(*inputs, stride=stride[0], padding=padding[0])
    y = ops.conv.Conv2d.apply(*inputs, stride=1, padding=padding[0])  # then keep every s-th pixel
    y = y[:, :, :: stride[0], :: stride[1]]
    return y.relu() if relu else y


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> Tensor:
    r"""Transposed convolution of NCHW ``x``; ``weight`` has shape ``(in, out / groups, kh, kw)``.

    It is exactly the input gradient of :func:`conv2d` with the same weight, stride, padding and
    dilation, so it maps a conv's output size back to its input size:
    :math:`H_{out} = (H - 1) s - 2p + d (k - 1) + \mathrm{output\_padding} + 1`. ``output_padding``
    (smaller than the stride or the dilation) picks among the input sizes a strided conv maps to
    the same output size.
    """
    op = "conv_transpose2d"
    stride, padding, extra, dilation = check_conv_transpose_settings(
        stride, padding, output_padding, dilation, op
    )
    _check_conv_operands(op, x, weight, groups, "(C, K, kh, kw)", "input")
    if x.shape[1] != weight.shape[0]:
        raise ShapeError(
            f"{op}: input has {x.shape[1]} channels (shape {x.shape}) but the weight expects "
            f"{weight.shape[0]} (weight shape {weight.shape})"
        )
    out_channels = weight.shape[1] * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
    if groups > 1:
        xs, ks = x.shape[1] // groups, weight.shape[1]
        parts = [
            conv_transpose2d(
                x[:, g * xs : (g + 1) * xs],
                weight[g * xs : (g + 1) * xs],
                None if bias is None else bias[g * ks : (g + 1) * ks],
                stride,
                padding,
                extra,
                dilation=dilation,
            )
            for g in range(groups)
        ]
        return Tensor.concatenate(parts, axis=1)
    kernel = _dilate_kernel(weight, dilation)
    full = [(n - 1) * s + k for n, s, k in zip(x.shape[2:], stride, kernel.shape[2:])]
    out_hw = tuple(f - 2 * p + e for f, p, e in zip(full, padding, extra))
    if min(out_hw) < 1:
        raise ShapeError(f"{op}: padding {padding} leaves no output for input shape {x.shape}")
    uniform = stride[0] == stride[1] and padding[0] == padding[1]
    if uniform and all(e < s for e, s in zip(extra, stride)):  # the conv input gradient itself
        y = ops.conv.Conv2dInputGrad.apply(
            x, kernel, input_hw=out_hw, stride=stride[0], padding=padding[0]
        )
    else:  # spread x out with zeros, transpose at stride 1, add output_padding's zeros, crop
        if stride != (1, 1):
            spread = tuple((n - 1) * s + 1 for n, s in zip(x.shape[2:], stride))
            index = (
                slice(None),
                slice(None),
                slice(None, None, stride[0]),
                slice(None, None, stride[1]),
            )
            x = ops.shape.ScatterAdd.apply(x, shape=(*x.shape[:2], *spread), index=index)
        y = ops.conv.Conv2dInputGrad.apply(x, kernel, input_hw=tuple(full), stride=1, padding=0)
        y = pad(y, (0, extra[1], 0, extra[0]))
        (ph, pw), (oh, ow) = padding, out_hw
        y = y[:, :, ph : ph + oh, pw : pw + ow]
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------- padding
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` axes; ``pad`` lists (before, after) from the LAST axis back.

    As in PyTorch, ``pad(x, (1, 2))`` adds 1 column on the left and 2 on the right of the last
    axis, ``pad(x, (l, r, t, b))`` pads width then height. ``mode``:

    * ``"constant"`` -- ``value`` (negative amounts crop);
    * ``"reflect"`` -- mirror without repeating the edge (``[1 2 3]`` -> ``3 2 | 1 2 3 | 2 1``),
      amounts smaller than the axis;
    * ``"replicate"`` -- repeat the edge value;
    * ``"circular"`` -- wrap around (amounts at most the axis size).
    """
    amounts = [int(p) for p in pad]
    if len(amounts) % 2 or len(amounts) // 2 > x.ndim:
        raise ValueError(
            f"pad: needs an even number of amounts, at most 2 per axis, got {tuple(pad)} for "
            f"shape {x.shape}"
        )
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    for i in range(len(amounts) // 2):
        axis = x.ndim - 1 - i
        before, after = amounts[2 * i], amounts[2 * i + 1]
        if before or after:
            x = _pad_axis(x, axis, before, after, mode, value)
    return x


def _pad_axis(x: Tensor, axis: int, before: int, after: int, mode: str, value: float) -> Tensor:
    n = x.shape[axis]
    lead = (slice(None),) * axis
    if mode == "constant":
        x = x[(*lead, slice(max(-before, 0), n - max(-after, 0)))]  # negative amounts crop

        def block(amount: int) -> Tensor:
            shape = (*x.shape[:axis], amount, *x.shape[axis + 1 :])
            return constant(np.full(shape, value, dtype=x.dtype))

        parts = [*([block(before)] if before > 0 else []), x]
        parts += [block(after)] if after > 0 else []
        return Tensor.concatenate(parts, axis=axis) if len(parts) > 1 else x
    if min(before, after) < 0:
        raise ValueError(f"pad: mode {mode!r} needs non-negative amounts, got {before}, {after}")
    limit = n - 1 if mode == "reflect" else n
    if mode != "replicate" and max(before, after) > limit:
        raise ShapeError(
            f"pad: {mode} padding of ({before}, {after}) needs amounts of at most {limit} on an "
            f"axis of size {n} (shape {x.shape}, axis {axis})"
        )
    positions = np.arange(-before, n + after)
    if mode == "reflect":
        index = np.abs(positions)
        index = np.where(index > n - 1, 2 * (n - 1) - index, index)
    elif mode == "replicate":
        index = np.clip(positions, 0, n - 1)
    else:
        index = positions % n
    return x[(*lead, index)]


# ----------------------------------------------------------------------------- pooling
def _pool_geometry(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool, op: str
) -> int:
    """Output length along one axis, PyTorch's rule (a last window must start inside)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        raise ShapeError(
            f"{op}: window {kernel} (dilation {dilation}) does not fit the padded length "
            f"{size + 2 * padding} of an axis of size {size}"
        )
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pool_args(x, kernel_size, stride, padding, dilation, op):
    _need_nchw(x, op)
    return check_pool_settings(kernel_size, stride, padding, dilation, op)


def check_pool_settings(
    kernel_size: Pair, stride: Pair | None, padding: Pair, dilation: Pair, op: str
) -> tuple[tuple[int, int], ...]:
    """``(kernel, stride, padding, dilation)`` as pairs: kernel, stride (default: the kernel)
    and dilation >= 1, padding >= 0 and at most half the kernel."""
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op)
    dilation = _pair(dilation, "dilation", op, 1)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel {kernel}")
    return kernel, stride, padding, dilation


def max_pool2d(
    x: Tensor,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """Maximum over ``kernel_size`` windows of NCHW ``x``; ``stride`` defaults to the kernel.

    ``padding`` adds ``-inf`` borders (never chosen), ``ceil_mode`` keeps a last partial window
    (rounding the output size up, PyTorch's rule). The square, undilated case is one op; other
    settings take the maximum over the stacked window positions.
    """
    kernel, stride, padding, dilation = _pool_args(
        x, kernel_size, stride, padding, dilation, "max_pool2d"
    )
    out = [
        _pool_geometry(n, k, s, p, d, ceil_mode, f"max_pool2d (input {x.shape})")
        for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)
    ]
    needed = [(o - 1) * s + d * (k - 1) + 1 for o, s, k, d in zip(out, stride, kernel, dilation)]
    overhang = [max(need - n - p, 0) for need, n, p in zip(needed, x.shape[2:], padding)]
    sides = (padding[1], overhang[1], padding[0], overhang[0])
    if any(sides):
        x = pad(x, sides, value=-np.inf)
    if kernel[0] == kernel[1] and stride[0] == stride[1] and dilation == (1, 1):
        y = ops.conv.MaxPool2d.apply(x, kernel=kernel[0], stride=stride[0])
        return y if y.shape[2:] == tuple(out) else y[:, :, : out[0], : out[1]]
    return _windows(x, kernel, stride, dilation, out).max(axis=0)


def _windows(x, kernel, stride, dilation, out) -> Tensor:
    """Every window position as a strided slice, stacked on a new leading axis."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    views = [
        x[:, :, a * dh : a * dh + (oh - 1) * sh + 1 : sh, b * dw : b * dw + (ow - 1) * sw + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    return Tensor.stack(views, axis=0)


def _averaging_matrix(starts: np.ndarray, ends: np.ndarray, size: int, divisors, dtype) -> Tensor:
    """Rows that average ``x[start:end]`` (clipped to the axis) with the given divisors."""
    positions = np.arange(size)
    inside = (positions >= starts[:, None]) & (positions < ends[:, None])
    return constant((inside / np.asarray(divisors, dtype=float)[:, None]).astype(dtype))


def _separable(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    r""":math:`Y = A_h X A_w^T` on the last two axes of ``x``."""
    return (rows @ x) @ cols.T


def avg_pool2d(
    x: Tensor,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    r"""Mean over ``kernel_size`` windows of NCHW ``x`` (zero ``padding``, ``ceil_mode``).

    Averaging is separable: :math:`Y = A_h X A_w^T` with :math:`A` holding ``1/divisor`` on
    each window's positions. The divisor is the window size, clipped at the padded border; with
    ``count_include_pad=False`` only real input positions count (PyTorch's rules).
    """
    kernel, stride, padding, _ = _pool_args(x, kernel_size, stride, padding, 1, "avg_pool2d")
    matrices = []
    for n, k, s, p in zip(x.shape[2:], kernel, stride, padding):
        out = _pool_geometry(n, k, s, p, 1, ceil_mode, f"avg_pool2d (input {x.shape})")
        starts = np.arange(out) * s - p
        ends = np.minimum(starts + k, n + p)
        real = np.minimum(ends, n) - np.maximum(starts, 0)
        divisors = ends - starts if count_include_pad else real
        matrices.append(_averaging_matrix(starts, ends, n, divisors, x.dtype))
    return _separable(x, *matrices)


def adaptive_avg_pool2d(x: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    r"""Average NCHW ``x`` down (or up) to ``output_size``; output bin ``i`` of an axis of
    length ``n`` averages :math:`[\lfloor i n / m \rfloor, \lceil (i + 1) n / m \rceil)`.

    ``None`` in ``output_size`` keeps that axis's size. Applied as :math:`A_h X A_w^T`.
    """
    _need_nchw(x, "adaptive_avg_pool2d")
    sizes = check_output_size(output_size, "adaptive_avg_pool2d")
    matrices = []
    for n, m in zip(x.shape[2:], sizes):
        m = n if m is None else m
        i = np.arange(m)
        starts, ends = (i * n) // m, -((-(i + 1) * n) // m)
        matrices.append(_averaging_matrix(starts, ends, n, ends - starts, x.dtype))
    return _separable(x, *matrices)


def check_output_size(
    output_size: int | Sequence[int | None], op: str
) -> tuple[int | None, int | None]:
    """``output_size`` as a pair of ints >= 1 or ``None`` (keep that axis)."""
    if output_size is None or isinstance(output_size, (int, np.integer)):
        sizes = (output_size, output_size)
    else:
        sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else ()
    if len(sizes) != 2 or not all(m is None or (_is_int(m) and m >= 1) for m in sizes):
        raise ValueError(
            f"{op}: output_size must be an int >= 1 or a pair of them (or None), got "
            f"{output_size!r}"
        )
    return tuple(None if m is None else int(m) for m in sizes)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# ----------------------------------------------------------------------------- resizing
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear")


def interpolate(
    x: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    r"""Resize NCHW ``x`` to ``size`` or by ``scale_factor``, PyTorch's coordinate rules.

    Output pixel ``i`` reads source coordinate :math:`s_i`: with ``align_corners=True``
    :math:`s_i = i (n - 1) / (m - 1)` (corner pixels match), otherwise
    :math:`s_i = (i + \tfrac12) r - \tfrac12` with :math:`r = n / m`, or ``1 / scale_factor``
    when a factor is given. ``"nearest"`` takes :math:`\lfloor i r \rfloor` (``"nearest-exact"``:
    :math:`\lfloor (i + \tfrac12) r \rfloor`) by indexing; ``"bilinear"`` mixes the two
    neighbours of :math:`s_i` with weights :math:`1 - \lambda, \lambda`, as two interpolation
    matrices applied with ``matmul``.
    """
    _need_nchw(x, "interpolate")
    sizes, factors = check_resize_settings(size, scale_factor, mode, align_corners, "interpolate")
    in_hw = x.shape[2:]
    if sizes is not None:
        out_hw = sizes
        ratios = [n / m for n, m in zip(in_hw, out_hw)]
    else:
        out_hw = tuple(math.floor(n * f) for n, f in zip(in_hw, factors))
        ratios = [1.0 / f for f in factors]
    if len(out_hw) != 2 or min(out_hw) < 1:
        raise ValueError(f"interpolate: output size must be 2 positive ints, got {out_hw}")
    if mode == "bilinear":
        matrices = [
            _linear_matrix(n, m, r, bool(align_corners), x.dtype)
            for n, m, r in zip(in_hw, out_hw, ratios)
        ]
        return _separable(x, *matrices)
    offset = 0.5 if mode == "nearest-exact" else 0.0
    rows, cols = (
        np.minimum(np.floor((np.arange(m) + offset) * r).astype(int), n - 1)
        for n, m, r in zip(in_hw, out_hw, ratios)
    )
    return x[:, :, rows][:, :, :, cols]


def check_resize_settings(
    size: int | Sequence[int] | None,
    scale_factor: float | Sequence[float] | None,
    mode: str,
    align_corners: bool | None,
    op: str,
) -> tuple[tuple[int, int] | None, tuple[float, float] | None]:
    """``(size, scale_factor)`` as pairs (one of them ``None``) after checking the mode,
    ``align_corners`` (bilinear only), sizes (ints >= 1) and factors (finite, > 0)."""
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"{op}: mode must be one of {INTERPOLATE_MODES}, got {mode!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"{op}: align_corners only applies to mode='bilinear'")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        return _pair(size, "size", op, 1), None
    factors = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    real = (int, float, np.integer, np.floating)
    if len(factors) != 2 or not all(
        isinstance(f, real) and not isinstance(f, bool) and 0 < f < math.inf for f in factors
    ):
        raise ValueError(
            f"{op}: scale_factor must be a finite number > 0 or a pair of them, got "
            f"{scale_factor!r}"
        )
    return None, (float(factors[0]), float(factors[1]))


def _linear_matrix(n: int, m: int, ratio: float, align_corners: bool, dtype) -> Tensor:
    """The ``(m, n)`` matrix of linear interpolation from ``n`` samples to ``m``."""
    i = np.arange(m, dtype=float)
    if align_corners:
        source = i * ((n - 1) / (m - 1)) if m > 1 else np.zeros(m)
    else:
        source = np.maximum((i + 0.5) * ratio - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), n - 1)
    high = np.minimum(low + 1, n - 1)
    weight = source - low
    matrix = np.zeros((m, n))
    np.add.at(matrix, (np.arange(m), low), 1 - weight)
    np.add.at(matrix, (np.arange(m), high), weight)
    return constant(matrix.astype(dtype))


# ----------------------------------------------------------------------------- regularisation
def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: RNG = None) -> Tensor:
    r"""Zero each element with probability ``p`` and scale the rest by :math:`1 / (1 - p)`.

    The expected value is unchanged, so nothing needs rescaling at test time; with
    ``training=False`` (or ``p = 0``) ``x`` passes through. ``rng`` (a Generator or seed) draws
    the mask.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must lie in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    side_effect("dropout", "draws a new random mask on every call")
    keep = np.random.default_rng(rng).random(x.shape) >= p
    return x * constant((keep / (1.0 - p)).astype(x.dtype))


# ----------------------------------------------------------------------------- normalisation
def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise each channel (axis 1) of ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` ``x``.

    :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`. In training (or without
    running statistics) :math:`\mu, \sigma^2` are the batch's mean and biased variance over
    every axis but the channels, and the running statistics (updated in place) move towards the
    batch's: :math:`r \leftarrow (1 - m) r + m\,b`, with the *unbiased* variance, as PyTorch. In
    evaluation the running statistics are used.
    """
    if x.ndim not in (2, 3, 4):
        raise ShapeError(
            f"batch_norm: needs input (N, C), (N, C, L) or (N, C, H, W), got {x.shape}"
        )
    channels = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.shape != (channels,):
            raise ShapeError(
                f"batch_norm: {name} has shape {t.shape}, input {x.shape} has {channels} channels"
            )
    axes = (0, *range(2, x.ndim))
    shape = (1, channels) + (1,) * (x.ndim - 2)
    if training or running_mean is None or running_var is None:
        count = x.size // channels
        if training and count < 2:
            raise ValueError(
                f"batch_norm: training needs more than one value per channel, got input {x.shape}"
            )
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        if training and running_mean is not None and running_var is not None:
            side_effect("batch_norm", "updates its running statistics on every call in training")
            unbiased = var.data.reshape(channels) * (count / max(count - 1, 1))
            running_mean.data[...] = (
                1 - momentum
            ) * running_mean.data + momentum * mean.data.reshape(channels)
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
            running_mean._bump_version()
            running_var._bump_version()
    else:
        centred = x - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    y = centred / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise over the last axes (``normalized_shape``) of each sample:
    :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` (biased variance)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape) :] != shape or len(shape) > x.ndim:
        raise ShapeError(
            f"layer_norm: normalized_shape {shape} must be the trailing axes of the input shape "
            f"{x.shape}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ShapeError(f"layer_norm: {name} has shape {t.shape}, expected {shape}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    var = (centred * centred).mean(axis=axes, keepdims=True)
    y = centred / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _channel_affine(
    op: str, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> tuple[int, ...]:
    """Checks that ``weight`` and ``bias`` have one entry per channel (axis 1) and ``eps`` is a
    number; returns the shape that broadcasts a per-channel vector against ``x``."""
    channels = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ShapeError(
                f"{op}: {name} has shape {t.shape}, expected ({channels},) for input {x.shape}"
            )
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: eps must be a number, got {eps!r}")
    return (1, channels) + (1,) * (x.ndim - 2)


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise each sample's channels (axis 1 of ``(N, C, *)`` ``x``) in ``num_groups``
    groups of ``C / num_groups`` consecutive channels.

    :math:`y = \gamma_c (x - \mu_{n,g}) / \sqrt{\sigma^2_{n,g} + \epsilon} + \beta_c`, with
    the mean and biased variance over the group's channels and every spatial position: the
    input regrouped to ``(N, G, C / G \cdot \ldots)`` and passed through :func:`layer_norm`
    over its last axis, then scaled and shifted per channel.
    """
    if x.ndim < 2:
        raise ShapeError(f"group_norm: needs input (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"group_norm: num_groups must be an int, got {num_groups!r}")
    if num_groups < 1 or channels % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups} must be a positive divisor of the {channels} "
            f"channels of the input {x.shape}"
        )
    shape = _channel_affine("group_norm", x, weight, bias, eps)
    group_size = math.prod(x.shape[1:]) // num_groups
    grouped = x.reshape(x.shape[0], int(num_groups), group_size)
    y = layer_norm(grouped, group_size, eps=eps).reshape(x.shape)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def instance_norm(
    x: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise each channel of each sample of ``(N, C, *)`` ``x`` over its spatial positions.

    With ``use_input_stats`` this is :func:`group_norm` with one channel per group, and the
    running statistics, if given, move (in place) towards the samples' average statistics:
    :math:`r \leftarrow (1 - m) r + m\,\bar b`, the variance *unbiased*, as PyTorch. Without,
    it is :func:`batch_norm` in evaluation with the running statistics.
    """
    if x.ndim < 3:
        raise ShapeError(f"instance_norm: needs input (N, C, L, ...), got shape {x.shape}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(
                "instance_norm: use_input_stats=False needs running_mean and running_var"
            )
        _channel_affine("instance_norm", x, weight, bias, eps)
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    count = math.prod(x.shape[2:])
    if count < 2:
        raise ValueError(
            f"instance_norm: needs more than one spatial value per channel, got input {x.shape}"
        )
    y = group_norm(x, x.shape[1], weight, bias, eps)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.shape != (x.shape[1],):
            raise ShapeError(
                f"instance_norm: {name} has shape {t.shape}, input {x.shape} has "
                f"{x.shape[1]} channels"
            )
    if running_mean is not None and running_var is not None:
        side_effect("instance_norm", "updates its running statistics on every call")
        samples = x.data.reshape(x.shape[0], x.shape[1], count)
        mean = samples.mean(axis=(0, 2))
        unbiased = samples.var(axis=2, ddof=1).mean(axis=0)
        running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean
        running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
        running_mean._bump_version()
        running_var._bump_version()
    return y


def rms_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    r"""Scale each sample by the root mean square over its last axes (``normalized_shape``):
    :math:`y = \gamma\, x / \sqrt{\overline{x^2} + \epsilon}` -- no centring, no shift.

    ``eps=None`` uses the machine epsilon of ``x``'s dtype, as PyTorch.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or len(shape) > x.ndim or x.shape[x.ndim - len(shape) :] != shape:
        raise ShapeError(
            f"rms_norm: normalized_shape {shape} must be the trailing axes of the input shape "
            f"{x.shape}"
        )
    if weight is not None and weight.shape != shape:
        raise ShapeError(f"rms_norm: weight has shape {weight.shape}, expected {shape}")
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = x / ((x * x).mean(axis=axes, keepdims=True) + eps).sqrt()
    return y if weight is None else y * weight


# ----------------------------------------------------------------------------- lookup
def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (``(num_embeddings, dim)``) picked by integer ``indices`` of any shape.

    The gradient adds up at every row picked (repeats accumulate); the row ``padding_idx``, if
    given, receives none.
    """
    index = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    whole = index.dtype.kind == "f" and (not index.size or np.all(np.mod(index, 1) == 0))
    if index.dtype.kind not in "iu" and not whole:  # bool masks, strings, fractions refused
        raise TypeError(f"embedding: indices must be integers, got dtype {index.dtype}")
    index = index.astype(np.int64, copy=False)
    rows = weight.shape[0]
    if index.size and (index.min() < 0 or index.max() >= rows):
        raise IndexError(
            f"embedding: indices must lie in [0, {rows}), got values from {index.min()} to "
            f"{index.max()}"
        )
    out = weight[index]
    if padding_idx is None:
        return out
    if not -rows <= padding_idx < rows:
        raise ValueError(f"embedding: padding_idx {padding_idx} outside [-{rows}, {rows})")
    mask = np.broadcast_to((index == padding_idx % rows)[..., None], out.shape)
    return where(mask, out.detach(), out)
