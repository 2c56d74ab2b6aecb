r"""Recurrent layers: the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` (one time step) and the
sequence layers ``RNN``, ``LSTM``, ``GRU`` (many steps, layers and directions).

Every step is built from the engine's ordinary operations (``linear``, ``sigmoid``, ``tanh``,
slicing, ``stack``), so backpropagation through time is just the usual backward sweep over the
unrolled graph. Names, arguments, defaults, outputs, initialisation
(:math:`U(-1/\sqrt{hidden}, 1/\sqrt{hidden})` for every weight and bias) and ``state_dict`` keys
follow PyTorch, so a PyTorch ``state_dict`` loads unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import _check_number, _float_dtype, _positive_ints
from .module import Module

#: the gates stacked (in this order) in the rows of ``weight_ih`` and ``weight_hh``
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

_NONLINEARITIES = {"tanh": F.tanh, "relu": F.relu}


def _gate(gates: Tensor, index: int, hidden_size: int) -> Tensor:
    """Gate number ``index`` of the stacked pre-activations (last axis ``gates * hidden``)."""
    return gates[..., index * hidden_size : (index + 1) * hidden_size]


def rnn_step(
    input_part: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, nonlinearity: str
) -> Tensor:
    r""":math:`h' = \phi(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})` with :math:`\phi` = tanh or
    relu; ``input_part`` is :math:`x W_{ih}^T + b_{ih}`."""
    return _NONLINEARITIES[nonlinearity](input_part + F.linear(h, weight_hh, bias_hh))


def lstm_step(
    input_part: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor, bias_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    r"""One LSTM step, gates in PyTorch's order (input, forget, cell, output):

    .. math::
        i = \sigma(\cdot),\ f = \sigma(\cdot),\ g = \tanh(\cdot),\ o = \sigma(\cdot),\quad
        c' = f \odot c + i \odot g,\quad h' = o \odot \tanh(c')
    """
    h, c = state
    hidden_size = h.shape[-1]
    gates = input_part + F.linear(h, weight_hh, bias_hh)
    i, f, g, o = (_gate(gates, k, hidden_size) for k in range(4))
    c_next = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    return F.sigmoid(o) * F.tanh(c_next), c_next


def gru_step(input_part: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    r"""One GRU step, gates in PyTorch's order (reset, update, new):

    .. math::
        r = \sigma(x_r + h_r),\ z = \sigma(x_z + h_z),\ n = \tanh(x_n + r \odot h_n),\quad
        h' = (1 - z) \odot n + z \odot h
    """
    hidden_size = h.shape[-1]
    hidden_part = F.linear(h, weight_hh, bias_hh)
    x_r, x_z, x_n = (_gate(input_part, k, hidden_size) for k in range(3))
    h_r, h_z, h_n = (_gate(hidden_part, k, hidden_size) for k in range(3))
    r, z = F.sigmoid(x_r + h_r), F.sigmoid(x_z + h_z)
    n = F.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h


def _check_nonlinearity(layer: str, nonlinearity: Any) -> None:
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"{layer}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _uniform_pair(module: Module, suffix: str, shapes, bias: bool, generator, dtype) -> None:
    """Register ``weight_ih``/``weight_hh`` (and biases) + ``suffix``, all :math:`U(-k, k)`."""
    (gate_rows, input_size), hidden_size = shapes
    bound = 1.0 / np.sqrt(hidden_size)
    for name, shape in (
        ("weight_ih", (gate_rows, input_size)),
        ("weight_hh", (gate_rows, hidden_size)),
    ):
        setattr(module, name + suffix, init.uniform(shape, -bound, bound, generator, dtype))
    for name in ("bias_ih", "bias_hh"):
        value = init.uniform((gate_rows,), -bound, bound, generator, dtype) if bias else None
        setattr(module, name + suffix, value)


def _zeros(shape: tuple[int, ...], dtype: np.dtype) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype))


class _RNNCellBase(Module):
    """Shared by the three cells: sizes, parameters and the input/state checks."""

    mode = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        _positive_ints(layer, input_size=input_size, hidden_size=hidden_size)
        dtype = _float_dtype(layer, dtype)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = GATES[self.mode] * hidden_size
        generator = np.random.default_rng(rng)
        _uniform_pair(self, "", ((rows, input_size), hidden_size), bias, generator, dtype)

    def _batched_input(self, x: Tensor) -> tuple[Tensor, bool]:
        """``x`` as ``(batch, input_size)`` and whether it came without a batch axis."""
        layer = type(self).__name__
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{layer}: input must have shape (batch, {self.input_size}) or "
                f"({self.input_size},), got {x.shape}"
            )
        unbatched = x.ndim == 1
        return (x.reshape(1, self.input_size) if unbatched else x), unbatched

    def _state(self, state: Tensor | None, name: str, batch: int, unbatched: bool, dtype) -> Tensor:
        """The state ``name`` as ``(batch, hidden_size)``: zeros when not given."""
        if state is None:
            return _zeros((batch, self.hidden_size), dtype)
        expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {expected}, got {state.shape}"
            )
        return state.reshape(batch, self.hidden_size)

    def _input_part(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_RNNCellBase):
    r"""Elman cell :math:`h' = \phi(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})`, :math:`\phi` =
    ``nonlinearity`` (``"tanh"`` or ``"relu"``).

    ``forward(input, hx=None)``: ``input`` is ``(batch, input_size)`` or ``(input_size,)``; ``hx``
    matches it with ``hidden_size`` features (zeros when omitted). Returns :math:`h'`.
    """

    mode = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
    ) -> None:
        _check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, rng, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._batched_input(input)
        h = self._state(hx, "hx", x.shape[0], unbatched, x.dtype)
        h = rnn_step(self._input_part(x), h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h.reshape(self.hidden_size) if unbatched else h

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class LSTMCell(_RNNCellBase):
    r"""Long short-term memory cell (see :func:`lstm_step` for the gates).

    ``forward(input, hx=None)``: ``hx`` is a pair ``(h, c)`` shaped like the output (zeros when
    omitted). Returns ``(h', c')``.
    """

    mode = "LSTM"

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        x, unbatched = self._batched_input(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a pair (h, c), got {type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        h = self._state(h0, "hx[0]", x.shape[0], unbatched, x.dtype)
        c = self._state(c0, "hx[1]", x.shape[0], unbatched, x.dtype)
        h, c = lstm_step(self._input_part(x), (h, c), self.weight_hh, self.bias_hh)
        if unbatched:
            return h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c


class GRUCell(_RNNCellBase):
    r"""Gated recurrent unit cell (see :func:`gru_step` for the gates).

    ``forward(input, hx=None)`` returns :math:`h'`, shaped like ``hx`` (zeros when omitted).
    """

    mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._batched_input(input)
        h = self._state(hx, "hx", x.shape[0], unbatched, x.dtype)
        h = gru_step(self._input_part(x), h, self.weight_hh, self.bias_hh)
        return h.reshape(self.hidden_size) if unbatched else h


class _RNNBase(Module):
    """Shared by ``RNN``, ``LSTM`` and ``GRU``: the stacked, optionally bidirectional unrolling.

    Layer ``l`` in direction ``d`` owns ``weight_ih_l{l}``, ``weight_hh_l{l}``, ``bias_ih_l{l}``
    and ``bias_hh_l{l}`` (``_reverse`` appended for the backward direction). Layer ``l > 0`` reads
    the concatenated outputs of both directions of layer ``l - 1``, after dropout when training.
    """

    mode = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        _positive_ints(layer, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        _check_number(layer, "dropout", dropout, 0.0, 1.0)
        dtype = _float_dtype(layer, dtype)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        self.generator = np.random.default_rng(rng)
        directions = 2 if bidirectional else 1
        rows = GATES[self.mode] * hidden_size
        for index in range(num_layers):
            layer_input = input_size if index == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = ((rows, layer_input), hidden_size)
                _uniform_pair(self, f"_l{index}{suffix}", shapes, bias, self.generator, dtype)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _time_major(self, input: Tensor) -> tuple[Tensor, bool]:
        """``input`` as ``(time, batch, input_size)`` and whether it came without a batch axis."""
        layer = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            order = "(batch, time" if self.batch_first else "(time, batch"
            raise ValueError(
                f"{layer}: input must have shape {order}, {self.input_size}) or "
                f"(time, {self.input_size}), got {input.shape}"
            )
        if input.ndim == 2:
            return input.reshape(input.shape[0], 1, self.input_size), True
        return (input.transpose(1, 0, 2) if self.batch_first else input), False

    def _initial(self, state: Tensor | None, name: str, batch: int, unbatched: bool, dtype):
        """The initial state ``name`` as ``(layers * directions, batch, hidden_size)``."""
        stacked = self.num_layers * self.num_directions
        if state is None:
            return _zeros((stacked, batch, self.hidden_size), dtype)
        expected = (stacked, self.hidden_size) if unbatched else (stacked, batch, self.hidden_size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {expected}, got {state.shape}"
            )
        return state.reshape(stacked, batch, self.hidden_size)

    def _step(self, input_part: Tensor, state: Any, weight_hh: Tensor, bias_hh: Tensor | None):
        raise NotImplementedError

    def _sweep(
        self, inputs: list[Tensor], state: Any, suffix: str, reverse: bool
    ) -> tuple[list[Tensor], Any]:
        """Run one layer-direction over the per-step inputs ``inputs``: the per-step outputs in
        time order and the final state.

        Each step projects its own input through ``weight_ih``. cuDNN and PyTorch project the
        whole sequence in one large product before the loop instead; here that does not pay,
        because every step would then have to index its rows out of the product, and the VJP of
        an index ``p[t]`` is an array of ``p``'s full size, zero except in row ``t``. The
        backward sweep would build and add up ``T`` such arrays, time and traffic growing as
        :math:`T^2` (docs/performance.md, "Backpropagation through time", measures both ways).
        """
        weight_ih, bias_ih = getattr(self, "weight_ih" + suffix), getattr(self, "bias_ih" + suffix)
        weight_hh, bias_hh = getattr(self, "weight_hh" + suffix), getattr(self, "bias_hh" + suffix)
        outputs = []
        for x_t in reversed(inputs) if reverse else inputs:
            input_part = F.linear(x_t, weight_ih, bias_ih)
            state = self._step(input_part, state, weight_hh, bias_hh)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return (outputs[::-1] if reverse else outputs), state

    def _unroll(self, x: Tensor, initial: list[Any]) -> tuple[Tensor, list[Any]]:
        """All layers over ``x`` (time-major) from the per-(layer, direction) initial states.

        Between layers the sequence stays a list of per-step tensors and is stacked once, at
        the end: indexing a tensor that needs a gradient costs a full-size gradient array per
        index (see :meth:`_sweep`). Only the caller's ``x`` is indexed, ``T`` times: free when it
        needs no gradient (the indexing is then not recorded), else ``T`` arrays of its size.
        """
        steps = [x[t] for t in range(x.shape[0])]
        finals = []
        for index in range(self.num_layers):
            if index > 0:  # step by step, in time order: the generator draws the numbers it
                # would draw for the stacked sequence in one call, so the mask is the same
                steps = [F.dropout(s, self.dropout, self.training, self.generator) for s in steps]
            per_direction = []
            for direction, suffix in enumerate(("", "_reverse")[: self.num_directions]):
                state = initial[index * self.num_directions + direction]
                outputs, final = self._sweep(steps, state, f"_l{index}{suffix}", direction == 1)
                per_direction.append(outputs)
                finals.append(final)
            steps = (
                per_direction[0]
                if len(per_direction) == 1
                else [Tensor.concatenate(pair, -1) for pair in zip(*per_direction)]
            )
        return Tensor.stack(steps, axis=0), finals

    def _output(self, output: Tensor, unbatched: bool) -> Tensor:
        if unbatched:
            return output.reshape(output.shape[0], output.shape[2])
        return output.transpose(1, 0, 2) if self.batch_first else output

    def _final(self, finals: list[Tensor], unbatched: bool) -> Tensor:
        stacked = Tensor.stack(finals, axis=0)
        return stacked.reshape(len(finals), self.hidden_size) if unbatched else stacked

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text + (", bidirectional=True" if self.bidirectional else "")


class RNN(_RNNBase):
    r"""Multi-layer Elman RNN, every step
    :math:`h_t = \phi(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})`.

    ``forward(input, hx=None)``: ``input`` is ``(time, batch, input_size)`` (``(batch, time,
    input_size)`` when ``batch_first``) or unbatched ``(time, input_size)``; ``hx`` is
    ``(num_layers * num_directions, batch, hidden_size)`` (zeros when omitted). Returns
    ``(output, h_n)``: ``output`` holds the last layer's :math:`h_t` for every step (both
    directions concatenated), ``h_n`` every layer's final state.
    """

    mode = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
    ) -> None:
        _check_nonlinearity("RNN", nonlinearity)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            rng,
            dtype,
        )
        self.nonlinearity = nonlinearity

    def _step(self, input_part, state, weight_hh, bias_hh):
        return rnn_step(input_part, state, weight_hh, bias_hh, self.nonlinearity)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._time_major(input)
        h0 = self._initial(hx, "hx", x.shape[1], unbatched, x.dtype)
        output, finals = self._unroll(x, [h0[k] for k in range(h0.shape[0])])
        return self._output(output, unbatched), self._final(finals, unbatched)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (
            f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
        )


class LSTM(_RNNBase):
    r"""Multi-layer long short-term memory (see :func:`lstm_step` for the gates).

    Shapes as for :class:`RNN`; ``hx`` is a pair ``(h_0, c_0)``. Returns
    ``(output, (h_n, c_n))``.
    """

    mode = "LSTM"

    _step = staticmethod(lstm_step)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, unbatched = self._time_major(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTM: hx must be a pair (h_0, c_0), got {type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        h0 = self._initial(h0, "hx[0]", x.shape[1], unbatched, x.dtype)
        c0 = self._initial(c0, "hx[1]", x.shape[1], unbatched, x.dtype)
        output, finals = self._unroll(x, [(h0[k], c0[k]) for k in range(h0.shape[0])])
        h_n = self._final([h for h, _ in finals], unbatched)
        c_n = self._final([c for _, c in finals], unbatched)
        return self._output(output, unbatched), (h_n, c_n)


class GRU(_RNNBase):
    r"""Multi-layer gated recurrent unit (see :func:`gru_step` for the gates).

    Shapes and outputs as for :class:`RNN`: ``(output, h_n)``.
    """

    mode = "GRU"

    _step = staticmethod(gru_step)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._time_major(input)
        h0 = self._initial(hx, "hx", x.shape[1], unbatched, x.dtype)
        output, finals = self._unroll(x, [h0[k] for k in range(h0.shape[0])])
        return self._output(output, unbatched), self._final(finals, unbatched)
