"""The document's filter grids for VGG16's first layer, from pretrained weights.

Looks for the Keras ImageNet weights in ``$TINYGRAD_EDU_WEIGHTS`` or ``../shared/weights`` (next to
the repository); without them it says so and exits cleanly. Writes ``block1_conv1_4x4.png``.
Run:

    python examples/filter_grids.py

(``TINYGRAD_EDU_FAST=1`` uses 16 filters, 5 steps and 64x64 images.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tinygrad_edu.models.vgg import vgg16
from tinygrad_edu.vis import best, save_png, stitch, visualize_filters

FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def find_weights() -> Path | None:
    candidates = [os.environ.get("TINYGRAD_EDU_WEIGHTS", "")]
    candidates.append(str(Path(__file__).resolve().parents[2] / "shared" / "weights" / FILE))
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def main() -> None:
    weights = find_weights()
    if weights is None:
        print(f"skipping: no {FILE} found (set TINYGRAD_EDU_WEIGHTS to its path)")
        return
    fast = bool(os.environ.get("TINYGRAD_EDU_FAST"))
    filters, steps, size = (16, 5, 64) if fast else (64, 20, 128)
    model = vgg16(weights).freeze()
    start = time.perf_counter()
    results = visualize_filters(model, "block1_conv1", filters, steps=steps, size=size)
    grid = stitch([image for _, image, _ in best(results, 16)], n=4, margin=5)
    save_png("block1_conv1_4x4.png", grid)
    print(f"{len(results)} of {filters} filters kept in {time.perf_counter() - start:.1f} s")
    print(f"wrote block1_conv1_4x4.png ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
