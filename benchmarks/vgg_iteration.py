"""One input-space gradient-ascent iteration of VGG16: tinygrad_edu vs PyTorch on the CPU.

The iteration is the filter-visualisation step: forward 128x128 images to ``block5_conv3``, take
the mean activation of one filter per image, and compute its gradient with respect to the input
(weights frozen). Both frameworks run the same weights (random, or ``--weights PATH`` for a
Keras/PyTorch file) in the same process, alternating rounds; the script prints the median time
per iteration and per image, the ratio, and the peak memory of each (tracemalloc for NumPy
arrays; PyTorch's CPU allocator is not traced, so its figure is the process's peak RSS growth).

    python benchmarks/vgg_iteration.py [--batch 1 16] [--rounds 5] [--weights PATH]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

import numpy as np
from torch_vgg import torch_features

import tinygrad_edu as tg
from tinygrad_edu.models.vgg import vgg16

LAYER = "block5_conv3"


def ours_step(model, x: np.ndarray):
    def step() -> np.ndarray:
        image = tg.Tensor(x, requires_grad=True)
        activation = model(image, until=LAYER)
        filters = np.arange(x.shape[0]) % activation.shape[1]
        loss = activation[np.arange(x.shape[0]), filters].mean(axis=(1, 2)).sum()
        (g,) = tg.grad(loss, [image])
        return g.data

    return step


def torch_step(model, x: np.ndarray):
    import torch

    net = torch_features(model, LAYER)

    def step() -> np.ndarray:
        image = torch.from_numpy(x).requires_grad_(True)
        activation = net(image)
        filters = torch.arange(x.shape[0]) % activation.shape[1]
        loss = activation[torch.arange(x.shape[0]), filters].mean(dim=(1, 2)).sum()
        (g,) = torch.autograd.grad(loss, [image])
        return g.numpy()

    return step


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--weights", default=None, help="weights file (default: random weights)")
    args = parser.parse_args(argv)

    model = vgg16(args.weights, rng=0) if args.weights else vgg16(rng=0).requires_grad_(False)
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    results = {}
    for batch in args.batch:
        x = (
            np.random.default_rng(0)
            .uniform(-20, 20, (batch, 3, args.size, args.size))
            .astype(np.float32)
        )
        contenders = {"tinygrad_edu": ours_step(model, x)}
        if torch is not None:
            contenders["torch"] = torch_step(model, x)
        outputs = {name: step() for name, step in contenders.items()}  # warm-up, and a check
        times: dict[str, list[float]] = {name: [] for name in contenders}
        memory = {}
        for name, step in contenders.items():
            rss_before = peak_rss_mb()
            tracemalloc.start()
            step()
            memory[name] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            if name == "torch":
                memory[name] = max(peak_rss_mb() - rss_before, 0.0)
        for _ in range(args.rounds):
            for name, step in contenders.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"batch {batch}, {args.size}x{args.size}, forward to {LAYER} + input gradient:")
        for name, seconds in medians.items():
            per_image = seconds / batch * 1e3
            peak = f"{memory[name]:7.0f} MiB" if memory[name] > 0 else "not measurable here"
            print(
                f"  {name:13s} {seconds * 1e3:8.1f} ms/iteration  {per_image:7.1f} ms/image", end=""
            )
            print(f"   peak memory {peak}")
        if "torch" in medians:
            ratio = medians["tinygrad_edu"] / medians["torch"]
            gap = np.abs(outputs["tinygrad_edu"] - outputs["torch"]).max()
            scale = max(float(np.abs(outputs["torch"]).max()), 1e-30)
            print(f"  ratio tinygrad_edu / torch: {ratio:.2f}x", end="")
            print(
                f"   (input gradients differ by at most {gap / scale:.1e} of their largest value)"
            )
        else:
            print("  torch not installed (pip install torch==2.13.0): no reference")
        results[batch] = medians
    return results


if __name__ == "__main__":
    main()
