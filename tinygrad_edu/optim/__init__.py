r"""Optimizers: turn the gradients in ``.grad`` into parameter updates, PyTorch style.

Updates happen in place on ``parameter.data`` (plain NumPy: they are never part of the graph).
Parameters whose ``.grad`` is ``None`` are skipped, and every parameter keeps its own state
(step count, moment estimates), so a parameter that first receives a gradient late is updated
exactly as if it had been alone.

=====================  =================================================================
module                 contents
=====================  =================================================================
:mod:`.optimizer`      :class:`Optimizer`: parameter groups, per-parameter state,
                       ``state_dict``/``load_state_dict`` (resuming is bit for bit),
                       ``flatten_state_dict`` for ``.npz`` checkpoints
:mod:`.sgd`            :class:`SGD` with momentum, dampening, Nesterov and weight decay
                       (every optimizer takes ``maximize``: ascend the gradient)
:mod:`.adam`           :class:`Adam` and :class:`AdamW` (decoupled weight decay)
:mod:`.rmsprop`        :class:`RMSprop`
:mod:`.adagrad`        :class:`Adagrad`
:mod:`.adadelta`       :class:`Adadelta`
:mod:`.adamax`         :class:`Adamax` (Adam with the infinity norm)
:mod:`.nadam`          :class:`NAdam` (Adam with Nesterov momentum)
:mod:`.radam`          :class:`RAdam` (rectified Adam)
:mod:`.rprop`          :class:`Rprop` (gradient signs only)
:mod:`.lr_scheduler`   ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``LinearLR``,
                       ``ConstantLR``, ``PolynomialLR``, ``LambdaLR``, ``MultiplicativeLR``,
                       ``CosineAnnealingLR``, ``CosineAnnealingWarmRestarts``, ``CyclicLR``,
                       ``OneCycleLR``, ``ReduceLROnPlateau``, ``SequentialLR``,
                       ``ChainedScheduler``
=====================  =================================================================

>>> import numpy as np
>>> from tinygrad_edu import Tensor, optim
>>> w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
>>> opt = optim.SGD([w], lr=0.5)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data
array([0., 0.])
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .nadam import NAdam
from .optimizer import Optimizer, flatten_state_dict, unflatten_state_dict
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "flatten_state_dict",
    "lr_scheduler",
    "unflatten_state_dict",
]
