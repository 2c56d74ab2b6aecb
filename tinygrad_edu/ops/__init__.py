"""Every derivative rule of the engine, grouped by kind; each op's forward beside its VJP
(reverse mode) and JVP (forward mode), with the maths in its docstring. Import the rules from
their modules (``from tinygrad_edu.ops.elementwise import Add``).

=====================  ===============================================================
module                 ops
=====================  ===============================================================
:mod:`.elementwise`    the one-line table (``neg exp log sqrt abs relu sigmoid tanh clip
                       sin cos ... erf square reciprocal sign floor ...``; binary ``add
                       sub mul div pow maximum minimum remainder floor_divide``),
                       ``where``, ``cast``, fused sigmoid/tanh rules
:mod:`.activations`    the activation table (``leaky_relu elu selu celu silu gelu softplus
                       mish hardtanh hardsigmoid hardswish logsigmoid softsign``)
:mod:`.linalg`         ``matmul``, the fused ``linear`` layer
:mod:`.contraction`    ``einsum``
:mod:`.reductions`     ``sum``, ``max``, ``min``, ``prod``, ``logsumexp``, ``norm``,
                       ``cumsum``, ``cumprod``, ``softmax``, ``log_softmax``
:mod:`.shape`          broadcasting and its adjoint ``sum_to``, ``reshape``,
                       ``transpose``, indexing and its adjoint ``scatter_add``,
                       ``stack``, ``concatenate``, ``flip``, ``roll``
:mod:`.conv`           2-D convolution (and its two gradient ops), max pooling
:mod:`.image`          bilinear image warps
:mod:`.losses`         binary cross entropy with a saturation-safe rule
=====================  ===============================================================

Methods built from these rules (``tile``, ``gather``, ``var`` ...) have no rule of their own:
they are in :mod:`tinygrad_edu.composites`. The heavy NumPy arithmetic of convolution, pooling
and resampling lives in :mod:`tinygrad_edu.kernels`; an op here only says *what* to compute and
how to differentiate it.
"""

# every rule module, so that ``ops.<module>.<Rule>`` is there after ``from tinygrad_edu import ops``
from . import (  # noqa: F401
    activations,
    common,
    contraction,
    conv,
    elementwise,
    image,
    linalg,
    losses,
    reductions,
    shape,
)
