r"""NumPy kernels for 2-D convolution and max pooling (no autodiff here: arrays in, arrays out).

Layout. The public API is NCHW, like PyTorch. Internally every kernel works on **NHWC** memory,
where the channels of one pixel are contiguous: then the patch of a 3x3 window is a few
contiguous runs, and a convolution becomes matrix products over ``(pixels, channels)``. Results
are returned as NCHW-shaped *views* of NHWC arrays (``y.transpose(0, 3, 1, 2)``), which costs
nothing; NumPy's elementwise ops keep that memory order, so the next convolution gets its NHWC
array back for free with ``x.transpose(0, 2, 3, 1)``.

The three kernels are the three partial derivatives of one trilinear form
:math:`T(x, w, y) = \langle \mathrm{conv}(x, w), y \rangle`:

* :func:`conv2d` = :math:`\partial T / \partial y`, the forward pass;
* :func:`conv2d_input_grad` = :math:`\partial T / \partial x` (a "transposed convolution");
* :func:`conv2d_weight_grad` = :math:`\partial T / \partial w`.

Formulation (see ``docs/convolution.md`` for the measurements behind it): 3x3, stride-1,
padding-1 convolutions with enough input channels use Winograd's minimal filtering
F(2x2, 3x3) (:mod:`.winograd`), which needs 2.25x fewer multiplications; everything else uses
im2col (gather each output pixel's window into a row, one GEMM with the flattened kernel),
processed in chunks of images through one reused buffer so memory stays bounded.
"""

from __future__ import annotations

import numpy as np

from . import winograd
from .layout import as_nchw, chunks, nhwc, pad, windows
from .layout_cache import LAYOUTS


def _use_winograd(kh: int, kw: int, stride: int, padding: int, c_in: int, c_out: int) -> bool:
    """Winograd F(2x2, 3x3) for 3x3/stride 1/padding 1 convolutions with ``c_in >= 32`` channels
    and no more output than input channels; im2col otherwise.

    Measured per VGG layer shape (docs/convolution.md): Winograd saves GEMM work in proportion to
    ``c_in * c_out`` but spends elementwise transforms on 4x the input (``c_in``) and output
    (``c_out``) data; with few input channels (the RGB layer) or a widening layer, the
    transforms cost more than they save.
    """
    return kh == kw == 3 and stride == 1 and padding == 1 and c_in >= 32 and c_out <= c_in


def im2col_matrix(w: np.ndarray) -> np.ndarray:
    """Kernel ``(K, C, kh, kw)`` as the ``(kh*kw*C, K)`` matrix that multiplies im2col rows."""
    k, c, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(kh * kw * c, k)


def flipped(w: np.ndarray) -> np.ndarray:
    """Kernel rotated by 180 degrees with in/out channels swapped: ``(C, K, kh, kw)``."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def _im2col_conv(
    x: np.ndarray, w: np.ndarray, stride: int, padding: int, kernel: np.ndarray | None = None
) -> np.ndarray:
    """NHWC ``x`` (N, H, W, C) with weights ``w`` (K, C, kh, kw) -> NHWC (N, Ho, Wo, K).

    ``kernel`` is ``im2col_matrix(w)`` when the caller has it already.
    """
    k, c, kh, kw = w.shape
    patches = windows(pad(x, padding), kh, kw, stride)
    n, ho, wo = patches.shape[:3]
    if kernel is None:
        kernel = im2col_matrix(w)
    out = np.empty((n, ho, wo, k), dtype=np.result_type(x, w))
    parts = list(chunks(n, ho * wo * kh * kw * c * x.itemsize))
    columns = np.empty((parts[0].stop, ho, wo, kh, kw, c), dtype=x.dtype)  # reused per chunk
    for part in parts:
        count = part.stop - part.start
        np.copyto(columns[:count], patches[part])  # the im2col copy
        np.matmul(columns[:count].reshape(-1, kh * kw * c), kernel, out=out[part].reshape(-1, k))
    return out


def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    r"""Cross-correlation, NCHW: :math:`y_{nkij} = \sum_{c,a,b} x_{n,c,is+a-p,js+b-p} w_{kcab}`."""
    _, c, kh, kw = w.shape
    x_nhwc = nhwc(x)
    if _use_winograd(kh, kw, stride, padding, c, w.shape[0]):
        u = LAYOUTS.get(w, "winograd", winograd.transform_kernel)
        return as_nchw(winograd.conv3x3(x_nhwc, w, u=u))
    kernel = LAYOUTS.get(w, "im2col", im2col_matrix)
    return as_nchw(_im2col_conv(x_nhwc, w, stride, padding, kernel))


def conv2d_input_grad(
    g: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: int = 1, padding: int = 0
) -> np.ndarray:
    r""":math:`\bar x` for :math:`y = \mathrm{conv}(x, w)`: ``g`` convolved with ``w`` flipped.

    Each input pixel received ``w`` times every output it contributed to, so its gradient
    collects ``g`` through the same weights, rotated by 180 degrees and with in/out channels
    swapped. For stride ``s`` the gradient is first spread out with ``s - 1`` zeros between
    pixels ("dilated"), then padded by ``k - 1 - p``; rows the forward never read get 0.
    """
    k, _, kh, kw = w.shape
    h, wd = input_hw
    rotated = LAYOUTS.get(w, "flipped", flipped)  # (C, K, kh, kw)
    g_nhwc = nhwc(g)
    if _use_winograd(kh, kw, stride, padding, k, w.shape[1]) and g.shape[2:] == (h, wd):
        u = LAYOUTS.get(w, "winograd_flipped", lambda w: winograd.transform_kernel(flipped(w)))
        return as_nchw(winograd.conv3x3(g_nhwc, rotated, u=u))
    n, ho, wo, _ = g_nhwc.shape
    if stride > 1:  # spread the gradient out: s - 1 zeros between neighbouring pixels
        dilated = np.zeros((n, (ho - 1) * stride + 1, (wo - 1) * stride + 1, k), dtype=g.dtype)
        dilated[:, ::stride, ::stride] = g_nhwc
        g_nhwc = dilated
    grown = _pad_asymmetric(g_nhwc, kh - 1 - padding, kw - 1 - padding, h, wd, kh, kw)
    kernel = LAYOUTS.get(w, "im2col_flipped", lambda w: im2col_matrix(flipped(w)))
    return as_nchw(_im2col_conv(grown, rotated, 1, 0, kernel))


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
    r""":math:`\bar w_{kcab} = \sum_{n,i,j} g_{nkij} x_{n,c,is+a-p,js+b-p}`, windows times g."""
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
