"""A small CNN on handwritten digits: convolution, batch normalisation, dropout and pooling.

Trains on the 8x8 digits that scikit-learn ships (1797 images, no download) with AdamW and a
one-cycle learning-rate schedule, shows a progress bar (tqdm, if installed), reports the test
accuracy and saves a loss/accuracy plot (matplotlib, if installed). With ``--atlas DIR`` it then
renders what every filter of the trained network has learned -- the microscope's atlas of its
three convolution layers, ``DIR/index.html`` (Pillow needed). Run:

    python examples/mnist_like.py            # full run: 15 epochs
    python examples/mnist_like.py --fast     # 4 epochs on 400 images, for tests
    python examples/mnist_like.py --plot curves.png --epochs 20
    python examples/mnist_like.py --atlas digits_atlas

``TINYGRAD_EDU_FAST=1`` in the environment acts like ``--fast``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn, optim
from tinygrad_edu.data import DataLoader, TensorDataset
from tinygrad_edu.optim.lr_scheduler import OneCycleLR
from tinygrad_edu.progress import progress_bar
from tinygrad_edu.vis import microscope


def load_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels): NCHW float32 in [0, 1], 25% test."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = len(labels) * 3 // 4
    train, test = order[:cut], order[cut:]
    return images[train], labels[train], images[test], labels[test]


class DigitNet(nn.Module):
    """conv-BN-ReLU x2, max pool, dropout, conv-BN-ReLU, global average pool, linear."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False, rng=seed),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, bias=False, rng=seed + 1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Dropout(0.1, rng=seed + 2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False, rng=seed + 3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.2, rng=seed + 4), nn.Linear(64, 10, rng=seed + 5)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    with tg.no_grad():
        predictions = model(Tensor(images)).data.argmax(axis=1)
    model.train()
    return float((predictions == labels).mean())


def train(
    epochs: int, subset: int | None = None, progress: bool = True, seed: int = 0
) -> tuple[DigitNet, dict]:
    """Train a fresh ``DigitNet``; returns it, and the per-epoch history and final test accuracy."""
    x_train, y_train, x_test, y_test = load_digits(seed)
    if subset is not None:
        x_train, y_train = x_train[:subset], y_train[:subset]
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, rng=seed)
    model = DigitNet(seed)
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = OneCycleLR(optimizer, max_lr=1e-2, epochs=epochs, steps_per_epoch=len(loader))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    history: dict[str, list[float]] = {"loss": [], "train_accuracy": [], "test_accuracy": []}
    with progress_bar(epochs * len(loader), "training", enabled=progress, unit="batch") as bar:
        for _ in range(epochs):
            total = 0.0
            for images, labels in loader:
                optimizer.zero_grad()
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(labels)
                bar.update()
                bar.set_postfix_str(f"loss {loss.item():.3f}")
            history["loss"].append(total / len(y_train))
            history["train_accuracy"].append(accuracy(model, x_train, y_train))
            history["test_accuracy"].append(accuracy(model, x_test, y_test))
    history["final_test_accuracy"] = history["test_accuracy"][-1]
    return model, history


def save_plot(history: dict, path: Path) -> bool:
    """Loss and accuracy per epoch as a PNG; ``False`` (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot saved (pip install matplotlib)")
        return False
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, history["loss"], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    right.plot(epochs, history["train_accuracy"], marker="o", label="train")
    right.plot(epochs, history["test_accuracy"], marker="o", label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--fast", action="store_true", help="4 epochs on 400 images (seconds)")
    parser.add_argument("--plot", type=Path, default=Path("mnist_like.png"))
    parser.add_argument(
        "--atlas", type=Path, help="render every filter of the trained network into this folder"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    fast = args.fast or bool(os.environ.get("TINYGRAD_EDU_FAST"))
    epochs, subset = (4, 400) if fast else (args.epochs, None)
    start = time.perf_counter()
    model, history = train(epochs, subset, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    for epoch, (loss, test) in enumerate(zip(history["loss"], history["test_accuracy"]), 1):
        print(f"epoch {epoch:2d}  loss {loss:.4f}  test accuracy {test:.1%}")
    print(
        f"test accuracy {history['final_test_accuracy']:.2%} after {epochs} epochs, {seconds:.1f} s"
    )
    if save_plot(history, args.plot):
        print(f"saved the loss/accuracy plot to {args.plot}")
    history["seconds"] = seconds
    if args.atlas is not None:
        history["atlas"] = render_atlas(model, args.atlas, progress=not args.no_progress)
    return history


def render_atlas(model: DigitNet, out: Path, progress: bool = True) -> dict:
    """Every filter of the network's three convolutions, as the microscope's atlas.

    ``model.features`` is an ``nn.Sequential``, so its layers are named by position: ``"0"``,
    ``"3"`` and ``"8"``. Its inputs are grey pixels on 0..1, the microscope's default for a
    Sequential. The images are 16 x 16, twice the digits' size, so that the deeper filters
    (which see most of the picture) have room; each ascent step moves a pixel by about one grey
    level (1/255), so 100 steps rather than the document's 20 let patterns grow out of the noise.
    """
    with progress_bar(0, "atlas", enabled=progress, unit="filter") as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        atlas = microscope(model.features, out, steps=100, size=16, progress=report)
    layers = dict.fromkeys(entry["layer"] for entry in atlas["filters"])
    print(
        f"atlas of {len(atlas['filters'])} filters in layers {', '.join(layers)}: {out}/index.html"
    )
    return atlas


if __name__ == "__main__":
    main()
