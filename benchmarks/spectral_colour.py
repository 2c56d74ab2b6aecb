"""Colour of the improved mode's spectral images, against its pixel images of the same filters.

For each layer, the same filters are drawn by ``visualize_filters(mode="improved")`` twice: with
the pixel parameterisation and with the spectral one (default settings otherwise). Per picture
(uint8 RGB, as the command line saves it):

* **channel-mean spread** -- max - min of the picture's mean R, G and B (0..255): a colour cast;
* **chroma** -- the mean over pixels of max - min over the three channels: how colourful it is;
  measured after removing the tint (each channel's mean replaced by the picture's overall mean,
  then clipped to 0..255), so that a cast does not count as colour;
* **chroma ratio** -- a spectral picture's chroma over the pixel picture's, filter by filter.

Prints one line per filter, then one dated Markdown table with a row per layer (over the filters
kept in both parameterisations).

    python benchmarks/spectral_colour.py --weights PATH [--layers ...] [--filters 8] [--size 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from report import markdown_table

from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis import visualize_filters

LAYERS = ("block2_conv2", "block3_conv3", "block4_conv3")


def channel_mean_spread(picture: np.ndarray) -> float:
    """max - min over R, G, B of the channel's mean value (an ``(H, W, 3)`` picture)."""
    means = picture.reshape(-1, 3).astype(np.float64).mean(axis=0)
    return float(means.max() - means.min())


def without_tint(picture: np.ndarray) -> np.ndarray:
    """The picture with every channel's mean moved to the overall mean, clipped to 0..255."""
    pixels = picture.astype(np.float64)
    means = pixels.reshape(-1, 3).mean(axis=0)
    return np.clip(pixels - means + means.mean(), 0, 255)


def chroma(picture: np.ndarray) -> float:
    """Mean over pixels of max - min over the three channels, tint removed."""
    pixels = without_tint(picture)
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean())


def pictures(
    model, layer: str, filters: list[int], size: int, steps: int, kind: str
) -> tuple[dict[int, np.ndarray], float]:
    """``{filter: picture}`` of the kept filters, and the seconds it took."""
    start = time.perf_counter()
    results = visualize_filters(
        model, layer, filters, steps, size=size, mode="improved", parameterization=kind
    )
    return {f: image for f, image, _ in results}, time.perf_counter() - start


def _span(values: list[float], digits: int) -> str:
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="VGG16 weights file (real weights)")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS))
    parser.add_argument("--filters", type=int, default=8, help="the first N filters per layer")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per octave (default 20)")
    args = parser.parse_args(argv)

    model = vgg16(args.weights).freeze()
    rows = []
    for layer in args.layers:
        filters = list(range(args.filters))
        pixel, pixel_seconds = pictures(model, layer, filters, args.size, args.steps, "pixel")
        spectral, spectral_seconds = pictures(
            model, layer, filters, args.size, args.steps, "spectral"
        )
        both = [f for f in filters if f in pixel and f in spectral]
        pixel_spread, spectral_spread, ratios = [], [], []
        for f in both:
            pixel_spread.append(channel_mean_spread(pixel[f]))
            spectral_spread.append(channel_mean_spread(spectral[f]))
            ratios.append(chroma(spectral[f]) / chroma(pixel[f]))
            print(
                f"{layer} filter {f:3d}: channel-mean spread pixel {pixel_spread[-1]:5.1f}, "
                f"spectral {spectral_spread[-1]:5.1f}; chroma pixel {chroma(pixel[f]):5.1f}, "
                f"spectral {chroma(spectral[f]):5.1f}, ratio {ratios[-1]:.2f}",
                flush=True,
            )
        if not both:
            rows.append([layer, f"0 / {len(filters)}", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                layer,
                f"{len(both)} / {len(filters)}",
                _span(pixel_spread, 1),
                _span(spectral_spread, 1),
                f"{_span(ratios, 2)} (mean {np.mean(ratios):.2f})",
                f"{pixel_seconds:.0f} s / {spectral_seconds:.0f} s",
            ]
        )
    header = [
        "layer",
        "filters (kept in both)",
        "channel-mean spread, pixel",
        "channel-mean spread, spectral",
        "chroma ratio spectral / pixel (tint removed)",
        "time pixel / spectral",
    ]
    title = (
        f"Improved mode, spectral vs pixel parameterisation: the first {args.filters} filters per "
        f"layer, {args.steps} steps per octave, {args.size}x{args.size}, seed 0"
    )
    print(markdown_table(title, header, rows))


if __name__ == "__main__":
    main()
