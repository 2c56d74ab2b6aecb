r"""Colours: the ten training colours, parsing colour strings, and the WCAG 2 contrast rule.

WCAG 2 defines the relative luminance of an sRGB colour as
:math:`L = 0.2126 R + 0.7152 G + 0.0722 B` on linearised channels
(:math:`c / 12.92` for :math:`c \le 0.04045`, else :math:`((c + 0.055) / 1.055)^{2.4}`), and the
contrast ratio of two colours as :math:`(L_1 + 0.05) / (L_2 + 0.05)` with :math:`L_1 \ge L_2`.
White text wins over black exactly when :math:`(L + 0.05)^2 < 1.05 \cdot 0.05`, i.e.
:math:`L < 0.179`.
"""

from __future__ import annotations

import re

import numpy as np

#: (name, (R, G, B) in 0..255, label): 1 = white text reads best, 0 = black text.
TRAINING_COLORS: tuple[tuple[str, tuple[int, int, int], int], ...] = (
    ("black", (0, 0, 0), 1),
    ("white", (255, 255, 255), 0),
    ("navy", (0, 0, 128), 1),
    ("yellow", (255, 255, 0), 0),
    ("dark red", (139, 0, 0), 1),
    ("light sky blue", (135, 206, 250), 0),
    ("dark green", (0, 100, 0), 1),
    ("pink", (255, 192, 203), 0),
    ("purple", (128, 0, 128), 1),
    ("light green", (144, 238, 144), 0),
)

COLOR_NAMES: tuple[str, ...] = tuple(name for name, _, _ in TRAINING_COLORS)
#: the 10 training colours, RGB / 255, shape (10, 3)
COLORS: np.ndarray = np.array([rgb for _, rgb, _ in TRAINING_COLORS], dtype=np.float64) / 255.0
#: expected outputs, shape (10, 1): 1 = white text, 0 = black text
LABELS: np.ndarray = np.array([[label] for _, _, label in TRAINING_COLORS], dtype=np.float64)
COLORS.setflags(write=False)
LABELS.setflags(write=False)

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
_RGB = re.compile(r"^(?:rgb\s*\()?\s*(\d{1,3})\s*[,\s]\s*(\d{1,3})\s*[,\s]\s*(\d{1,3})\s*\)?$")


class ColorError(ValueError):
    """A colour string that cannot be read."""


def parse_color(text: str) -> np.ndarray:
    """Read ``'#1e90ff'``, ``'#fff'``, ``'rgb(250, 235, 215)'`` or ``'250,235,215'`` as RGB/255."""
    stripped = text.strip()
    match = _HEX.match(stripped)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return np.array([int(digits[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0
    match = _RGB.match(stripped.lower())
    if match:
        values = [int(v) for v in match.groups()]
        if all(0 <= v <= 255 for v in values):
            return np.array(values, dtype=np.float64) / 255.0
        raise ColorError(f"colour {text!r}: each channel must lie in 0..255, got {values}")
    raise ColorError(
        f"cannot read colour {text!r}: expected '#rrggbb', '#rgb', 'rgb(r, g, b)' or 'r,g,b' "
        "with channels 0..255"
    )


def to_hex(rgb01: np.ndarray) -> str:
    r, g, b = np.clip(np.round(np.asarray(rgb01) * 255), 0, 255).astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def relative_luminance(rgb01: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of colours ``(..., 3)`` with channels in 0..1."""
    c = np.asarray(rgb01, dtype=np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(luminance_a: np.ndarray, luminance_b: np.ndarray) -> np.ndarray:
    """WCAG 2 contrast ratio of two luminances (1 to 21)."""
    high = np.maximum(luminance_a, luminance_b)
    low = np.minimum(luminance_a, luminance_b)
    return (high + 0.05) / (low + 0.05)


def wcag_label(rgb01: np.ndarray) -> np.ndarray:
    """1 where white text has the higher WCAG contrast on the colour, else 0 (shape ``(...,)``)."""
    lum = relative_luminance(rgb01)
    return (contrast_ratio(lum, 1.0) > contrast_ratio(lum, 0.0)).astype(np.float64)


def random_colors(count: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``count`` colours drawn uniformly from the RGB cube, shape ``(count, 3)`` in 0..1."""
    return np.random.default_rng(rng).integers(0, 256, size=(count, 3)) / 255.0
