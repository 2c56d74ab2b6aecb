r"""The "improved" ascent: the classic algorithm plus the known remedies for noisy, high-frequency
images (Mordvintsev et al., "Inceptionism", 2015; Olah et al., "Feature Visualization", 2017).

Each remedy is an option, all on by default except total variation:

* **transformation robustness** -- every step sees the image randomly shifted (``jitter``
  pixels), scaled (``scale``) and rotated (``rotate`` degrees) by :class:`Warp`, a bilinear
  resampling op whose VJP is its exact adjoint; patterns that survive small transforms win;
* **border-free loss** -- the mean activation ignores the outer ``border`` fraction of the map,
  where zero padding makes filters fire on the frame;
* **pre-ReLU ascent** -- the step follows the filter's response before its ReLU, so filters that
  start out dead (zero gradient after the ReLU) can still be woken; the reported loss, and which
  filters are kept, still use the document's post-ReLU mean;
* **octaves** -- ascend first on a smaller image, upscale, continue (``octaves``, relative sizes),
  so large structures form before fine detail;
* **regularisation** -- total variation (``tv``, weight of the mean absolute neighbour difference)
  and a light blur every ``blur_every`` steps (pixel parameterisation);
* **decorrelated parameterisation** (``parameterization="spectral"``) -- optimise a 2-D cosine
  spectrum scaled by 1/frequency, mixed through the ImageNet colour correlation and squashed by a
  sigmoid into pixels, with Adam as in Lucid: steps then favour low frequencies and natural
  colours. Its images are pixels, and are drawn as they are (:class:`Spectral`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import grad
from ..ops.image import warp
from ..optim import Adam
from ..tensor import Tensor
from .ascent import Ascended, AscentSettings, Progress, normalize, padded
from .targets import Target

#: what the improved mode optimises: the pixels, or a decorrelated cosine spectrum
PARAMETERIZATIONS = ("pixel", "spectral")
#: square root of ImageNet's colour covariance (RGB), a common decorrelation basis
COLOR_CORRELATION = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)


# ----------------------------------------------------------------------------- parameterisations
def _dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D`` (``D @ D.T = I``): image = D.T @ spectrum @ D."""
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    d = np.cos(np.pi * (n + 0.5) * k / size) * np.sqrt(2.0 / size)
    d[0] /= np.sqrt(2.0)
    return d


class Spectral:
    r"""Images as colour-decorrelated, 1/frequency-scaled cosine spectra: Lucid's ``fft_image``
    and ``to_valid_rgb`` (Olah et al., "Feature Visualization", 2017), with a 2-D DCT in place
    of the FFT. A spectrum :math:`s` of shape ``(N, 3, S, S)`` becomes pixels in three steps:

    1. **1/f scaling and inverse DCT.** Coefficient :math:`(k_y, k_x)` is a cosine of
       :math:`f = \sqrt{k_y^2 + k_x^2} / 2S` cycles per pixel; it is multiplied by
       :math:`\sqrt{2} / (4 \max(f, 1/S))`, so a step of the same size in every coefficient
       changes the image with a 1/f amplitude spectrum, as natural images have. The orthonormal
       inverse DCT gives three decorrelated channels. This is Lucid's scale, 1/(4 max(f, 1/S))
       with its constant 4, times :math:`\sqrt{2}`: Lucid's real FFT counts each coefficient
       twice (with its complex conjugate), so its pixels carry :math:`\sqrt{2}` times the
       amplitude of an orthonormal DCT's for the same coefficients.
    2. **Colour mixing** through the square root of ImageNet's colour covariance (normalised
       to unit largest column), so equal steps in the three channels give natural colours.
    3. **Sigmoid**: :math:`p = 255\,\sigma(\cdot)`, real RGB pixels in 0..255, which the network
       sees in its input space (:meth:`.Target.from_pixels`) and which are drawn as they are
       (:func:`~.images.picture_of_pixels`): the picture *is* the image optimised.

    The constant coefficient :math:`k = 0` -- each channel's average -- is held at zero (its
    scale is 0). Every other cosine averages to zero over the image, so before the sigmoid every
    channel's mean is 0: the average colour stays mid-grey and the ascent can only change the
    pattern. Left free, the average colour is the cheapest change the ascent can make (it
    carries the largest scale and moves every pixel at once); it drifts to the filter's
    favourite hue and tints the whole picture.
    """

    def __init__(self, size: int, target: Target, dtype=np.float32) -> None:
        self.size, self.target = size, target
        d = _dct_matrix(size)
        self.basis, self.basis_t = Tensor(d.T.astype(dtype)), Tensor(d.astype(dtype))
        k = np.arange(size)
        frequency = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2) / (2 * size)  # cycles per pixel
        scale = np.sqrt(2) / (4 * np.maximum(frequency, 1.0 / size))
        scale[0, 0] = 0.0  # the average colour stays mid-grey
        self.scale = Tensor(scale.astype(dtype))
        mix = COLOR_CORRELATION / np.max(np.linalg.norm(COLOR_CORRELATION, axis=0))
        self.mix = Tensor(mix.T.astype(dtype))

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """One image's start, Lucid's: a spectrum ``(3, S, S)`` of N(0, 0.01^2) noise (nearly
        mid-grey pixels)."""
        return (rng.standard_normal((3, self.size, self.size)) * 0.01).astype(np.float32)

    def pixels(self, spectrum: Tensor) -> Tensor:
        """Spectrum ``(N, 3, S, S)`` -> RGB pixels on 0..255, channels last ``(N, S, S, 3)``."""
        decorrelated = self.basis @ (spectrum * self.scale) @ self.basis_t
        return (decorrelated.transpose(0, 2, 3, 1) @ self.mix).sigmoid() * 255

    def to_input(self, spectrum: Tensor) -> Tensor:
        """Spectrum ``(N, 3, S, S)`` -> NCHW image in the network's input space."""
        return self.target.from_pixels(self.pixels(spectrum))


