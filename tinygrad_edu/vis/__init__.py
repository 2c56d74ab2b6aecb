"""Seeing what a CNN learned: gradient ascent in input space, and the document's filter grids."""

from .filters import best, visualize_filters
from .images import deprocess_image, save_png, stitch

__all__ = ["best", "deprocess_image", "save_png", "stitch", "visualize_filters"]
