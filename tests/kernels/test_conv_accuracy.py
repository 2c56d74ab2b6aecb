"""Conv-stack accuracy as a property, and every branch of the convolution kernels' dispatch.

Random small VGG-like stacks (conv 3x3 + bias + ReLU, optional 2x2 max pool) are compared with a
plain NumPy direct convolution written here, independent of :mod:`tinygrad_edu.kernels`:

* in float64 forward values, input gradients and weight gradients agree to ~1e-12 (relative to
  the largest reference value of each tensor);
* in float32, conv + ReLU stacks agree within float32 roundoff (relative <= 1e-5), the reference
  routing its backward pass through the ReLUs as the float32 forward did (a pre-activation within
  roundoff of 0 may have either sign). Pooling is left out there on purpose: a float32 max pool
  may legitimately pick another winner than float64 when two window values differ by ~1e-7
  (docs/numerics.md works through such a window).

Channel counts are drawn on both sides of every threshold of the formulation rule
(``kernels.conv.uses_winograd``, and the col2im rule of the input gradient); the thresholds are
found by asking the rule itself, so a changed rule moves the test cases with it. The branch
tests spy on the compute kernels and assert which one ran.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.kernels import conv as conv_kernels
from tinygrad_edu.kernels import jit
from tinygrad_edu.kernels.fast import gemm, layout_cache, winograd
from tinygrad_edu.nn import functional as F


# ----------------------------------------------------------------------------- the reference
def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Direct 3x3 cross-correlation, stride 1, padding 1: a sum over the nine kernel offsets."""
    n, _, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, w.shape[0], h, wd)) + b.reshape(1, -1, 1, 1)
    for a in range(3):
        for c in range(3):
            y += np.einsum("nchw,kc->nkhw", padded[:, :, a : a + h, c : c + wd], w[:, :, a, c])
    return y


def ref_conv_grads(x: np.ndarray, w: np.ndarray, g: np.ndarray):
    """Input, weight and bias gradients of :func:`ref_conv` for upstream ``g``."""
    _, _, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    g_padded = np.zeros_like(padded)
    gw = np.zeros(w.shape)
    for a in range(3):
        for c in range(3):
            g_padded[:, :, a : a + h, c : c + wd] += np.einsum("nkhw,kc->nchw", g, w[:, :, a, c])
            gw[:, :, a, c] = np.einsum("nkhw,nchw->kc", g, padded[:, :, a : a + h, c : c + wd])
    return g_padded[:, :, 1:-1, 1:-1], gw, g.sum(axis=(0, 2, 3))


def ref_pool(x: np.ndarray):
    """2x2/stride-2 max pool (odd edges dropped) and each window's first maximum."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    windows = x[:, :, : 2 * ho, : 2 * wo].reshape(n, c, ho, 2, wo, 2).transpose(0, 1, 2, 4, 3, 5)
    flat = windows.reshape(n, c, ho, wo, 4)
    return flat.max(axis=4), flat.argmax(axis=4)


def ref_pool_grad(g: np.ndarray, winner: np.ndarray, shape) -> np.ndarray:
    ho, wo = g.shape[2:]
    out = np.zeros(shape)
    for p in range(4):
        out[:, :, p // 2 : 2 * ho : 2, p % 2 : 2 * wo : 2] += np.where(winner == p, g, 0.0)
    return out


def ref_stack(x, layers, pools, v, masks=None):
    """Forward and backward of the whole stack in float64; ``v`` is the upstream gradient.

    ``masks`` (one per layer) route the backward pass through the ReLUs instead of the
    reference's own ``z > 0``: a pre-activation within roundoff of 0 may be on either side."""
    tape, h = [], x
    for (w, b), pool in zip(layers, pools):
        z = ref_conv(h, w, b)
        a = np.maximum(z, 0)
        winner = None
        if pool:
            a_in = a
            a, winner = ref_pool(a)
            tape.append((h, w, z, a_in.shape, winner))
        else:
            tape.append((h, w, z, None, None))
        h = a
    g, grads = v, []
    masks = [z > 0 for _, _, z, _, _ in tape] if masks is None else masks
    for (h_in, w, _, pooled_shape, winner), mask in zip(reversed(tape), reversed(masks)):
        if winner is not None:
            g = ref_pool_grad(g, winner, pooled_shape)
        g = g * mask
        g, gw, gb = ref_conv_grads(h_in, w, g)
        grads.append((gw, gb))
    return h, g, grads[::-1]


