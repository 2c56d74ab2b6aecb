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
from .weight_cache import LAYOUTS

#: upper bound, in bytes, for the temporary im2col matrix of one chunk
IM2COL_BUDGET = 16 * 2**20


def nhwc(x: np.ndarray) -> np.ndarray:
    """The NHWC array behind an NCHW-shaped array (free when it is a view of NHWC memory)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def as_nchw(y: np.ndarray) -> np.ndarray:
    """An NHWC array seen as NCHW (a view, no copy)."""
    return y.transpose(0, 3, 1, 2)


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zero-pad the two spatial axes of an NHWC array."""
    if padding == 0:
        return x
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    padded[:, padding : padding + h, padding : padding + w] = x
    return padded


def _windows(padded: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """View ``(N, Ho, Wo, kh, kw, C)`` of every window of a padded NHWC array (no copy)."""
    n, hp, wp, c = padded.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    sn, sh, sw, sc = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, ho, wo, kh, kw, c),
        strides=(sn, sh * stride, sw * stride, sh, sw, sc),
        writeable=False,
    )


def _chunks(count: int, bytes_per_item: int):
    step = max(1, IM2COL_BUDGET // max(bytes_per_item, 1))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))


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
    padded = _pad(x, padding)
    windows = _windows(padded, kh, kw, stride)
    n, ho, wo = windows.shape[:3]
    if kernel is None:
        kernel = im2col_matrix(w)
    out = np.empty((n, ho, wo, k), dtype=np.result_type(x, w))
    image_bytes = ho * wo * kh * kw * c * x.itemsize
    step = max(1, IM2COL_BUDGET // max(image_bytes, 1))
    columns = np.empty((min(step, n), ho, wo, kh, kw, c), dtype=x.dtype)  # reused per chunk
    for start in range(0, n, step):
        count = min(step, n - start)
        np.copyto(columns[:count], windows[start : start + count])  # the im2col copy
        np.matmul(
            columns[:count].reshape(-1, kh * kw * c),
            kernel,
            out=out[start : start + count].reshape(-1, k),
        )
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
    windows = _windows(_pad(x_nhwc, padding), kh, kw, stride)[:, :ho, :wo]
    total = np.zeros((kh * kw * c, k), dtype=np.result_type(x, g))
    row_bytes = ho * wo * kh * kw * c * x.itemsize
    for part in _chunks(n, row_bytes):
        columns = windows[part].reshape(-1, kh * kw * c)
        total += columns.T @ g_nhwc[part].reshape(-1, k)
    return np.ascontiguousarray(total.reshape(kh, kw, c, k).transpose(3, 2, 0, 1))


# ------------------------------------------------------------------------------- max pooling
def max_pool2d(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over ``kernel x kernel`` windows, NCHW. Returns ``(y, choice)`` where ``choice`` holds,
    per output, the flat index (row-major within the window) of the first maximum."""
    x_nhwc = nhwc(x)
    if kernel == stride == 2:
        return _max_pool_2x2(x_nhwc)
    windows = _windows(x_nhwc, kernel, kernel, stride)
    n, ho, wo = windows.shape[:3]
    c = x_nhwc.shape[3]
    flat = windows.transpose(0, 1, 2, 5, 3, 4).reshape(n, ho, wo, c, kernel * kernel)
    choice = flat.argmax(axis=4).astype(np.int8 if kernel * kernel < 128 else np.int32)
    y = np.take_along_axis(flat, choice[..., None], axis=4)[..., 0]
    return as_nchw(y), choice


def _max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The common 2x2, stride-2 case on NHWC ``x``: four strided views instead of a window copy.

    Position ``p`` of a window is ``(p // 2, p % 2)``; on ties the earlier position wins.
    """
    v0, v1, v2, v3 = _quarters(x)
    top, bottom = np.maximum(v0, v1), np.maximum(v2, v3)
    lower_wins = bottom > top
    choice = np.where(lower_wins, (v3 > v2).astype(np.int8) + 2, (v1 > v0).astype(np.int8))
    return as_nchw(np.maximum(top, bottom)), choice


def _quarters(x: np.ndarray) -> list[np.ndarray]:
    """The four positions of every 2x2 window of NHWC ``x``, as strided views."""
    ho, wo = x.shape[1] // 2, x.shape[2] // 2
    return [x[:, r : 2 * ho : 2, q : 2 * wo : 2] for r in (0, 1) for q in (0, 1)]


def max_pool2d_scatter(
    g: np.ndarray, choice: np.ndarray, input_shape: tuple[int, ...], kernel: int, stride: int
) -> np.ndarray:
    """Route each output gradient to the input position that won its window (adds on overlap)."""
    n, c, h, w = input_shape
    g_nhwc = nhwc(g)
    ho, wo = g_nhwc.shape[1:3]
    out = np.zeros((n, h, w, c), dtype=g.dtype)
    if kernel == stride == 2:
        for position, target in enumerate(_quarters(out)):
            np.copyto(target, g_nhwc, where=choice == position)
        return as_nchw(out)
    rows = np.arange(ho)[None, :, None, None] * stride + choice // kernel
    cols = np.arange(wo)[None, None, :, None] * stride + choice % kernel
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    if stride >= kernel:  # windows do not overlap: every target is written once
        out[batch, rows, cols, channel] = g_nhwc
    else:
        np.add.at(out, (batch, rows, cols, channel), g_nhwc)
    return as_nchw(out)


def max_pool2d_gather(
    g_input: np.ndarray, choice: np.ndarray, kernel: int, stride: int
) -> np.ndarray:
    """The adjoint of :func:`max_pool2d_scatter`: read each window's winning position."""
    x_nhwc = nhwc(g_input)
    if kernel == stride == 2:
        return as_nchw(np.choose(choice, _quarters(x_nhwc)))
    n, ho, wo, c = choice.shape
    rows = np.arange(ho)[None, :, None, None] * stride + choice // kernel
    cols = np.arange(wo)[None, None, :, None] * stride + choice % kernel
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    return as_nchw(x_nhwc[batch, rows, cols, channel])
