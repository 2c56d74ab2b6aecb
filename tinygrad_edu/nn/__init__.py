"""Neural-network building blocks: modules, layers, losses, init helpers and ``functional``."""

from . import functional, init, utils
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCELoss, CrossEntropyLoss, MSELoss
from .module import IncompatibleKeys, Module, StateDictError

__all__ = [
    "BCELoss",
    "Conv2d",
    "CrossEntropyLoss",
    "Flatten",
    "IncompatibleKeys",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "functional",
    "init",
]
