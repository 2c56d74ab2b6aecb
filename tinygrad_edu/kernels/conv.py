r"""2-D convolution kernels and the choice of formulation (no autodiff here: arrays in, arrays out).

These compute what :mod:`.reference` defines -- the convolution and its two adjoints -- fast. The
tests hold every formulation here equal to the reference.

Layout. The public API is NCHW, like PyTorch. Internally every kernel works on **NHWC** memory,
where the channels of one pixel are contiguous: then the patch of a 3x3 window is a few
contiguous runs, and a convolution becomes matrix products over ``(pixels, channels)``. Results
are returned as NCHW-shaped *views* of NHWC arrays (``y.transpose(0, 3, 1, 2)``), which costs
nothing; NumPy's elementwise ops keep that memory order, so the next convolution gets its NHWC
array back for free with ``x.transpose(0, 2, 3, 1)``.

Formulation (:func:`forward_path` and :func:`input_grad_path` name it; ``docs/convolution.md``
has the measurements behind the rule): a big kernel over few output pixels is multiplied as
stored (:func:`uses_stored_kernel`); 3x3, stride-1, padding-1 convolutions with enough input
channels use Winograd's minimal filtering (:func:`uses_winograd`): F(2x2, 3x3) on the NumPy
path (:mod:`.fast.winograd`: 2.25x fewer multiplications), F(4x4, 3x3) with its transforms fused
on the ``jit`` extra's (:mod:`.jit.winograd4x4`: 4x fewer); input gradients with few channels use
col2im; everything else uses im2col (:mod:`.fast.gemm`; on the ``jit`` extra's path the forward
im2col and col2im with their packing fused, :mod:`.jit.im2col`). Every formulation works through
chunks shared among the worker threads (:mod:`.fast.threads`), so memory stays bounded, and
applies bias, ReLU and a ReLU's backward mask per chunk, while it is in cache. Re-laid-out
kernels are reused while the kernel is unchanged (:func:`track`, :mod:`.fast.layout_cache`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import jit
from .fast import gemm, winograd
from .fast.layout import as_nchw, chunks, nhwc, pad, select, windows
from .fast.layout_cache import LAYOUTS, Counter
from .jit import im2col, winograd4x4

#: fewest input channels for which Winograd beats im2col (measured, docs/convolution.md)
MIN_WINOGRAD_CHANNELS = 32
#: a convolution with a kernel of at least this many elements over at most
#: :data:`MAX_DIRECT_PIXELS` output pixels (all images together) multiplies by the kernel as it
#: is stored (:func:`uses_stored_kernel`): reading a re-laid-out copy would cost more than the
#: arithmetic (measured, docs/convolution.md)
MIN_DIRECT_KERNEL = 2**20
MAX_DIRECT_PIXELS = 64
#: the names :func:`forward_path` and :func:`input_grad_path` give the formulations
STORED_KERNEL, IM2COL, COL2IM = "stored kernel", "im2col", "col2im"
WINOGRAD, WINOGRAD_4X4 = "winograd F(2x2,3x3)", "winograd F(4x4,3x3)"


def track(w: np.ndarray, counter: Counter) -> None:
    """Say that ``counter`` -- a one-element list incremented on every in-place change of
    ``w`` (a tensor's version counter) -- counts ``w``'s changes: its re-layouts are then reused
    until the count moves (:mod:`.fast.layout_cache`). Untracked kernels are re-laid out on
    every call."""
    LAYOUTS.track(w, counter)


def uses_winograd(kh: int, kw: int, stride: int, padding: int, c_in: int) -> bool:
    """Whether a convolution runs as Winograd F(2x2, 3x3): 3x3, stride 1, padding 1, and at
    least :data:`MIN_WINOGRAD_CHANNELS` input channels.

    Measured per VGG layer shape (docs/convolution.md): Winograd saves GEMM work in proportion to
    ``c_in * c_out`` but spends elementwise transforms on the input (``c_in``) and output
    (``c_out``) data; with few input channels (the RGB layer) the transforms cost more than they
    save.
    """
    return kh == kw == 3 and stride == 1 and padding == 1 and c_in >= MIN_WINOGRAD_CHANNELS


def flipped(w: np.ndarray) -> np.ndarray:
    """Kernel rotated by 180 degrees with in/out channels swapped: ``(C, K, kh, kw)``."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: int = 1,
    padding: int = 0,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    r"""Cross-correlation, NCHW: :func:`.reference.conv2d`, plus ``bias`` (K,) and ``relu``.

    ``bias`` is added and ``relu`` applied while each chunk of the output is in cache, which
    saves one or two passes over the whole output. The result is a fresh array.
    """
    dtype = np.result_type(x, w)
    if bias is not None and np.result_type(dtype, bias) != dtype:  # a wider bias: add it after
        wide = conv2d(x, w, stride, padding).astype(np.result_type(dtype, bias))
        wide += bias.reshape(1, -1, 1, 1)
        return np.maximum(wide, 0, out=wide) if relu else wide
    if bias is not None:  # as narrow or narrower: in the result's dtype, fused per chunk
        bias = bias.astype(dtype, copy=False)
    x_nhwc = nhwc(x)
    fused = jit.applies(x_nhwc, w, *(() if bias is None else (bias,)))
    path = forward_path(w.shape, x.shape, stride, padding, fused)
    if path == STORED_KERNEL:
        return gemm.stored_kernel_conv(x_nhwc, w, stride, padding, bias, relu)
    if path == WINOGRAD_4X4:
        u = LAYOUTS.get(w, WINOGRAD_4X4, winograd4x4.transform_kernel)
        return as_nchw(winograd4x4.conv3x3(x_nhwc, u, bias=bias, relu=relu))
    if path == WINOGRAD:
        u = LAYOUTS.get(w, WINOGRAD, winograd.transform_kernel)
        y = winograd.conv3x3(x_nhwc, w, u=u, bias=bias, relu=relu)
    else:
        kernel = LAYOUTS.get(w, IM2COL, gemm.im2col_matrix)
        if fused:
            kernel_hw = w.shape[2:]
            return as_nchw(
                im2col.im2col_conv(x_nhwc, kernel, kernel_hw, stride, padding, bias, relu)
            )
        y = gemm.im2col_conv(x_nhwc, w, stride, padding, kernel, bias, relu)
    return as_nchw(y)


def forward_path(
    w_shape: Sequence[int], x_shape: Sequence[int], stride: int, padding: int, fused: bool = False
) -> str:
    """The formulation :func:`conv2d` uses for kernel ``w_shape`` (K, C, kh, kw) on NCHW input
    ``x_shape``: :data:`STORED_KERNEL` (:func:`uses_stored_kernel`), Winograd
    (:func:`uses_winograd`) or :data:`IM2COL`. Winograd is :data:`WINOGRAD_4X4` with the ``jit``
    extra's kernels (``fused``: :func:`.jit.applies` to the arrays), else :data:`WINOGRAD`."""
    k, c, kh, kw = w_shape
    n, _, h, w = x_shape
    pixels = n * ((h + 2 * padding - kh) // stride + 1) * ((w + 2 * padding - kw) // stride + 1)
    if uses_stored_kernel(k * c * kh * kw, pixels):
        return STORED_KERNEL
    if uses_winograd(kh, kw, stride, padding, c):
        return WINOGRAD_4X4 if fused else WINOGRAD
    return IM2COL


def input_grad_path(
    w_shape: Sequence[int],
    g_shape: Sequence[int],
    input_hw: Sequence[int],
    stride: int,
    padding: int,
    fused: bool = False,
) -> str:
    """The formulation :func:`conv2d_input_grad` uses for kernel ``w_shape`` and NCHW gradient
    ``g_shape``: :data:`STORED_KERNEL`, :data:`COL2IM` (few input channels, :func:`_use_col2im`),
    Winograd (:data:`WINOGRAD_4X4` when ``fused``, else :data:`WINOGRAD`) or :data:`IM2COL`
    (also every stride > 1)."""
    k, c, kh, kw = w_shape
    n, _, ho, wo = g_shape
    if stride == 1 and uses_stored_kernel(k * c * kh * kw, n * ho * wo):
        return STORED_KERNEL
    if stride == 1 and _use_col2im(kh, kw, k, c):
        return COL2IM
    if (ho, wo) == tuple(input_hw) and uses_winograd(kh, kw, stride, padding, k):
        return WINOGRAD_4X4 if fused else WINOGRAD
    return IM2COL


def uses_stored_kernel(kernel_size: int, pixels: int) -> bool:
    """Whether a convolution multiplies by its kernel as stored, without a re-laid-out copy.

    So it does when the kernel is large (``kernel_size >= MIN_DIRECT_KERNEL`` elements) and the
    output small (``pixels <= MAX_DIRECT_PIXELS``, all images together): VGG's 8x8 layers at
    batch 1 and 2. There, streaming the kernel's bytes dominates: Winograd's ``U`` is 16/9 of
    them.
    """
    return kernel_size >= MIN_DIRECT_KERNEL and pixels <= MAX_DIRECT_PIXELS


def conv2d_input_grad(
    g: np.ndarray,
    w: np.ndarray,
    input_hw: tuple[int, int],
    stride: int = 1,
    padding: int = 0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    r""":func:`.reference.conv2d_input_grad`: ``g`` convolved with ``w`` flipped.

    Each input pixel received ``w`` times every output it contributed to, so its gradient
    collects ``g`` through the same weights, rotated by 180 degrees and with in/out channels
    swapped. For stride ``s`` the gradient is first spread out with ``s - 1`` zeros between
    pixels ("dilated"), then padded by ``k - 1 - p``; rows the forward never read get 0.

    ``mask`` (the shape of ``g``): use ``g`` where ``mask > 0`` and 0 elsewhere (:func:`.select`:
    an ``inf`` there gives 0, not NaN) -- the backward pass of a ReLU whose output was ``mask``,
    folded into the copy the convolution makes anyway.
    """
    k, _, kh, kw = w.shape
    h, wd = input_hw
    g_nhwc = nhwc(g)
    mask_nhwc = None if mask is None else nhwc(mask)
    fused = jit.applies(g_nhwc, w, *(() if mask_nhwc is None else (mask_nhwc,)))
    path = input_grad_path(w.shape, g.shape, input_hw, stride, padding, fused)
    # Winograd: the forward's transformed kernel, positions permuted, serves both
    if path == WINOGRAD_4X4:
        u = LAYOUTS.get(w, WINOGRAD_4X4, winograd4x4.transform_kernel).transpose(0, 2, 1)
        order = winograd4x4.FLIP_ORDER
        return as_nchw(winograd4x4.conv3x3(g_nhwc, u, mask=mask_nhwc, order=order))
    if path == WINOGRAD:
        u = LAYOUTS.get(w, WINOGRAD, winograd.transform_kernel).transpose(0, 2, 1)
        order = winograd.FLIP_ORDER
        return as_nchw(winograd.conv3x3(g_nhwc, None, u=u, mask=mask_nhwc, order=order))
    if path == COL2IM and fused:  # the mask and the shifted adds fused
        kernel = LAYOUTS.get(w, COL2IM, gemm.col2im_matrix)
        y = im2col.col2im_conv(g_nhwc, kernel, (h, wd), (kh, kw), padding, mask_nhwc)
        return as_nchw(y)
    if mask_nhwc is not None:
        keep = np.greater(mask_nhwc, 0)
        g_nhwc = select(g_nhwc, keep, np.empty(g_nhwc.shape, dtype=g_nhwc.dtype))
    if path == STORED_KERNEL:
        return gemm.stored_kernel_input_grad(g_nhwc, w, (h, wd), padding)
    if path == COL2IM:
        kernel = LAYOUTS.get(w, COL2IM, gemm.col2im_matrix)
        return as_nchw(gemm.col2im_conv(g_nhwc, kernel, (h, wd), kh, kw, padding))
    n, ho, wo, _ = g_nhwc.shape
    if stride > 1:  # spread the gradient out: s - 1 zeros between neighbouring pixels
        dilated = np.zeros((n, (ho - 1) * stride + 1, (wo - 1) * stride + 1, k), g.dtype)
        dilated[:, ::stride, ::stride] = g_nhwc
        g_nhwc = dilated
    grown = _pad_asymmetric(g_nhwc, kh - 1 - padding, kw - 1 - padding, h, wd, kh, kw)
    rotated = LAYOUTS.get(w, "flipped", flipped)  # (C, K, kh, kw)
    kernel = LAYOUTS.get(w, "im2col flipped", lambda w: gemm.im2col_matrix(flipped(w)))
    return as_nchw(gemm.im2col_conv(grown, rotated, 1, 0, kernel))


def _use_col2im(kh: int, kw: int, k: int, c: int) -> bool:
    """col2im for input gradients with few channels: the GEMM's output (``kh*kw*C`` values per
    pixel) is then no larger than its input (``K`` values), e.g. VGG's RGB layer (64 -> 3)."""
    return kh * kw * c <= k


def _pad_asymmetric(
    g: np.ndarray, pad_h: int, pad_w: int, h: int, w: int, kh: int, kw: int
) -> np.ndarray:
    """Pad (or crop) a dilated gradient so a valid convolution yields at least ``h x w`` pixels."""
    n, gh, gw, k = g.shape
    target_h, target_w = h + kh - 1, w + kw - 1
    out = np.zeros((n, target_h, target_w, k), dtype=g.dtype)
    src_h0, dst_h0 = max(0, -pad_h), max(0, pad_h)
    src_w0, dst_w0 = max(0, -pad_w), max(0, pad_w)
    rows = min(gh - src_h0, target_h - dst_h0)
    cols = min(gw - src_w0, target_w - dst_w0)
    if rows > 0 and cols > 0:
        out[:, dst_h0 : dst_h0 + rows, dst_w0 : dst_w0 + cols] = g[
            :, src_h0 : src_h0 + rows, src_w0 : src_w0 + cols
        ]
    return out


def conv2d_weight_grad(
    x: np.ndarray, g: np.ndarray, kernel_hw: tuple[int, int], stride: int = 1, padding: int = 0
) -> np.ndarray:
    r""":func:`.reference.conv2d_weight_grad`: every window of ``x`` times ``g``, summed, as one
    GEMM per chunk of images."""
    kh, kw = kernel_hw
    x_nhwc, g_nhwc = nhwc(x), nhwc(g)
    n, ho, wo, k = g_nhwc.shape
    c = x_nhwc.shape[3]
    patches = windows(pad(x_nhwc, padding), kh, kw, stride)[:, :ho, :wo]
    total = np.zeros((kh * kw * c, k), dtype=np.result_type(x, g))
    row_bytes = ho * wo * kh * kw * c * x.itemsize
    for part in chunks(n, row_bytes):
        columns = patches[part].reshape(-1, kh * kw * c)
        total += columns.T @ g_nhwc[part].reshape(-1, k)
    return np.ascontiguousarray(total.reshape(kh, kw, c, k).transpose(3, 2, 0, 1))