# ----------------------------------------------------------------------------- the loop
def _blur(images: np.ndarray) -> np.ndarray:
    """A light 3x3 binomial blur (edges replicated)."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    rows = (padded[:, :, :-2] + 2 * padded[:, :, 1:-1] + padded[:, :, 2:]) / 4
    return ((rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]) / 4).astype(images.dtype)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of NCHW images (between octaves: a warp with no shift, scale or turn)."""
    n = len(images)
    resized = warp(Tensor(images), size, np.zeros((n, 2)), np.ones(n), np.zeros(n)).data
    return resized.astype(images.dtype)


def _total_variation(x: Tensor) -> Tensor:
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean()
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
    return dy + dx


@dataclass(frozen=True)
class ImprovedOptions:
    """The improved mode's knobs (see the module docstring); all have working defaults."""

    jitter: int = 8
    scale: float = 0.05
    rotate: float = 5.0
    border: float = 0.15
    octaves: tuple[float, ...] = (0.6, 0.8, 1.0)
    tv: float = 0.0
    blur_every: int = 4
    parameterization: str = "pixel"
    spectral_step: float = 0.05

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be 'pixel' or 'spectral', got {self.parameterization!r}"
            )
        if not 0 <= self.border < 0.5:
            raise ValueError(f"border must lie in [0, 0.5), got {self.border}")
        if not self.octaves or min(self.octaves) <= 0:
            raise ValueError(f"octaves must be positive relative sizes, got {self.octaves}")


def improved_ascent(
    target: Target,
    layer: str,
    filters: list[int],
    settings: AscentSettings,
    options: ImprovedOptions = ImprovedOptions(),
    progress: Progress | None = None,
) -> list[Ascended]:
    """Improved ascent for each filter, ``settings.batch`` at a time; ``settings.steps`` run per
    octave.

    Every random draw (jitter, scale, turn, the spectral start) comes from the filter's own
    generator, seeded by ``(seed, filter)``, and batches are padded to full size, so a filter's
    result does not depend on which filters share its batch."""
    chunk_ascent = _spectral_chunk if options.parameterization == "spectral" else _pixel_chunk
    results: list[Ascended] = []
    for start in range(0, len(filters), settings.batch):
        chunk = filters[start : start + settings.batch]
        rngs = [np.random.default_rng([settings.seed, f, 1]) for f in chunk]
        images, curves = chunk_ascent(
            target, layer, padded(chunk, settings.batch), settings, rngs, options
        )
        for f, image, curve in zip(chunk, images, curves):
            results.append(Ascended(f, image.astype(np.float64), curve[-1], tuple(curve)))
            if progress is not None:
                progress(len(results), len(filters), results[-1])
    return results


