"""Neural-network building blocks: modules, layers, losses, init helpers and ``functional``."""

from . import functional, init
from .layers import Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCELoss, CrossEntropyLoss, MSELoss
from .module import IncompatibleKeys, Module, StateDictError

__all__ = [
    "BCELoss",
    "CrossEntropyLoss",
    "Flatten",
    "IncompatibleKeys",
    "Linear",
    "MSELoss",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "functional",
    "init",
]
