"""Images for filter visualisation: the starting noise, the document's deprocessing, the grid,
and PNG files."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from ..io.atomic import atomic_write
from ..models.vgg import from_input_space, to_input_space

#: Keras' ``K.epsilon()``, the fuzz factor of the script's ``normalize`` and ``deprocess_image``
KERAS_EPSILON = 1e-7


def grey_noise(
    input_space: str, filter_index: int, size: int, seed: int, channels: int = 3
) -> np.ndarray:
    """The document's start image, ``(U(0, 1) - 0.5) * 20 + 128``, as a float64
    ``(channels, size, size)`` array in ``input_space``.

    As in the script, the noise is fed to the Keras network as it is: no mean pixel is subtracted,
    so in the Caffe input space (BGR minus the ImageNet mean) it stands for a very bright image.
    For torchvision weights ("torch" space) the same image is converted: back to RGB pixels (add
    the mean pixel, BGR -> RGB), then standardised. In the "unit" space (pixels on 0..1) the
    noise is read as grey pixels, 128 +- 10 of 255; one channel takes the first of the three.

    Each filter gets its own generator seeded by ``(seed, filter_index)``, so an image never
    depends on which other filters share its batch.
    """
    rng = np.random.default_rng([seed, filter_index])
    caffe = (rng.random((3, size, size)) - 0.5) * 20 + 128
    if input_space == "caffe":
        return caffe
    if input_space == "unit":
        return np.ascontiguousarray(caffe[:channels] / 255.0)
    pixels_rgb = from_input_space(caffe.transpose(1, 2, 0), "caffe")
    return np.ascontiguousarray(to_input_space(pixels_rgb, "torch").transpose(2, 0, 1))


def deprocess_image(x: np.ndarray, input_space: str = "caffe") -> np.ndarray:
    """The script's ``deprocess_image``: centre, divide by ``std + K.epsilon()`` (1e-7), times 0.1,
    plus 0.5, clip to [0, 1], times 255, uint8; ``(3, H, W)`` -> ``(H, W, 3)``.

    One deliberate difference: for Keras weights the BGR channels are reversed to RGB. The script
    saves Keras' BGR array as if it were RGB, so its pictures have red and blue swapped. A
    one-channel input ``(1, H, W)`` is drawn grey."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"deprocess_image needs a (3, H, W) or (1, H, W) input, got {x.shape}")
    x = (x - x.mean()) / (x.std() + KERAS_EPSILON) * 0.1 + 0.5
    image = (np.clip(x, 0, 1) * 255).transpose(1, 2, 0)
    if input_space == "caffe":
        image = image[..., ::-1]
    if image.shape[2] == 1:  # one channel: a grey picture
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def picture_of_pixels(x: np.ndarray, input_space: str = "caffe") -> np.ndarray:
    """The picture an image of real pixels stands for: ``(C, H, W)`` input values -> ``(H, W, 3)``
    uint8 RGB by the exact inverse of the input space (:func:`~..models.vgg.to_input_space`: add
    the mean pixel back and BGR -> RGB for "caffe", undo the standardisation for "torch"; times
    255 for "unit", one channel drawn grey), rounded and clipped to 0..255.

    This draws the spectral parameterisation's images, which are pixels by construction
    (``255 * sigmoid(...)``). :func:`deprocess_image` is for the classic and pixel ascents, whose
    values are unbounded: it centres all channels *jointly*, so the per-channel offsets of the
    input space stay in -- in Caffe space a mid-grey pixel is BGR (23.6, 10.7, 3.8), which it
    draws blue -- and it stretches every image to the same contrast, so an image's own contrast
    and colours are lost.
    """
    x = np.asarray(x, dtype=np.float64)
    channels = (1, 3) if input_space == "unit" else (3,)
    if x.ndim != 3 or x.shape[0] not in channels:
        raise ValueError(
            f"picture_of_pixels needs a ({' or '.join(map(str, channels))}, H, W) input in the "
            f"{input_space!r} space, got shape {x.shape}"
        )
    if input_space == "unit":
        pixels = np.repeat(x, 3 // len(x), axis=0).transpose(1, 2, 0) * 255
    else:
        pixels = from_input_space(x.transpose(1, 2, 0), input_space)
    return np.ascontiguousarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def stitch(images: Sequence[np.ndarray], n: int = 4, margin: int = 5) -> np.ndarray:
    """An ``n x n`` grid of equally sized ``(H, W, 3)`` images, row by row, ``margin`` black
    pixels between neighbours (none around the outside). Missing cells stay black."""
    if n < 1 or margin < 0:
        raise ValueError(f"stitch needs n >= 1 and margin >= 0, got n={n}, margin={margin}")
    if not images:
        raise ValueError("stitch needs at least one image")
    if len(images) > n * n:
        raise ValueError(f"{len(images)} images do not fit an {n}x{n} grid")
    h, w = images[0].shape[:2]
    for i, image in enumerate(images):
        if image.shape != images[0].shape or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"image {i} has shape {image.shape}; all must be {images[0].shape} (H, W, 3)"
            )
    grid = np.zeros((n * h + (n - 1) * margin, n * w + (n - 1) * margin, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        row, col = divmod(index, n)
        top, left = row * (h + margin), col * (w + margin)
        grid[top : top + h, left : left + w] = image
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 image as the bytes of a PNG file. Needs Pillow (``image`` extra)."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            "saving PNG files needs Pillow (the 'image' extra): pip install Pillow"
        ) from err
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a PNG needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an ``(H, W, 3)`` uint8 image as PNG (atomically). Needs Pillow (``image`` extra)."""
    data = png_bytes(image)
    with atomic_write(path) as handle:
        handle.write(data)
