"""A custom network on a toy dataset: two interleaved spirals, classified by a small MLP.

Shows the library the way a user builds with it: a Module subclass, CrossEntropyLoss, Adam,
a checkpoint. Run:

    python examples/toy_network.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn, optim


def spirals(points_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two spirals in the plane, labels 0 and 1."""
    t = np.sqrt(rng.uniform(0, 1, points_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * points_per_class, 2))
    y = np.concatenate([np.zeros(points_per_class), np.ones(points_per_class)]).astype(np.int64)
    return x.astype(np.float32), y


class SpiralNet(nn.Module):
    def __init__(self, hidden: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(2, hidden, rng=seed),
            nn.Tanh(),
            nn.Linear(hidden, hidden, rng=seed + 1),
            nn.Tanh(),
            nn.Linear(hidden, 2, rng=seed + 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def main() -> float:
    epochs = 150 if os.environ.get("TINYGRAD_EDU_FAST") else 1500
    x, y = spirals(200, np.random.default_rng(0))
    model = SpiralNet()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    inputs = Tensor(x)
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), y)
        loss.backward()
        optimizer.step()
        if epoch % (epochs // 5) == 0:
            with tg.no_grad():
                accuracy = float((model(inputs).data.argmax(axis=1) == y).mean())
            print(f"epoch {epoch:5d}  loss {loss.item():.4f}  accuracy {accuracy:.1%}")
    with tempfile.TemporaryDirectory() as folder:
        path = tg.save(model.state_dict(), Path(folder) / "spirals.npz")
        restored = SpiralNet(seed=99)
        restored.load_state_dict(tg.load(path))
        with tg.no_grad():
            same = np.allclose(restored(inputs).data, model(inputs).data)
    print(f"checkpoint round trip reproduces the model: {same}")
    return accuracy


if __name__ == "__main__":
    main()