def ours_stack(x, layers, pools, v, dtype, trainable: bool):
    xt = Tensor(x.astype(dtype), requires_grad=True)
    params = [
        (
            Tensor(w.astype(dtype), requires_grad=trainable),
            Tensor(b.astype(dtype), requires_grad=trainable),
        )
        for w, b in layers
    ]
    h = xt
    for (w, b), pool in zip(params, pools):
        h = F.conv2d(h, w, b, padding=1).relu()
        if pool:
            h = F.max_pool2d(h, 2)
    wanted = [xt] + ([t for pair in params for t in pair] if trainable else [])
    grads = tg.grad(h, wanted, grad_outputs=Tensor(v.astype(dtype)))
    return h.data, grads[0].data, [(g.data) for g in grads[1:]]


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / max |reference| (0 for an all-zero reference matched exactly)."""
    scale = np.abs(reference).max(initial=0.0)
    err = np.abs(np.asarray(actual, dtype=np.float64) - reference).max(initial=0.0)
    return err / scale if scale else err


# ----------------------------------------------------------------------------- thresholds
GRID = sorted({*range(1, 9), 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129})


def formulation(c_in: int, c_out: int, backward: bool = False) -> str:
    """The dispatch decision for a 3x3/stride-1/padding-1 (c_in -> c_out) layer: "winograd",
    "im2col" or, for the input gradient (a (c_out -> c_in) convolution), also "col2im"."""
    if backward and conv_kernels._use_col2im(3, 3, c_out, c_in):
        return "col2im"
    if backward:
        c_in, c_out = c_out, c_in
    return "winograd" if conv_kernels.uses_winograd(3, 3, 1, 1, c_in) else "im2col"


def boundary_channels(max_channels: int = 65) -> list[tuple[int, int]]:
    """(c_in, c_out) pairs next to a change of the formulation rule, on both sides of it."""
    pairs = set()
    for backward in (False, True):
        for i, c_in in enumerate(GRID):
            for j, c_out in enumerate(GRID):
                here = formulation(c_in, c_out, backward)
                for di, dj in ((1, 0), (0, 1)):
                    if i + di < len(GRID) and j + dj < len(GRID):
                        other = (GRID[i + di], GRID[j + dj])
                        if formulation(*other, backward) != here:
                            pairs |= {(c_in, c_out), other}
    return sorted(p for p in pairs if max(p) <= max_channels)


BOUNDARY = boundary_channels()


def test_the_channel_grid_crosses_every_threshold():
    """Every decision occurs, forward and backward, among the boundary pairs the tests draw."""
    assert {formulation(*p) for p in BOUNDARY} == {"winograd", "im2col"}
    assert {formulation(*p, True) for p in BOUNDARY} == {"winograd", "im2col", "col2im"}


@st.composite
def stacks(draw, allow_pool: bool = True, max_layers: int = 3):
    batch = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    c_in, c_out = draw(st.sampled_from(BOUNDARY))
    size = c_in * c_out * h * w * batch  # keep the wide layers small in space
    if size > 40_000:
        h, w = max(1, h // 4), max(1, w // 4)
    channels = [c_in, c_out]
    for _ in range(draw(st.integers(0, max_layers - 1))):
        channels.append(draw(st.sampled_from([1, 2, 3, channels[-1], max(1, channels[-1] - 1)])))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((batch, c_in, h, w))
    layers, pools = [], []
    for a, b in itertools.pairwise(channels):
        layers.append((rng.standard_normal((b, a, 3, 3)) / np.sqrt(9 * a), rng.normal(0, 0.1, b)))
        pool = allow_pool and min(h, w) >= 2 and draw(st.booleans())
        pools.append(pool)
        if pool:
            h, w = h // 2, w // 2
    v = rng.standard_normal((batch, channels[-1], h, w))
    return x, layers, pools, v


@given(stacks(), st.booleans())
def test_float64_stacks_agree_with_the_direct_reference(case, trainable):
    x, layers, pools, v = case
    y_ref, gx_ref, grads_ref = ref_stack(x, layers, pools, v)
    y, gx, grads = ours_stack(x, layers, pools, v, np.float64, trainable)
    assert relative_error(y, y_ref) < 1e-12
    assert relative_error(gx, gx_ref) < 1e-12
    if trainable:
        flat_ref = [g for pair in grads_ref for g in pair]
        for ours, ref in zip(grads, flat_ref):
            assert relative_error(ours, ref) < 1e-12


@given(stacks(allow_pool=False))
def test_float32_conv_relu_stacks_agree_within_float32_roundoff(case):
    x, layers, pools, v = case
    x32 = x.astype(np.float32).astype(np.float64)
    layers32 = [(w.astype(np.float32).astype(np.float64), b.astype(np.float32)) for w, b in layers]
    layers32 = [(w, b.astype(np.float64)) for w, b in layers32]
    # ReLUs route as in the float32 forward: where a pre-activation is within roundoff of 0, the
    # float32 and float64 signs may differ, and each gradient is right for its own forward
    masks, h = [], x32.astype(np.float32)
    for w, b in layers32:
        z = conv_kernels.conv2d(h, w.astype(np.float32), 1, 1, bias=b.astype(np.float32))
        masks.append(z > 0)
        h = np.maximum(z, 0)
    v32 = v.astype(np.float32).astype(float)
    y_ref, gx_ref, grads_ref = ref_stack(x32, layers32, pools, v32, masks)
    y, gx, grads = ours_stack(x32, layers32, pools, v, np.float32, trainable=True)
    assert y.dtype == np.float32 and gx.dtype == np.float32
    # Roundoff is relative to the magnitude of what was summed, not to the result: a sum that
    # cancels (a ReLU that kept only values ~200x below those it clipped, a bias gradient of
    # terms of both signs) has float32 error ~1e-7 of its terms, however small the result
    # (PyTorch: 1.6e-5 relative to the output on one such case). The magnitudes are the same
    # network run on |x|, |w|, |b|, |v| through the same ReLU routing: each entry bounds the sum
    # of the absolute values of the products that make the corresponding result.
    absolute = [(np.abs(w), np.abs(b)) for w, b in layers32]
    y_mag, gx_mag, grads_mag = ref_stack(np.abs(x32), absolute, pools, np.abs(v32), masks)
    pairs = [(y, y_ref, y_mag), (gx, gx_ref, gx_mag)]
    pairs += list(zip(grads, [g for p in grads_ref for g in p], [g for p in grads_mag for g in p]))
    errors = [np.abs(ours - ref).max() / max(mag.max(), 1e-300) for ours, ref, mag in pairs]
    assert max(errors) <= 1e-5, errors


# ----------------------------------------------------------------------------- branch coverage
ENTRY_POINTS = ("conv2d", "conv2d_input_grad", "conv2d_weight_grad")


def compute_kernels() -> dict[str, tuple]:
    """The functions the entry points may dispatch to: every function of the Winograd module and
    every convolution of the GEMM module (``*_conv``, ``*_input_grad``; discovered, not listed,
    so a new formulation shows up here and must be given a case)."""
    found = {}
    for module in (winograd, gemm):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            if module is winograd or name.endswith(("_conv", "_input_grad")):
                found[f"{module.__name__.rsplit('.', 1)[1]}.{name}"] = (module, name)
    if jit.enabled():  # the jit extra's kernels: Winograd F(4x4, 3x3), im2col and col2im
        from tinygrad_edu.kernels.jit import im2col, winograd4x4

        for module in (im2col, winograd4x4):
            for name, fn in inspect.getmembers(module, inspect.isfunction):
                if fn.__module__ == module.__name__ and name.endswith(("_conv", "conv3x3")):
                    found[f"jit.{module.__name__.rsplit('.', 1)[1]}.{name}"] = (module, name)
    return found


@contextlib.contextmanager
def spy():
    """Record, per entry point call, which compute kernels ran: a list of (entry, {kernels})."""
    calls: list[tuple[str, set[str]]] = []
    depth = [0]  # only kernels called by the entry point itself name the branch
    patch = pytest.MonkeyPatch()
    for label, (module, name) in compute_kernels().items():
        original = getattr(module, name)

        def wrapped(*args, _original=original, _label=label, **kwargs):
            if calls and depth[0] == 0:
                calls[-1][1].add(_label)
            depth[0] += 1
            try:
                return _original(*args, **kwargs)
            finally:
                depth[0] -= 1

        patch.setattr(module, name, wrapped)
    for entry in ENTRY_POINTS:
        original = getattr(conv_kernels, entry)

        def entered(*args, _original=original, _entry=entry, **kwargs):
            calls.append((_entry, set()))
            return _original(*args, **kwargs)

        patch.setattr(conv_kernels, entry, entered)
    try:
        yield calls
    finally:
        patch.undo()


#: what each (entry point, decision) must run; a new branch needs a row here and a case below
EXPECTED = {
    ("conv2d", "winograd"): "winograd.conv3x3",
    ("conv2d", "im2col"): "gemm.im2col_conv",
    ("conv2d_input_grad", "winograd"): "winograd.conv3x3",
    ("conv2d_input_grad", "im2col"): "gemm.im2col_conv",
    ("conv2d_input_grad", "col2im"): "gemm.col2im_conv",
}
#: the same with the jit extra on: its kernels, except the input gradient by im2col (strides)
EXPECTED_FUSED = {
    ("conv2d", "winograd"): "jit.winograd4x4.conv3x3",
    ("conv2d", "im2col"): "jit.im2col.im2col_conv",
    ("conv2d_input_grad", "winograd"): "jit.winograd4x4.conv3x3",
    ("conv2d_input_grad", "im2col"): "gemm.im2col_conv",
    ("conv2d_input_grad", "col2im"): "jit.im2col.col2im_conv",
}


def expected_kernel(entry: str, decision: str) -> str:
    """The kernel the rule's decision runs on the path in use (float64 arrays here, which the
    jit extra's kernels take)."""
    return (EXPECTED_FUSED if jit.enabled() else EXPECTED)[(entry, decision)]


