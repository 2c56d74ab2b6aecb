"""What an atlas holds and what is left to render: its parameters, the weights' fingerprint,
each layer's key, and the tasks.

A filter's picture depends only on the weights, its layer and index, and the parameters below;
every finished filter's record carries the **key** of its layer -- a hash of all of them -- so a
re-run knows which pictures it may keep: same key, keep; any change (other weights, steps, size,
mode, seed), render again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...kernels.fast import threads
from ..ascent import AscentSettings
from ..targets import LAYER_NAME, Target

#: images optimised at once (the ``visualize`` command's default), fewer for smaller layers
BATCH = 16
#: the most filters one task renders: a few batches, so that the classic ascent can refill
#: slots whose filters died early instead of running half-empty batches
TASK_BATCHES = 4
MODES = ("classic", "improved")
#: limits of the options that decide memory and time (as the visualize command's)
MAX_STEPS, MIN_SIZE, MAX_SIZE = 100_000, 8, 256


@dataclass(frozen=True)
class Plan:
    """The request: which filters of which layers, rendered how."""

    target: Target
    layers: tuple[str, ...]
    filters: dict[str, tuple[int, ...]]
    steps: int
    size: int
    mode: str
    seed: int
    weights: str  # the fingerprint of the network
    shares: int  # how many shares the kernels cut their work into (see ``parameters``)

    @property
    def parameters(self) -> dict:
        """The atlas's ``parameters``: everything a picture depends on (the weights by their
        SHA-256 fingerprint), plus the model's name.

        That includes ``kernel_shares``, the number of shares this process's kernels cut their
        work into (one per thread, :mod:`~tinygrad_edu.kernels.fast.threads`): it sets the size
        of their matrix products, and BLAS may round a smaller product's sums differently, so
        it can change a picture's last bits. Cluster tasks use the planning process's count."""
        return {
            "model": self.target.label,
            "weights": self.weights,
            "input_space": self.target.input_space,
            "mode": self.mode,
            "steps": self.steps,
            "size": self.size,
            "seed": self.seed,
            "batch": BATCH,
            "kernel_shares": self.shares,
        }

    def settings(self, layer: str) -> AscentSettings:
        """The ascent's settings for ``layer``: its batch depends on the layer alone."""
        batch = min(BATCH, self.target.channels(layer))
        return AscentSettings(self.steps, 1.0, self.size, batch, self.seed)


def make_plan(
    target: Target,
    layers: Sequence[str] | None,
    filters: int | None,
    steps: int,
    size: int,
    mode: str,
    seed: int,
) -> Plan:
    """Check the request and name every filter it covers (``ValueError``/``TypeError`` naming
    what is wrong)."""
    for name, value, low, high in (
        ("steps", steps, 1, MAX_STEPS),
        ("size", size, MIN_SIZE, MAX_SIZE),
        ("seed", seed, 0, 2**63 - 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{name} must be from {low} to {high}, got {value}")
    if mode not in MODES:
        raise ValueError(f"mode must be 'classic' or 'improved', got {mode!r}")
    if filters is not None and (
        not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1
    ):
        raise ValueError(f"filters must be a count of at least 1 (or None: all), got {filters!r}")
    if layers is None:
        chosen = tuple(target.layers)
    elif isinstance(layers, str) or not all(isinstance(name, str) for name in layers):
        raise TypeError(f"layers must be a list of layer names, got {layers!r}")
    else:
        chosen = tuple(dict.fromkeys(layers))
        for name in chosen:
            target.layer(name)  # ValueError listing the valid names
        if not chosen:
            raise ValueError("layers is empty: name at least one layer (or None: all)")
    for name in chosen:
        _check_folder_name(name)
    counts = {name: target.channels(name) for name in chosen}
    wanted = {
        name: tuple(range(count if filters is None else min(int(filters), count)))
        for name, count in counts.items()
    }
    return Plan(
        target,
        chosen,
        wanted,
        int(steps),
        int(size),
        mode,
        int(seed),
        fingerprint(target),
        threads.workers(),
    )


def _check_folder_name(layer: str) -> None:
    """A layer's pictures go to ``<out>/<layer>/``: its name must be one folder inside ``out``
    (a hand-made :class:`~..targets.Target` may name layers freely)."""
    if not LAYER_NAME.fullmatch(layer) or layer in (".", ".."):
        raise ValueError(
            f"layer name {layer!r} cannot be a folder name: use letters, digits, '_', '-' and "
            "'.' (not '.' or '..' alone)"
        )


def fingerprint(target: Target) -> str:
    """SHA-256 of the network as the ascent sees it: every module's type and settings (its
    ``repr``) and the bytes, dtype and shape of its parameters and buffers, in order."""
    digest = hashlib.sha256()
    for module in target.modules:
        digest.update(repr(module).encode("utf-8"))
        arrays = [*module.named_parameters(), *module.named_buffers()]
        for name, tensor in arrays:
            data = np.ascontiguousarray(tensor.data)
            digest.update(f"{name} {data.dtype.str} {data.shape}".encode())
            digest.update(data.tobytes())
    return digest.hexdigest()


def layer_key(parameters: dict, layer: str) -> str:
    """The key of ``layer``'s pictures under ``parameters`` (see the module docstring)."""
    text = json.dumps({"parameters": parameters, "layer": layer}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def tasks(todo: Sequence[int], batch: int, workers: int) -> list[tuple[int, ...]]:
    """Cut a layer's filters still to render into tasks for ``workers`` workers.

    A task holds one to :data:`TASK_BATCHES` batches: enough for every worker to get about two
    tasks of the layer (so no worker idles while another finishes a long one), but no more
    batches than needed.
    """
    if not todo:
        return []
    per_task = math.ceil(len(todo) / (2 * max(1, workers)))
    size = min(TASK_BATCHES * batch, max(batch, per_task))
    return [tuple(todo[i : i + size]) for i in range(0, len(todo), size)]
