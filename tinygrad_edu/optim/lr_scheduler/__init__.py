r"""Learning-rate schedulers: set ``group["lr"]`` of an optimizer as training advances.

PyTorch's protocol: construct the scheduler after the optimizer (it records each group's
``initial_lr`` and sets the first rate), call ``optimizer.step()`` then ``scheduler.step()``
once per epoch (or per batch for :class:`OneCycleLR`). As in PyTorch, most schedulers are
*chainable*: each step multiplies the group's **current** rate by the change its schedule makes
from step :math:`t - 1` to :math:`t` (counter ``last_epoch``), so several schedulers on one
optimizer compose (their factors multiply) instead of overwriting each other. To resume, build
the optimizer and the scheduler, then load both ``state_dict``\ s.

:class:`SequentialLR` and :class:`ChainedScheduler` hold other schedulers, and
:class:`ReduceLROnPlateau` is stepped with a metric; none of the three derives from
:class:`LRScheduler` (in PyTorch all do), but they nest as PyTorch's do: a chain may hold a
:class:`SequentialLR` or another chain.

=========================  ==============================================================
module                     schedulers
=========================  ==============================================================
:mod:`.base`               :class:`LRScheduler`, the base class
:mod:`.multiplicative`     :class:`StepLR`, :class:`MultiStepLR`, :class:`ExponentialLR`,
                           :class:`LinearLR`, :class:`ConstantLR`, :class:`PolynomialLR`
:mod:`.lambdas`            :class:`LambdaLR`, :class:`MultiplicativeLR`
:mod:`.cosine`             :class:`CosineAnnealingLR`, :class:`CosineAnnealingWarmRestarts`:
                           :math:`\eta_t = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})
                           (1 + \cos(\pi t / T))`
:mod:`.plateau`            :class:`ReduceLROnPlateau`, stepped with a metric
:mod:`.chained`            :class:`ChainedScheduler`: several schedulers in one step
:mod:`.sequential`         :class:`SequentialLR`: one scheduler after another
:mod:`.cyclic`             :class:`CyclicLR`: triangular cycles between two rates
:mod:`.one_cycle`          :class:`OneCycleLR`: warm up from ``max_lr / div_factor`` to
                           ``max_lr`` over the first ``pct_start`` of the steps, anneal to
                           ``initial_lr / final_div_factor``, cycling momentum the opposite
                           way; it sets the rate outright (not chainable, as in PyTorch)
=========================  ==============================================================

>>> import numpy as np
>>> from tinygrad_edu import Tensor, optim
>>> opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(sched.get_last_lr()[0])
...     opt.step()
...     sched.step()
>>> rates
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from .base import LRScheduler
from .chained import ChainedScheduler
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR
from .lambdas import LambdaLR, MultiplicativeLR
from .multiplicative import (
    ConstantLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .sequential import SequentialLR

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
