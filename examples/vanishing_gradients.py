"""Vanishing gradients, watched with hooks.

A stack of 10 layers; a hook on each layer's output records the norm of the gradient that flows
through it during backward (``Tensor.register_hook``). With sigmoids, each layer multiplies the
gradient by at most 0.25 (the sigmoid's largest slope), so it shrinks geometrically towards the
input; with tanh the slope can reach 1 and far less is lost. Run:

    python examples/vanishing_gradients.py
"""

from __future__ import annotations

import numpy as np

from tinygrad_edu import Tensor, nn


def gradient_norms(activation: type[nn.Module], depth: int = 10, width: int = 32) -> list[float]:
    rng = np.random.default_rng(0)
    layers = [nn.Linear(width, width, rng=rng) for _ in range(depth)]
    x = Tensor(rng.standard_normal((64, width)))
    norms: dict[int, float] = {}
    h = x
    for index, layer in enumerate(layers):
        h = activation()(layer(h))
        h.register_hook(
            lambda g, index=index: norms.__setitem__(index, float(np.linalg.norm(g.data)))
        )
    h.sum().backward()
    return [norms[i] for i in range(depth)]


def main() -> dict[str, list[float]]:
    results = {}
    for activation in (nn.Sigmoid, nn.Tanh):
        norms = gradient_norms(activation)
        results[activation.__name__] = norms
        print(f"{activation.__name__:8s} |dL/dh| from the input side to the output side:")
        print("  " + "  ".join(f"{n:.1e}" for n in norms))
        print(f"  the first layer receives {norms[0] / norms[-1]:.1e} of the last layer's gradient")
    return results


if __name__ == "__main__":
    main()
