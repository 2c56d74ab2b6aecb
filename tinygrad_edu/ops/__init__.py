"""Every differentiable op of the engine, grouped by kind; each op's forward beside its VJP
(reverse mode) and JVP (forward mode), with the maths in its docstring.

=====================  ===============================================================
module                 ops
=====================  ===============================================================
:mod:`.elementwise`    the one-line table (``neg exp log sqrt abs relu sigmoid tanh clip
                       add sub mul div pow``), ``where``, fused sigmoid/tanh rules
:mod:`.linalg`         ``matmul``, the fused ``linear`` layer
:mod:`.reductions`     ``sum``, ``max``, ``softmax``, ``log_softmax``
:mod:`.shape`          broadcasting and its adjoint ``sum_to``, ``reshape``,
                       ``transpose``, indexing and its adjoint ``scatter_add``,
                       ``stack``, ``concatenate``
:mod:`.conv`           2-D convolution (and its two gradient ops), max pooling
:mod:`.image`          bilinear image warps
:mod:`.losses`         binary cross entropy with a saturation-safe rule
=====================  ===============================================================

The heavy NumPy arithmetic of convolution, pooling and resampling lives in
:mod:`tinygrad_edu.kernels`; an op here only says *what* to compute and how to differentiate it.
"""

from .conv import (
    Conv2d,
    Conv2dInputGrad,
    Conv2dWeightGrad,
    MaxPool2d,
    MaxPoolGather,
    MaxPoolScatter,
)
from .elementwise import (
    Abs,
    Add,
    Clip,
    Div,
    Exp,
    Log,
    Mul,
    Neg,
    Pow,
    ReLU,
    Sigmoid,
    SigmoidBackward,
    Sqrt,
    Sub,
    Tanh,
    TanhBackward,
    Where,
    binary,
    unary,
    where,
)
from .image import Warp, WarpAdjoint, warp
from .linalg import Linear, MatMul
from .losses import BinaryCrossEntropy
from .reductions import LogSoftmax, Max, Softmax, Sum
from .shape import BroadcastTo, Concatenate, GetItem, Reshape, ScatterAdd, Stack, SumTo, Transpose

__all__ = [
    "Abs",
    "Add",
    "BinaryCrossEntropy",
    "BroadcastTo",
    "Clip",
    "Concatenate",
    "Conv2d",
    "Conv2dInputGrad",
    "Conv2dWeightGrad",
    "Div",
    "Exp",
    "GetItem",
    "Linear",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool2d",
    "MaxPoolGather",
    "MaxPoolScatter",
    "Mul",
    "Neg",
    "Pow",
    "ReLU",
    "Reshape",
    "ScatterAdd",
    "Sigmoid",
    "SigmoidBackward",
    "Softmax",
    "Sqrt",
    "Stack",
    "Sub",
    "Sum",
    "SumTo",
    "Tanh",
    "TanhBackward",
    "Transpose",
    "Warp",
    "WarpAdjoint",
    "Where",
    "binary",
    "unary",
    "warp",
    "where",
]