def _run_layer(x, w, b, stride=1, padding=1):
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    g = np.random.default_rng(1).standard_normal(y.shape)
    return y, tg.grad(y, [xt, wt, bt], grad_outputs=Tensor(g)), g


@pytest.mark.parametrize("c_in, c_out", BOUNDARY)
def test_every_boundary_layer_runs_the_kernel_its_rule_names_and_is_exact(c_in, c_out):
    rng = np.random.default_rng(c_in * 100 + c_out)
    x = rng.standard_normal((2, c_in, 5, 6))
    w, b = rng.standard_normal((c_out, c_in, 3, 3)), rng.standard_normal(c_out)
    with spy() as calls:
        y, (gx, gw, gb), g = _run_layer(x, w, b)
    ran = {entry: kernels for entry, kernels in calls}
    assert set(ran) == set(ENTRY_POINTS)
    for entry in ("conv2d", "conv2d_input_grad"):
        decision = formulation(c_in, c_out, backward=entry == "conv2d_input_grad")
        expected = expected_kernel(entry, decision)
        assert expected in ran[entry], (entry, decision, ran[entry])
    for entry, kernels in ran.items():
        known = {expected_kernel(e, d) for e, d in EXPECTED if e == entry}
        assert kernels <= known | {"winograd.transform_kernel"}, f"new branch in {entry}: {kernels}"
    gx_ref, gw_ref, gb_ref = ref_conv_grads(x, w, g)
    assert relative_error(y.data, ref_conv(x, w, b)) < 1e-12
    for ours, ref in ((gx, gx_ref), (gw, gw_ref), (gb, gb_ref)):
        assert relative_error(ours.data, ref) < 1e-12


