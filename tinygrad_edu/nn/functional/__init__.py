"""Stateless functions behind the layers and losses, as in ``torch.nn.functional``.

Each is a few Tensor operations or one op of :mod:`tinygrad_edu.ops`, so its gradient comes from
the op table; no function here has a hand-written backward. Grouped like PyTorch's reference:

* :mod:`.activations` -- ``relu``, ``gelu``, ``silu``, ``softplus``, ``leaky_relu``, ...
* :mod:`.layers` -- ``linear``, ``conv2d``, ``max_pool2d``, ...
* :mod:`.losses` -- ``mse_loss``, ``binary_cross_entropy``, ``cross_entropy``, ...
* :mod:`.attention` -- ``scaled_dot_product_attention``
"""

from ...tensor import Tensor
from .activations import *  # noqa: F403
from .activations import __all__ as _activations
from .attention import *  # noqa: F403
from .attention import __all__ as _attention
from .layers import *  # noqa: F403
from .layers import __all__ as _layers
from .losses import *  # noqa: F403
from .losses import __all__ as _losses

one_hot = Tensor.one_hot

__all__ = [*_activations, *_layers, *_losses, "one_hot", *_attention]
