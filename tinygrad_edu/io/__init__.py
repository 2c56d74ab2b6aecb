"""Files in and out. Everything here returns or takes plain NumPy arrays: no engine needed."""

from .atomic import atomic_write
from .checkpoint import CheckpointError, load, save

__all__ = ["CheckpointError", "atomic_write", "load", "save"]
