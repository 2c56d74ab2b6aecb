"""tinygrad_edu: a readable reverse-mode automatic differentiation engine on NumPy.

Reading order for learners: ``examples/minimal_engine.py`` (the whole idea in ~100 lines), then
``tensor.py`` (the data structure), ``graph.py`` (how an operation is recorded), the ``ops``
package (every derivative rule), ``autograd.py`` (the backward sweep), ``forward.py`` (forward
mode) and ``gradcheck.py`` (how to trust all of the above).
"""

from .tensor import Tensor  # noqa: I001  (first: everything else builds on it)
from . import data, nn, optim
from .autograd import grad
from .compile import CompileWarning, compile
from .dtypes import promote_types, result_type
from .forward import jvp, vjp
from .func import hessian, hvp, jacfwd, jacobian, jacrev
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .axes import ShapeError
from .graph import enable_grad, is_grad_enabled, no_grad
from .io import CheckpointError, load, save
from .observers.anomaly import AnomalyError, detect_anomaly
from .observers.trace import trace
from .tensor import where

# creation and joining functions, as in ``torch``: ``tg.arange(5)``, ``tg.zeros_like(x)``, ...
arange, linspace, eye, full = Tensor.arange, Tensor.linspace, Tensor.eye, Tensor.full
zeros, ones, zeros_like, ones_like, full_like = (
    Tensor.zeros,
    Tensor.ones,
    Tensor.zeros_like,
    Tensor.ones_like,
    Tensor.full_like,
)
rand, randn, randint, uniform, normal = (
    Tensor.rand,
    Tensor.randn,
    Tensor.randint,
    Tensor.uniform,
    Tensor.normal,
)
stack, cat, concatenate, hstack, vstack = (
    Tensor.stack,
    Tensor.cat,
    Tensor.concatenate,
    Tensor.hstack,
    Tensor.vstack,
)
einsum, tensordot, one_hot = Tensor.einsum, Tensor.tensordot, Tensor.one_hot

__all__ = [
    "AnomalyError",
    "CheckpointError",
    "CompileWarning",
    "GradcheckError",
    "ShapeError",
    "Tensor",
    "arange",
    "cat",
    "compile",
    "concatenate",
    "data",
    "detect_anomaly",
    "einsum",
    "enable_grad",
    "eye",
    "full",
    "full_like",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "hessian",
    "hstack",
    "hvp",
    "is_grad_enabled",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linspace",
    "load",
    "nn",
    "no_grad",
    "normal",
    "one_hot",
    "ones",
    "ones_like",
    "optim",
    "promote_types",
    "rand",
    "randint",
    "randn",
    "result_type",
    "save",
    "stack",
    "tensordot",
    "trace",
    "uniform",
    "vjp",
    "vstack",
    "where",
    "zeros",
    "zeros_like",
]
__version__ = "0.1.0"
