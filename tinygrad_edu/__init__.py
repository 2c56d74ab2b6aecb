"""tinygrad_edu: a readable reverse-mode automatic differentiation engine on NumPy.

Reading order for learners: ``tensor.py`` (the data structure), ``graph.py`` (how an operation is
recorded), ``ops.py`` (every derivative rule), ``autograd.py`` (the backward sweep), then
``gradcheck.py`` (how to trust all of the above).
"""

from .tensor import Tensor  # noqa: I001  (first: everything else builds on it)
from . import nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .autograd import grad
from .compile import CompileWarning, compile
from .forward import jvp, vjp
from .func import hessian, hvp, jacfwd, jacobian, jacrev
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import ShapeError, enable_grad, is_grad_enabled, no_grad
from .io import CheckpointError, load, save
from .tracing import trace

__all__ = [
    "AnomalyError",
    "CheckpointError",
    "CompileWarning",
    "GradcheckError",
    "ShapeError",
    "Tensor",
    "compile",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "hessian",
    "hvp",
    "is_grad_enabled",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "load",
    "nn",
    "no_grad",
    "optim",
    "save",
    "trace",
    "vjp",
]
__version__ = "0.1.0"