def _objective(
    target: Target, layer: str, x: Tensor, chunk: list[int], border: float
) -> tuple[Tensor, np.ndarray]:
    """What to ascend, and the loss to report, per image, over the centre of the map.

    The ascent follows the filter's *pre-ReLU* response: a filter that is negative everywhere on
    the start image has zero gradient after its ReLU and could never wake up (a grey, spectrally
    smooth start leaves most filters there). The reported loss stays the document's: the mean
    activation after the ReLU.
    """
    response = target.response(x, layer, chunk, activated=False)
    h, w = response.shape[1:]
    top, left = int(h * border), int(w * border)
    own = response[:, top : h - top, left : w - left]
    return own.mean(axis=(1, 2)), np.maximum(own.data, 0).mean(axis=(1, 2))


def _warps(
    rngs: list[np.random.Generator], batch: int, opts: ImprovedOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step's random shift, scale and turn per image, each from its filter's generator."""
    shifts, scales, angles = [], [], []
    for rng in rngs:
        shifts.append(rng.integers(-opts.jitter, opts.jitter + 1, 2))
        scales.append(1 + rng.uniform(-opts.scale, opts.scale))
        angles.append(np.deg2rad(rng.uniform(-opts.rotate, opts.rotate)))
    return (
        np.array(padded(shifts, batch)),
        np.array(padded(scales, batch)),
        np.array(padded(angles, batch)),
    )


def _pixel_chunk(
    target: Target, layer, chunk, settings: AscentSettings, rngs, opts: ImprovedOptions
):
    size, step_size = settings.size, settings.step_size * target.pixel_step
    noise = [target.start_image(f, size, settings.seed) for f in chunk]
    x = np.stack(noise).astype(np.float32)
    x = _resize(x, max(16, round(size * opts.octaves[0])))
    curves: list[list[float]] = [[] for _ in chunk]
    for octave in opts.octaves:
        side = max(16, round(size * octave))
        if x.shape[2] != side:
            x = _resize(x, side)
        for step in range(settings.steps):
            n = len(chunk)
            shifts, scales, angles = _warps(rngs, n, opts)
            image = Tensor(x, requires_grad=True)
            seen = warp(image, side, shifts, scales, angles)
            per_image, losses = _objective(target, layer, seen, chunk, opts.border)
            objective = per_image.sum()
            if opts.tv:
                objective = objective - opts.tv * n * _total_variation(image) * 255
            (g,) = grad(objective, [image])
            x = x + step_size * normalize(g.data)
            if opts.blur_every and (step + 1) % opts.blur_every == 0:
                x = _blur(x)
            for curve, loss in zip(curves, losses):
                curve.append(float(loss))
    return x, curves


def _spectral_chunk(
    target: Target, layer, chunk, settings: AscentSettings, rngs, opts: ImprovedOptions
):
    """Lucid's recipe: Adam on the spectrum (learning rate ``step_size * spectral_step``, by
    default Lucid's 0.05), each step seeing a randomly shifted, scaled and turned copy, all
    octaves' steps at the full size.

    Adam, not the pixel ascent's normalised gradient: Adam moves every coefficient by about the
    learning rate, so the image changes with the parameterisation's 1/f spectrum. A step along
    the gradient normalised as a whole moves each coefficient by its gradient, which carries the
    coefficient's scale a second time: the image would change with a 1/f^2 spectrum, the
    coarsest cosines would swamp the rest (large colour blobs) and fine detail would hardly form.
    """
    n, side = len(chunk), settings.size
    param = Spectral(side, target)
    spectrum = Tensor(np.stack(padded([param.initial(rng) for rng in rngs], n)), requires_grad=True)
    optimizer = Adam([spectrum], lr=settings.step_size * opts.spectral_step)
    curves: list[list[float]] = [[] for _ in chunk]
    for _ in range(settings.steps * len(opts.octaves)):
        shifts, scales, angles = _warps(rngs, n, opts)
        seen = warp(param.to_input(spectrum), side, shifts, scales, angles)
        per_image, losses = _objective(target, layer, seen, chunk, opts.border)
        optimizer.zero_grad()
        (-per_image.sum()).backward()  # Adam descends: ascend the activation
        optimizer.step()
        for curve, loss in zip(curves, losses):
            curve.append(float(loss))
    return param.to_input(spectrum).data, curves
