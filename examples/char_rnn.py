r"""A character-level LSTM trained on the project's own documentation.

The model reads ``T`` characters and, at every position ``t``, predicts character ``t + 1``:

* **an embedding** -- character ids ``(B, T)`` become vectors ``(B, T, d)``;
* **an LSTM** -- ``nn.LSTM(d, h, batch_first=True)`` runs along the window, carrying a hidden
  state :math:`h_t` and a cell :math:`c_t` (each ``(B, h)``) from one character to the next;
  its output ``(B, T, h)`` is :math:`h_t` at every position. Unlike attention it needs no
  position embedding (it reads the characters in order) and no causal mask (:math:`h_t` has
  only seen characters ``0..t``);
* **a linear head** -- ``(B, T, h) -> (B, T, V)`` logits over the ``V`` characters, started
  small so that the first loss is near :math:`\ln V`, the cost of a uniform guess.

Backpropagation through time is the engine's ordinary backward sweep over the unrolled graph.
Every training window starts from a zero state and is ``T`` characters long, so the gradient
flows back through at most ``T`` steps: *truncated* backpropagation through time, which keeps
the graph (and its memory) to ``T`` cells however long the text is.

Training (AdamW with weight decay, warm-up then cosine decay, gradient clipping -- recurrent
nets are prone to the occasional exploding gradient), the unigram baseline, the plot and the
sampling are in ``char_text.py``, shared with ``char_transformer.py``. The default model:
32-wide embeddings, an LSTM of 128 units, windows of ``T = 48`` characters, about 103 000
parameters (the count follows the docs' alphabet); 800 steps of 32 windows. Its validation loss
falls well below the unigram baseline (a model that knows only how often each character occurs):
measured on 2026-12-07, 2.14 against 3.46 nats per character after 88 s of training on one core
of two. Run:

    python examples/char_rnn.py              # full run (about two minutes)
    python examples/char_rnn.py --fast       # a short run, for tests
    python examples/char_rnn.py --steps 2000 --plot curve.png --seed 1
    python examples/char_rnn.py --no-progress

``TINYGRAD_EDU_FAST=1`` in the environment acts like ``--fast``. Everything random (the
weights, the batches, the three samples printed at the end, which continue the prompt
"The gradient ") comes from ``--seed``, so a run is repeatable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from char_text import Schedule, run

from tinygrad_edu import Tensor, nn


class CharLSTM(nn.Module):
    """Embedding, one LSTM layer, linear head: ids ``(B, T)`` -> logits ``(B, T, V)``."""

    def __init__(
        self, vocabulary_size: int, width: int = 32, hidden: int = 128, seed: int = 0
    ) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embedding = nn.Embedding(vocabulary_size, width, rng=rng)
        self.lstm = nn.LSTM(width, hidden, batch_first=True, rng=rng)
        self.head = nn.Linear(hidden, vocabulary_size, rng=rng)
        self.head.weight.data *= 0.1  # small logits at the start: loss near ln V

    def forward(self, ids: np.ndarray) -> Tensor:
        """Logits ``(B, T, V)`` for character ids ``(B, T)``, from a zero state."""
        output, _ = self.lstm(self.embedding(ids))  # (B, T, h)
        return self.head(output)


FULL = Schedule(steps=800, batch_size=32, length=48, learning_rate=1e-2, warmup=50)
FAST = Schedule(
    steps=100,
    batch_size=16,
    length=24,
    learning_rate=1e-2,
    warmup=10,
    evaluations=4,
    validation=4096,
    sample=80,
)


def main(argv: list[str] | None = None) -> dict:
    """Train, report, plot and sample (see the module's docstring); returns the history."""
    return run(
        argv,
        __doc__,
        lambda vocabulary_size, context, seed: CharLSTM(vocabulary_size, seed=seed),
        FULL,
        FAST,
        Path("char_rnn.png"),
    )


if __name__ == "__main__":
    main()
