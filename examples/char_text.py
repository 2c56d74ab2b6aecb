r"""What the two character-level language models share: text, batches, training, plots, samples.

``char_transformer.py`` and ``char_rnn.py`` differ only in their model; everything around the
model lives here, so the two stay comparable:

* **the corpus** -- the Markdown pages of the project's own ``docs/`` folder, joined in path
  order; the first 90% trains, the last 10% (one contiguous piece, never seen in training)
  measures generalisation;
* **the vocabulary** -- every distinct character, numbered in sorted order (``encode`` /
  ``decode``);
* **batches** -- ``B`` random windows of ``T + 1`` characters: the first ``T`` are the input, the
  last ``T`` (the same window shifted by one) the targets, so every position ``t`` is asked to
  predict character ``t + 1`` from characters ``0..t``;
* **baselines** -- before training, a model that gives every character the same probability
  pays :math:`\ln V` nats per character; a model that has learned only how often each character
  occurs (the *unigram* model, no context at all) pays the cross-entropy of the training
  frequencies on the validation text,

  .. math::

      H_{\text{unigram}} = -\frac{1}{N} \sum_{n=1}^{N} \ln p_{\text{train}}(c_n),

  the entropy of the character frequencies when training and validation text look alike. A
  validation loss below it is learning that uses the context;
* **training** -- AdamW (weight decay on the matrices only), a linear warm-up then a cosine
  decay of the learning rate, a progress bar, the validation loss every few steps;
* **the plot** and **sampling** -- any model that maps ids ``(B, T)`` to logits ``(B, T, V)``
  generates text one character at a time.

The two examples import this module; run on its own, it describes the corpus:

    python examples/char_text.py
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn, optim
from tinygrad_edu.nn import functional as F
from tinygrad_edu.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from tinygrad_edu.progress import progress_bar

DOCS = Path(__file__).resolve().parents[1] / "docs"

LanguageModel = Callable[[np.ndarray], Tensor]  # ids (B, T) -> logits (B, T, V)


def load_corpus(folder: Path = DOCS) -> str:
    """Every ``*.md`` file under ``folder`` (sorted by path), joined by blank lines."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no docs folder at {folder}: the character-level examples train on the project's "
            "own documentation, so run them from a checkout of the repository"
        )
    pages = sorted(folder.rglob("*.md"))
    text = "\n\n".join(page.read_text(encoding="utf-8") for page in pages)
    if not text.strip():
        raise ValueError(f"no text to train on: {folder} holds no non-empty *.md file")
    return text


class Vocabulary:
    """The distinct characters of a text, numbered in sorted order."""

    def __init__(self, text: str) -> None:
        self.characters = sorted(set(text))
        if len(self.characters) < 2:
            raise ValueError(
                f"a vocabulary needs at least 2 distinct characters, the text has "
                f"{len(self.characters)}"
            )
        self.index = {character: i for i, character in enumerate(self.characters)}

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters, int64; a character outside the vocabulary raises."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {''.join(unknown)!r}")
        return np.array([self.index[character] for character in text], dtype=np.int64)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """The text whose characters have these ids."""
        return "".join(self.characters[i] for i in np.asarray(ids).ravel())


@dataclass
class Corpus:
    """A text encoded once: the vocabulary and the train/validation ids (the validation part is
    the last ``validation_fraction`` of the text, one contiguous piece)."""

    vocabulary: Vocabulary
    train: np.ndarray
    validation: np.ndarray

    @classmethod
    def from_text(cls, text: str, validation_fraction: float = 0.1) -> Corpus:
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction}"
            )
        vocabulary = Vocabulary(text)
        ids = vocabulary.encode(text)
        cut = len(ids) - max(1, round(len(ids) * validation_fraction))
        return cls(vocabulary, ids[:cut], ids[cut:])


