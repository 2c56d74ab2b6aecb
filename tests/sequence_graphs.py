"""Small sequence models traced through one backward sweep, for the observers' tests: an LSTM
over three steps, a two-layer bidirectional GRU, causal multi-head attention and a transformer
encoder layer. Each builder returns the module, its input and a scalar loss; ``SEQUENCE_LOSSES``
pairs it with how many times some ops must be popped."""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn


def lstm_loss():
    lstm = nn.LSTM(2, 3, rng=0, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((3, 1, 2)), requires_grad=True)
    output, (_, c_n) = lstm(x)
    return lstm, x, output.sum() + c_n.sum()


def gru_loss():
    gru = nn.GRU(2, 2, num_layers=2, bidirectional=True, rng=0, dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((1, 3, 2)), requires_grad=True)
    output, h_n = gru(x.swapaxes(0, 1))
    return gru, x, (output * output).sum() + h_n.sum()


def attention_loss():
    attention = nn.MultiheadAttention(4, 2, batch_first=True, rng=0, dtype=np.float64)
    x = Tensor(np.random.default_rng(2).standard_normal((1, 3, 4)), requires_grad=True)
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    output, weights = attention(x, x, x, attn_mask=causal)
    return attention, x, (output * output).sum() + weights[0, 2, 0]


def encoder_loss():
    options = {"dropout": 0.0, "batch_first": True, "rng": 0, "dtype": np.float64}
    layer = nn.TransformerEncoderLayer(4, 2, 6, **options)
    x = Tensor(np.random.default_rng(3).standard_normal((1, 3, 4)), requires_grad=True)
    return layer, x, layer(x, is_causal=True, src_mask=np.triu(np.ones((3, 3), bool), 1)).sum()


SEQUENCE_LOSSES = {
    "lstm": (lstm_loss, {"sigmoid": 9, "tanh": 6}),
    "gru": (gru_loss, {"sigmoid": 2 * 3 * 4, "tanh": 3 * 4}),
    "attention": (attention_loss, {"softmax": 1, "linear": 4}),
    "encoder": (encoder_loss, {"softmax": 1, "linear": 6, "relu": 1}),
}


def traced(build):
    with tg.trace() as trace:
        module, x, loss = build()
        loss.backward()
    return trace, module, x


def delivered_totals(trace):
    """The running total each tensor had received when the sweep ended, by id."""
    totals = {}
    for step in trace.steps:
        for delivery in step.deliveries:
            if delivery.total is not None:
                totals[delivery.input_id] = delivery.total
    return totals
