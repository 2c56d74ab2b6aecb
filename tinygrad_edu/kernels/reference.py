r"""The convolution, its two adjoints and max pooling as plain sums: read this first.

Arrays are NCHW: ``x`` (N, C, H, W) images, ``w`` (K, C, kh, kw) kernels (PyTorch's layout),
``g`` (N, K, Ho, Wo) gradients of the output. :math:`\tilde x` is ``x`` with ``p`` zeros on
every side of its two spatial axes. Each function loops over the ``kh x kw`` kernel offsets
``(a, b)``; at one offset every output pixel ``(i, j)`` reads the input pixel
``(i s + a, j s + b)`` of :math:`\tilde x`, so all of them together read a strided view.

The three functions are the partial derivatives of one number, linear in each argument,
:math:`T(x, w, g) = \langle \mathrm{conv}(x, w), g \rangle`; the input and weight gradients are
the same sum as the convolution, taken over other indices (its transposes). :mod:`.conv`
computes the same fast; the tests hold it equal to these.
"""

from __future__ import annotations

import numpy as np


def _offset(xp: np.ndarray, a: int, b: int, stride: int, out_hw: tuple[int, int]) -> np.ndarray:
    """The pixels ``(i s + a, j s + b)`` of ``xp`` for every output pixel ``(i, j)`` (a view)."""
    ho, wo = out_hw
    return xp[:, :, a : a + stride * (ho - 1) + 1 : stride, b : b + stride * (wo - 1) + 1 : stride]


def _padded(x: np.ndarray, padding: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    r""":math:`y_{nkij} = \sum_{c,a,b} \tilde x_{n,c,is+a,js+b}\, w_{kcab}` (no kernel flip)."""
    (n, _, h, wd), (k, _, kh, kw) = x.shape, w.shape
    out_hw = ((h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1)
    xp, y = _padded(x, padding), np.zeros((n, k, *out_hw), np.result_type(x, w))
    for a in range(kh):
        for b in range(kw):
            y += np.einsum("ncij,kc->nkij", _offset(xp, a, b, stride, out_hw), w[:, :, a, b])
    return y


def conv2d_input_grad(
    g: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: int = 1, padding: int = 0
) -> np.ndarray:
    r""":math:`\bar{\tilde x}_{n,c,is+a,js+b} \mathrel{+}= \sum_k g_{nkij}\, w_{kcab}`, then the
    padding cut off: each input pixel collects the gradient of every output that read it."""
    (n, _, *out_hw), (_, c, kh, kw) = g.shape, w.shape
    h, wd = input_hw
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), np.result_type(g, w))
    for a in range(kh):
        for b in range(kw):
            _offset(xp, a, b, stride, out_hw)[...] += np.einsum("nkij,kc->ncij", g, w[:, :, a, b])
    return xp[:, :, padding : padding + h, padding : padding + wd]


def conv2d_weight_grad(
    x: np.ndarray, g: np.ndarray, kernel_hw: tuple[int, int], stride: int = 1, padding: int = 0
) -> np.ndarray:
    r""":math:`\bar w_{kcab} = \sum_{n,i,j} g_{nkij}\, \tilde x_{n,c,is+a,js+b}`."""
    (_, c, *_), (_, k, *out_hw) = x.shape, g.shape
    xp, kh, kw = _padded(x, padding), *kernel_hw
    grad = np.zeros((k, c, kh, kw), np.result_type(x, g))
    for a in range(kh):
        for b in range(kw):
            grad[:, :, a, b] = np.einsum("nkij,ncij->kc", g, _offset(xp, a, b, stride, out_hw))
    return grad


def max_pool2d(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    r""":math:`y_{ncij} = \max_{a,b} x_{n,c,is+a,js+b}` over ``kernel x kernel`` windows."""
    out_hw = ((x.shape[2] - kernel) // stride + 1, (x.shape[3] - kernel) // stride + 1)
    offsets = [(a, b) for a in range(kernel) for b in range(kernel)]
    return np.max([_offset(x, a, b, stride, out_hw) for a, b in offsets], axis=0)


def max_pool2d_input_grad(x: np.ndarray, g: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    r""":math:`\bar x_{n,c,is+a,js+b} \mathrel{+}= g_{ncij}` at each window's first maximum
    (offsets in row-major order, as PyTorch): the adjoint of reading the winners."""
    y, grad = max_pool2d(x, kernel, stride), np.zeros(x.shape, g.dtype)
    routed = np.zeros(y.shape, bool)
    for a in range(kernel):
        for b in range(kernel):
            wins = (_offset(x, a, b, stride, y.shape[2:]) == y) & ~routed
            _offset(grad, a, b, stride, y.shape[2:])[...] += np.where(wins, g, 0)
            routed |= wins
    return grad