def random_windows(
    ids: np.ndarray, batch_size: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` windows of ``ids`` at random starts: inputs ``(B, T)`` and targets
    ``(B, T)``, the targets being the inputs shifted by one character."""
    if len(ids) < length + 1:
        raise ValueError(f"windows of {length} + 1 characters need more than {len(ids)} ids")
    starts = rng.integers(0, len(ids) - length, size=batch_size)
    window = starts[:, None] + np.arange(length + 1)
    chunk = ids[window]
    return chunk[:, :-1], chunk[:, 1:]


def tiled_windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows covering ``ids`` (the last partial one dropped): every character
    of the validation text is predicted once."""
    count = (len(ids) - 1) // length
    if count == 0:
        raise ValueError(f"windows of {length} + 1 characters need more than {len(ids)} ids")
    inputs = ids[: count * length].reshape(count, length)
    targets = ids[1 : count * length + 1].reshape(count, length)
    return inputs, targets


def unigram_baseline(train: np.ndarray, validation: np.ndarray, vocabulary_size: int) -> float:
    r"""The validation cross-entropy (nats per character) of the training set's character
    frequencies, :math:`p(c) = (n_c + 1) / (N + V)`.

    The added one (Laplace smoothing) keeps a character that never occurs in training from
    costing :math:`-\ln 0 = \infty`; with ~100 000 training characters it moves nothing else.
    """
    counts = np.bincount(train, minlength=vocabulary_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[validation].mean())


def language_model_loss(model: LanguageModel, inputs: np.ndarray, targets: np.ndarray) -> Tensor:
    """Mean cross-entropy of the next character, over all ``B * T`` positions."""
    logits = model(inputs)
    batch, length, vocabulary_size = logits.shape
    return F.cross_entropy(logits.reshape(batch * length, vocabulary_size), targets.reshape(-1))


def evaluate(
    model: nn.Module, inputs: np.ndarray, targets: np.ndarray, batch_size: int = 64
) -> float:
    """Mean loss over the given windows, in evaluation mode and without a graph."""
    model.eval()
    total = 0.0
    with tg.no_grad():
        for start in range(0, len(inputs), batch_size):
            chunk = slice(start, start + batch_size)
            loss = language_model_loss(model, inputs[chunk], targets[chunk])
            total += loss.item() * len(inputs[chunk])
    model.train()
    return total / len(inputs)


@dataclass
class Schedule:
    """How long and how fast to train."""

    steps: int
    batch_size: int
    length: int  # T, the characters of context each window holds
    learning_rate: float
    warmup: int  # steps of linear warm-up from learning_rate / warmup
    weight_decay: float = 0.1
    clip: float = 1.0  # the largest gradient norm (a rare huge gradient cannot throw us off)
    evaluations: int = 10  # validation losses along the way (the last one at the end)
    validation: int | None = None  # characters of validation text read (its start), None: all
    sample: int = 300  # characters generated after training, for each of three samples


def make_optimizer(model: nn.Module, schedule: Schedule) -> tuple[optim.AdamW, SequentialLR]:
    r"""AdamW with weight decay on the weight matrices (and embedding tables) only, and the
    learning rate's schedule: linear warm-up, then a cosine decay to a tenth.

    Decaying a bias or a LayerNorm gain towards 0 would only fight their purpose (shifts and
    scales), so those are left alone, as in GPT-2 and nanoGPT. The warm-up lets Adam's running
    averages :math:`m, v` settle before the steps become large.
    """
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    vectors = [p for p in model.parameters() if p.ndim < 2]
    optimizer = optim.AdamW(
        [
            {"params": matrices, "weight_decay": schedule.weight_decay},
            {"params": vectors, "weight_decay": 0.0},
        ],
        lr=schedule.learning_rate,
        betas=(0.9, 0.99),
    )
    warmup = max(1, min(schedule.warmup, schedule.steps - 1))
    decay = max(1, schedule.steps - warmup)
    rates = SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=decay, eta_min=schedule.learning_rate / 10),
        ],
        milestones=[warmup],
    )
    return optimizer, rates


def train(
    model: nn.Module,
    corpus: Corpus,
    schedule: Schedule,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    r"""Train ``model`` on random windows of ``corpus.train``; returns the history.

    The history holds ``loss`` (the training loss of every step), ``steps`` and ``train_loss``
    (the evaluations' steps, and the training loss averaged since the previous one),
    ``val_loss`` (on every non-overlapping window of the validation text, or of its first
    ``schedule.validation`` characters), ``initial_val_loss`` (before the first step),
    ``baseline`` (:func:`unigram_baseline` on the same validation text), ``uniform``
    (:math:`\ln V`), ``parameters``, ``seconds``, ``learning_rates`` and
    ``validation_characters``.
    """
    rng = np.random.default_rng(seed)
    validation = corpus.validation[: schedule.validation]
    val_inputs, val_targets = tiled_windows(validation, schedule.length)
    vocabulary_size = len(corpus.vocabulary)
    history: dict = {
        "validation_characters": len(validation),
        "baseline": unigram_baseline(corpus.train, validation, vocabulary_size),
        "uniform": math.log(vocabulary_size),
        "parameters": sum(p.size for p in model.parameters()),
        "initial_val_loss": evaluate(model, val_inputs, val_targets),
        "steps": [],
        "loss": [],
        "train_loss": [],
        "val_loss": [],
        "learning_rates": [],
    }
    optimizer, rates = make_optimizer(model, schedule)
    every = max(1, schedule.steps // schedule.evaluations)
    running: list[float] = []
    start = time.perf_counter()
    with progress_bar(schedule.steps, "training", enabled=progress, unit="step") as bar:
        for step in range(1, schedule.steps + 1):
            inputs, targets = random_windows(
                corpus.train, schedule.batch_size, schedule.length, rng
            )
            optimizer.zero_grad()
            loss = language_model_loss(model, inputs, targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), schedule.clip)
            history["learning_rates"].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            rates.step()
            running.append(loss.item())
            history["loss"].append(running[-1])
            bar.update()
            if step % every == 0 or step == schedule.steps:
                history["steps"].append(step)
                history["train_loss"].append(float(np.mean(running)))
                history["val_loss"].append(evaluate(model, val_inputs, val_targets))
                running = []
                bar.set_postfix_str(
                    f"train {history['train_loss'][-1]:.3f}  val {history['val_loss'][-1]:.3f}"
                )
    history["seconds"] = time.perf_counter() - start
    history["final_val_loss"] = history["val_loss"][-1]
    return history


def report(history: dict) -> None:
    """Print the run's numbers: the losses along the way against the baseline, the time."""
    print(f"{history['parameters']:,} parameters")
    print(f"step     0               val {history['initial_val_loss']:.3f}")
    for step, train_loss, val_loss in zip(
        history["steps"], history["train_loss"], history["val_loss"]
    ):
        print(f"step {step:5d}  train {train_loss:.3f}  val {val_loss:.3f}")
    print(
        f"validation loss {history['final_val_loss']:.3f} nats/char against the unigram "
        f"baseline {history['baseline']:.3f} (on {history['validation_characters']:,} "
        f"validation characters), after {history['steps'][-1]} steps in "
        f"{history['seconds']:.1f} s"
    )


def save_plot(history: dict, path: Path, title: str) -> bool:
    """Training and validation loss against the step, with the two baselines as lines; a PNG.
    ``False`` (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot saved (pip install matplotlib)")
        return False
    figure, axes = plt.subplots(figsize=(6, 4))
    steps = np.arange(1, len(history["loss"]) + 1)
    axes.plot(steps, history["loss"], linewidth=0.6, alpha=0.7, label="train (each batch)")
    axes.plot(
        [0, *history["steps"]],
        [history["initial_val_loss"], *history["val_loss"]],
        marker="o",
        label="validation",
    )
    axes.axhline(history["baseline"], color="grey", linestyle="--", label="unigram baseline")
    axes.axhline(history["uniform"], color="grey", linestyle=":", label="uniform, ln V")
    axes.set(xlabel="step", ylabel="cross-entropy (nats per character)", title=title)
    axes.legend(loc="center right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def sample(
    model: nn.Module,
    vocabulary: Vocabulary,
    prompt: str,
    length: int,
    context: int,
    temperature: float = 0.8,
    seed: int = 0,
    count: int = 1,
) -> list[str]:
    r"""``count`` texts, each ``prompt`` followed by ``length`` generated characters (the
    ``count`` continuations run side by side, as one batch).

    Each new character is drawn from :math:`\operatorname{softmax}(z / \tau)`, the logits ``z``
    of the last position given (at most) the last ``context`` characters. A temperature
    :math:`\tau < 1` sharpens the distribution (safer, more repetitive text), :math:`\tau > 1`
    flattens it; :math:`\tau \to 0` always picks the most likely character.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rng = np.random.default_rng(seed)
    start = vocabulary.encode(prompt)
    if not len(start):
        raise ValueError("sampling needs a prompt of at least one character")
    ids = np.repeat(start[None], count, axis=0)  # (count, len(prompt)), growing
    model.eval()
    with tg.no_grad():
        for _ in range(length):
            logits = model(ids[:, -context:]).data[:, -1].astype(np.float64)  # (count, V)
            scaled = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
            probabilities = scaled / scaled.sum(axis=1, keepdims=True)
            drawn = [rng.choice(len(p), p=p) for p in probabilities]
            ids = np.concatenate([ids, np.array(drawn)[:, None]], axis=1)
    model.train()
    return [vocabulary.decode(row) for row in ids]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS (NumPy's matrix products) on one thread meanwhile, if ``threadpoolctl`` is installed.

    The products of these small models are too small to share between cores: OpenBLAS's
    threads cost more to wake and synchronise than they save, and on a busy machine, where they
    must wait for a core, far more (the fast transformer run took 35 s with OpenBLAS's default
    threads and 3.5 s with one, on two cores shared with other work).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def describe(corpus: Corpus) -> None:
    """Print the corpus's sizes, its most frequent characters and the two baselines."""
    vocabulary_size = len(corpus.vocabulary)
    print(
        f"{len(corpus.train):,} training and {len(corpus.validation):,} validation characters, "
        f"V = {vocabulary_size} distinct"
    )
    counts = np.bincount(corpus.train, minlength=vocabulary_size)
    common = np.argsort(counts)[::-1][:10]
    shares = ", ".join(
        f"{corpus.vocabulary.characters[i]!r} {counts[i] / counts.sum():.1%}" for i in common
    )
    print(f"most frequent: {shares}")
    baseline = unigram_baseline(corpus.train, corpus.validation, vocabulary_size)
    print(
        f"uniform guess ln V = {math.log(vocabulary_size):.3f} nats/char, "
        f"unigram baseline {baseline:.3f}"
    )


PROMPT = "The gradient "


def run(
    argv: list[str] | None,
    description: str,
    build: Callable[[int, int, int], nn.Module],
    full: Schedule,
    fast: Schedule,
    plot: Path,
) -> dict:
    """The command line both examples share: parse, train ``build(V, T, seed)``, report, plot,
    and print samples; returns the history (with the ``samples``)."""
    parser = argparse.ArgumentParser(
        description=description.splitlines()[0], epilog="TINYGRAD_EDU_FAST=1 acts like --fast"
    )
    parser.add_argument("--steps", type=int, help=f"training steps (default {full.steps})")
    parser.add_argument(
        "--fast", action="store_true", help=f"a short run ({fast.steps} steps), for tests"
    )
    parser.add_argument("--plot", type=Path, default=plot, help="where to save the loss curve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    schedule = fast if args.fast or os.environ.get("TINYGRAD_EDU_FAST") else full
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be at least 1, got {args.steps}")
        schedule = replace(schedule, steps=args.steps)
    corpus = Corpus.from_text(load_corpus())
    describe(corpus)
    model = build(len(corpus.vocabulary), schedule.length, args.seed)
    with one_blas_thread():
        history = train(model, corpus, schedule, args.seed, progress=not args.no_progress)
        samples = sample(
            model,
            corpus.vocabulary,
            PROMPT,
            schedule.sample,
            schedule.length,
            seed=args.seed,
            count=3,
        )
    report(history)
    if save_plot(history, args.plot, type(model).__name__):
        print(f"saved the loss curve to {args.plot}")
    history["samples"] = samples
    for text in history["samples"]:
        print(f"--- sample (temperature 0.8) ---\n{text}")
    return history


if __name__ == "__main__":
    describe(Corpus.from_text(load_corpus()))
