"""The worked example: a 3-5-2-1 sigmoid network that picks white or black text for a colour.

See ``docs/text_color.md`` for the maths and ``tinygrad-edu text-color --help`` for the app.
"""

from . import handderived
from .colors import COLOR_NAMES, COLORS, LABELS, label_checks, parse_color, wcag_label
from .network import (
    build_mlp,
    engine_deltas,
    error,
    forward_with_preactivations,
    from_augmented,
    model_from_state_dict,
    to_augmented,
)

__all__ = [
    "COLORS",
    "COLOR_NAMES",
    "LABELS",
    "build_mlp",
    "engine_deltas",
    "error",
    "forward_with_preactivations",
    "from_augmented",
    "handderived",
    "label_checks",
    "model_from_state_dict",
    "parse_color",
    "to_augmented",
    "wcag_label",
]