def test_every_expected_branch_is_reached_by_the_boundary_layers():
    reached = set()
    for c_in, c_out in BOUNDARY:
        for entry in ("conv2d", "conv2d_input_grad"):
            decision = formulation(c_in, c_out, backward=entry == "conv2d_input_grad")
            reached.add((entry, decision))
    assert reached == set(EXPECTED)


def test_strided_and_unpadded_input_gradients_take_the_im2col_branch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 40, 7, 7))
    w, b = rng.standard_normal((40, 40, 3, 3)), rng.standard_normal(40)
    for stride, padding in ((2, 1), (1, 0)):
        with spy() as calls:
            y, (gx, gw, _), g = _run_layer(x, w, b, stride, padding)
        ran = dict(calls)
        assert ran["conv2d"] == {expected_kernel("conv2d", "im2col")}
        assert ran["conv2d_input_grad"] == {expected_kernel("conv2d_input_grad", "im2col")}
        # <g, conv(x, w)> is bilinear: each gradient dotted with its argument gives it back
        total = np.vdot(g, y.data - b.reshape(1, -1, 1, 1))
        assert np.vdot(gx.data, x) == pytest.approx(total, rel=1e-10)
        assert np.vdot(gw.data, w) == pytest.approx(total, rel=1e-10)


def test_cached_layouts_are_reused_and_follow_in_place_edits():
    """A weight big enough for the layout cache: the second call reuses the re-laid-out kernel,
    an in-place edit is noticed, and every result matches the direct reference."""
    rng = np.random.default_rng(0)
    c = 64  # 64 x 64 x 3 x 3 float64 = 288 KiB, above the cache's minimum size
    w = rng.standard_normal((c, c, 3, 3)) / 24
    assert w.nbytes >= layout_cache.MIN_BYTES and conv_kernels.uses_winograd(3, 3, 1, 1, c)
    b = np.zeros(c)
    x = rng.standard_normal((1, c, 6, 6))
    made = []
    module = winograd  # the kernel transform of the Winograd this path runs
    if jit.enabled():
        from tinygrad_edu.kernels.jit import winograd4x4 as module
    original = module.transform_kernel
    patch = pytest.MonkeyPatch()
    patch.setattr(module, "transform_kernel", lambda k, *a: made.append(1) or original(k, *a))
    try:
        weight = Tensor(w.copy())
        first = F.conv2d(Tensor(x), weight, padding=1).data.copy()
        after_first = len(made)
        second = F.conv2d(Tensor(x), weight, padding=1).data.copy()
        assert after_first == 1 and len(made) == 1, "the second call must reuse the layout"
        edited = weight.data.copy()
        edited[0, 0, 1, 1] += 1.0
        weight.copy_(edited)  # in place: same array object, new content, version bumped
        third = F.conv2d(Tensor(x), weight, padding=1).data
        assert len(made) == 2, "an edited weight must be re-laid out"
    finally:
        patch.undo()
    np.testing.assert_array_equal(first, second)
    assert relative_error(first, ref_conv(x, w, b)) < 1e-12
    assert relative_error(third, ref_conv(x, weight.data, b)) < 1e-12
