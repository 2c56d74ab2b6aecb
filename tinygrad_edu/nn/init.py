r"""Weight initialisation helpers.

Each returns a new :class:`~tinygrad_edu.nn.Parameter` (``requires_grad=True``). ``rng`` is a
``numpy.random.Generator`` or a seed; pass one to make training reproducible.

* :func:`normal` -- :math:`N(\mu, \sigma^2)`, e.g. the worked example's :math:`N(0, 0.15)` weights.
* :func:`uniform` -- :math:`U(a, b)`.
* :func:`xavier_uniform` -- :math:`U(\pm\sqrt{6 / (fan_{in} + fan_{out})})` (Glorot), suits tanh and
  sigmoid layers.
* :func:`kaiming_normal` -- :math:`N(0, 2 / fan_{in})` (He), suits ReLU layers.
* :func:`zeros` -- all zeros (biases).
"""

from __future__ import annotations

import numpy as np

from .module import Parameter

Shape = tuple[int, ...]
RNG = np.random.Generator | int | None


def _leaf(values: np.ndarray, dtype: type) -> Parameter:
    return Parameter(values.astype(dtype, copy=False))


def _fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a ``(out, in, *kernel)`` weight."""
    if len(shape) < 2:
        raise ValueError(f"fan-in/fan-out need a weight of at least 2 dimensions, got {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def normal(
    shape: Shape, mean: float = 0.0, std: float = 1.0, rng: RNG = None, dtype=np.float32
) -> Parameter:
    """A Parameter of samples from N(``mean``, ``std``^2); ``rng`` is a Generator or a seed."""
    return _leaf(np.random.default_rng(rng).normal(mean, std, size=shape), dtype)


def uniform(
    shape: Shape, low: float = 0.0, high: float = 1.0, rng: RNG = None, dtype=np.float32
) -> Parameter:
    """A Parameter of samples from U[``low``, ``high``); ``rng`` is a Generator or a seed."""
    return _leaf(np.random.default_rng(rng).uniform(low, high, size=shape), dtype)


def zeros(shape: Shape, dtype=np.float32) -> Parameter:
    """A Parameter of zeros (e.g. for biases)."""
    return _leaf(np.zeros(shape), dtype)


def xavier_uniform(shape: Shape, gain: float = 1.0, rng: RNG = None, dtype=np.float32) -> Parameter:
    """Glorot/Xavier: U[-b, b] with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(shape)
    bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, rng, dtype)


def kaiming_normal(shape: Shape, rng: RNG = None, dtype=np.float32) -> Parameter:
    """He: N(0, 2 / fan_in), for layers followed by a ReLU."""
    fan_in, _ = _fans(shape)
    return normal(shape, 0.0, np.sqrt(2.0 / fan_in), rng, dtype)
