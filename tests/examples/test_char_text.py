"""The shared pieces of the character-level examples: corpus, vocabulary, batches, baseline,
schedule, sampling."""

from __future__ import annotations

import importlib
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor, nn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def char_text(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("char_text")


def test_encode_decode_round_trip_and_unknown_characters(char_text):
    vocabulary = char_text.Vocabulary("hello, world ∂")
    assert vocabulary.characters == sorted(set("hello, world ∂")) and len(vocabulary) == 10
    ids = vocabulary.encode("world ∂, hello")
    assert ids.dtype == np.int64 and vocabulary.decode(ids) == "world ∂, hello"
    assert vocabulary.encode("de").tolist() == [vocabulary.characters.index(c) for c in "de"]
    with pytest.raises(ValueError, match=r"outside the vocabulary: 'abxz'"):
        vocabulary.encode("zebra x")
    with pytest.raises(ValueError, match="at least 2 distinct characters"):
        char_text.Vocabulary("aaaa")


def test_the_corpus_is_the_docs_markdown_and_the_validation_part_is_its_end(char_text):
    text = char_text.load_corpus()
    index = (EXAMPLES.parent / "docs" / "index.md").read_text(encoding="utf-8")
    assert index in text
    corpus = char_text.Corpus.from_text(text)
    ids = corpus.vocabulary.encode(text)
    assert len(corpus.validation) == round(len(ids) / 10)
    assert np.array_equal(np.concatenate([corpus.train, corpus.validation]), ids)
    with pytest.raises(ValueError, match="validation_fraction"):
        char_text.Corpus.from_text(text, validation_fraction=1.0)


def test_a_missing_or_empty_docs_folder_is_named(char_text, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no docs folder at .*missing"):
        char_text.load_corpus(tmp_path / "missing")
    (tmp_path / "empty.md").write_text("  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no non-empty"):
        char_text.load_corpus(tmp_path)


def test_random_windows_are_inputs_and_targets_shifted_by_one(char_text):
    ids = np.arange(100) * 3  # position is recoverable from the value
    rng = np.random.default_rng(0)
    inputs, targets = char_text.random_windows(ids, 8, 10, rng)
    assert inputs.shape == targets.shape == (8, 10)
    assert np.array_equal(inputs[:, 1:], targets[:, :-1])
    starts = inputs[:, 0] // 3
    assert np.array_equal(inputs, ids[starts[:, None] + np.arange(10)])
    assert np.array_equal(targets, ids[starts[:, None] + np.arange(1, 11)])
    again = char_text.random_windows(ids, 8, 10, np.random.default_rng(0))
    assert np.array_equal(again[0], inputs)  # the seed decides the batch
    with pytest.raises(ValueError, match="windows of 100 \\+ 1 characters"):
        char_text.random_windows(ids, 1, 100, rng)


def test_tiled_windows_predict_every_character_once(char_text):
    ids = np.arange(23)
    inputs, targets = char_text.tiled_windows(ids, 5)
    assert inputs.shape == (4, 5)
    assert inputs.ravel().tolist() == list(range(20))
    assert targets.ravel().tolist() == list(range(1, 21))


def test_unigram_baseline_is_the_cross_entropy_of_smoothed_training_frequencies(char_text):
    train, validation = "abracadabra, a cabal", "a bad cab"
    vocabulary = char_text.Vocabulary(train + validation + "z")  # z: never seen
    counts = Counter(train)
    total = len(train) + len(vocabulary)
    expected = -sum(math.log((counts[c] + 1) / total) for c in validation) / len(validation)
    baseline = char_text.unigram_baseline(
        vocabulary.encode(train), vocabulary.encode(validation), len(vocabulary)
    )
    assert baseline == pytest.approx(expected, rel=1e-12)
    # with many characters the smoothing vanishes: on its own frequencies, the entropy
    big = vocabulary.encode("ab" * 50_000 + "c" * 100_000)
    entropy = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    assert char_text.unigram_baseline(big, big, len(vocabulary)) == pytest.approx(entropy, 1e-4)


def test_the_learning_rate_warms_up_then_decays_to_a_tenth(char_text):
    model = nn.Linear(3, 2, rng=0)
    schedule = char_text.Schedule(
        steps=50, batch_size=1, length=1, learning_rate=0.01, warmup=10, weight_decay=0.3
    )
    optimizer, rates = char_text.make_optimizer(model, schedule)
    decays = {p.ndim: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decays == {2: 0.3, 1: 0.0}  # the weight matrix decays, the bias does not
    seen = []
    for _ in range(schedule.steps):
        seen.append(optimizer.param_groups[0]["lr"])
        rates.step()
    assert seen[:11] == pytest.approx([0.001 * (1 + k * 0.9) for k in range(10)] + [0.01])
    assert all(a > b for a, b in itertools.pairwise(seen[10:]))  # cosine: always going down
    assert seen[30] == pytest.approx(0.001 + 0.009 * (1 + math.cos(math.pi / 2)) / 2)
    assert seen[-1] > 0.001 and rates.get_last_lr()[0] == pytest.approx(0.001)


class _Counting(nn.Module):
    """Knows one rule: after character id ``i`` comes ``i + 1`` (mod V)."""

    def __init__(self, vocabulary_size: int) -> None:
        super().__init__()
        self.vocabulary_size = vocabulary_size

    def forward(self, ids: np.ndarray) -> Tensor:
        return Tensor(20.0 * np.eye(self.vocabulary_size)[(ids + 1) % self.vocabulary_size])


def test_sampling_follows_the_model_and_the_seed(char_text):
    vocabulary = char_text.Vocabulary("abcd")
    model = _Counting(4)
    assert char_text.sample(model, vocabulary, "b", 6, context=3, count=2) == ["bcdabcd"] * 2
    flat = nn.Module()
    flat.forward = lambda ids: Tensor(np.zeros((*ids.shape, 4)))  # every character alike
    first, second = char_text.sample(flat, vocabulary, "a", 40, context=3, seed=1, count=2)
    again = char_text.sample(flat, vocabulary, "a", 40, context=3, seed=1, count=2)
    assert again == [first, second] and first != second
    assert char_text.sample(flat, vocabulary, "a", 40, context=3, seed=2, count=2) != again
    assert first[0] == "a" and len(first) == 41 and set(first[1:]) == set("abcd")
    with pytest.raises(ValueError, match="temperature must be positive"):
        char_text.sample(model, vocabulary, "a", 1, context=3, temperature=0.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        char_text.sample(model, vocabulary, "e", 1, context=3)
