r"""Colours: the document's ten training colours, parsing colour strings, and the WCAG 2 rule.

WCAG 2 defines the relative luminance of an sRGB colour as
:math:`L = 0.2126 R + 0.7152 G + 0.0722 B` on linearised channels
(:math:`c / 12.92` for :math:`c \le 0.04045`, else :math:`((c + 0.055) / 1.055)^{2.4}`), and the
contrast ratio of two colours as :math:`(L_1 + 0.05) / (L_2 + 0.05)` with :math:`L_1 \ge L_2`.
White text wins over black exactly when :math:`(L + 0.05)^2 < 1.05 \cdot 0.05`, i.e.
:math:`L < 0.179`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The document's ``input``: ten colours, RGB already divided by 255, exactly as printed.
COLORS: np.ndarray = np.array(
    [
        [0, 1, 0],
        [0, 1, 1],
        [1, 0, 0],
        [0.95294118, 0.99607843, 0.99607843],
        [0.93333333, 0.93333333, 0.93333333],
        [0.90588235, 0.65098039, 0.80392157],
        [0, 0, 0],
        [0.87058824, 0.87058824, 0.80392157],
        [0.26666667, 0.26666667, 0.93333333],
        [0.92941176, 0.88627451, 0.0745098],
    ],
    dtype=np.float64,
)
#: The document's ``expected_output``, shape (10, 1): 1 = white text, 0 = black text.
LABELS: np.ndarray = np.array([[1], [1], [0], [0], [0], [0], [1], [0], [1], [0]], dtype=np.float64)
#: Display names: the document's own where it names a colour, else the colour's hex code.
COLOR_NAMES: tuple[str, ...] = (
    "pure green",
    "#00ffff",
    "pure red",
    "#f3fefe",
    "#eeeeee",
    "#e7a6cd",
    "pure black",
    "#dedecd",
    "#4444ee",
    "#ede213",
)
COLORS.setflags(write=False)
LABELS.setflags(write=False)

#: The longest colour string :func:`parse_color` reads (``'rgb( 255 , 255 , 255 )'`` is 23).
MAX_COLOR_LENGTH = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


class ColorError(ValueError):
    """A colour string that cannot be read."""


def parse_color(text: str) -> np.ndarray:
    """Read ``'#1e90ff'``, ``'#fff'``, ``'rgb(250, 235, 215)'`` or ``'250,235,215'`` as RGB/255.

    Linear time in the length of ``text`` (no regular expression that could backtrack), and
    strings longer than :data:`MAX_COLOR_LENGTH` are refused before any parsing.
    """
    if len(text) > MAX_COLOR_LENGTH:
        raise ColorError(
            f"colour string of {len(text)} characters: at most {MAX_COLOR_LENGTH} are read"
        )
    stripped = text.strip().lower()
    digits = stripped.removeprefix("#")
    if len(digits) in (3, 6) and set(digits) <= _HEX_DIGITS:
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return np.array([int(digits[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0
    inner = stripped
    if inner.startswith("rgb"):
        inner = inner[3:].strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise _unreadable(text)
        inner = inner[1:-1]
    parts = [p.strip() for p in inner.split(",")] if "," in inner else inner.split()
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        raise _unreadable(text)
    values = [int(p) for p in parts]
    if not all(0 <= v <= 255 for v in values):
        raise ColorError(f"colour {text!r}: each channel must lie in 0..255, got {values}")
    return np.array(values, dtype=np.float64) / 255.0


def _unreadable(text: str) -> ColorError:
    return ColorError(
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


@dataclass(frozen=True)
class LabelCheck:
    """One training colour: its label next to the WCAG 2 contrast of white and black text."""

    name: str
    rgb: np.ndarray
    label: int
    white_contrast: float
    black_contrast: float

    @property
    def wcag(self) -> int:
        """1 if white text has the higher contrast, else 0."""
        return int(self.white_contrast > self.black_contrast)

    @property
    def agrees(self) -> bool:
        return self.label == self.wcag


def label_checks(
    colors: np.ndarray = COLORS,
    labels: np.ndarray = LABELS,
    names: tuple[str, ...] | None = COLOR_NAMES,
) -> list[LabelCheck]:
    """Each colour's label against the WCAG 2 rule (defaults: the document's data)."""
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    lum = relative_luminance(colors)
    white, black = contrast_ratio(lum, 1.0), contrast_ratio(lum, 0.0)
    names = names if names is not None else tuple(to_hex(c) for c in colors)
    return [
        LabelCheck(names[i], colors[i], int(np.ravel(labels)[i]), float(white[i]), float(black[i]))
        for i in range(len(colors))
    ]


def label_table(checks: list[LabelCheck], probabilities: np.ndarray | None = None) -> str:
    """The checks as text, one colour per line, with the network's ``p(white)`` when given and
    each disagreement between label and WCAG marked."""
    word = ("black", "white")
    p_column = probabilities is not None
    lines = [
        f"{'colour':>12s}  {'RGB/255':24s} {'label':>5s}"
        + ("  p(white)" if p_column else "")
        + f"  {'WCAG white':>10s} {'WCAG black':>10s}  {'WCAG picks':>10s}"
    ]
    for i, c in enumerate(checks):
        rgb = " ".join(f"{v:.4f}" for v in c.rgb)
        note = "" if c.agrees else "  <- label disagrees with WCAG"
        p = f"  {probabilities[i]:8.3f}" if p_column else ""
        lines.append(
            f"{c.name:>12s}  {rgb:24s} {word[c.label]:>5s}{p}  {c.white_contrast:9.2f}:1 "
            f"{c.black_contrast:9.2f}:1  {word[c.wcag]:>10s}{note}"
        )
    return "\n".join(lines)


def random_colors(count: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``count`` colours drawn uniformly from the RGB cube, shape ``(count, 3)`` in 0..1."""
    return np.random.default_rng(rng).integers(0, 256, size=(count, 3)) / 255.0
