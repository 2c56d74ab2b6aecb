"""Seeing what a CNN learned: gradient ascent in input space, the document's filter grids, and
the microscope's atlas of every filter."""

from .atlas import microscope
from .filters import best, visualize_filters
from .images import deprocess_image, save_png, stitch

__all__ = ["best", "deprocess_image", "microscope", "save_png", "stitch", "visualize_filters"]
