"""The atlas as a static site: pages that show every rendered filter of every layer.

The renderer leaves one PNG per filter in an output folder ``DIR``; :func:`write_site` adds the
pages that let a reader browse them, from disk, with no server and nothing loaded from the
network::

    DIR/index.html             every layer in order: what it is, how many of its filters are
                               rendered and how many are dead, its most active filters, the
                               parameters of the run
    DIR/<layer>/index.html     every rendered filter of one layer as a grid, sortable by final
                               activation (highest or lowest first) or by index; a click shows one
                               filter larger, with its activation over the ascent steps and, for a
                               layer that reads RGB pixels, its kernel drawn as colours
    DIR/<layer>/<NNNN>.png     the rendered filters (written by the renderer, not here)
    DIR/atlas.json             the atlas itself (written by the renderer, not here)

A filter is *dead* when its final mean activation is at most 0: gradient ascent found no input
that makes it fire (a ReLU that stays at 0 passes no gradient).

Everything that comes from outside -- layer names, descriptions, parameter values -- is escaped
for HTML (text and attributes; code points HTML forbids show as U+FFFD) and percent-encoded
where it is part of an address. The pages
carry no data in scripts: a layer page's script only reads the grid's ``data-`` attributes, and
the view it shows (order, open filter) lives in the address's fragment, e.g.
``block1_conv1/index.html#sort=index&filter=7``. Each page is written atomically.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ...io.atomic import atomic_write

ASSETS = Path(__file__).resolve().parent
#: how many of a layer's most active filters the index shows
THUMBNAILS = 6
#: names a layer cannot have: its folder would take the place of one of the site's files
RESERVED_NAMES = frozenset({"index.html", "atlas.json"})
#: images narrower than this are drawn with visible pixels rather than blurred when scaled up
SMALL_IMAGE = 64
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: what HTML forbids in a document: control characters other than tab, newlines and form feed,
#: surrogates and noncharacters (a browser shows most of them as nothing, NUL as U+FFFD)
NOT_IN_HTML = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
    + "]"
)
#: the orders a layer page offers (its script knows the same names); the first is the default
ORDERS = {
    "activation-desc": "activation, highest first",
    "activation-asc": "activation, lowest first",
    "index": "filter index",
}


def _check_layer_name(name: object) -> None:
    """Raise ``ValueError`` unless ``name`` can be one folder's name inside the output folder."""
    if not isinstance(name, str):
        raise ValueError(f"a layer name must be a string, got {name!r}")
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(
            f"layer name {name!r} cannot be a folder name: it must be non-empty, not '.' or "
            "'..', and hold no '/', '\\' or NUL"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"layer name {name!r} is the name of one of the site's own files")


@dataclass(frozen=True)
class LayerSummary:
    """What the site says about one layer, beside its rendered filters.

    Parameters
    ----------
    name : str
        The layer's name as in the atlas (``"block1_conv1"``, or a module path such as ``"0"``
        or ``"1.0"``); it is also the name of the layer's folder.
    description : str
        What the layer is, as plain text, e.g. ``"Conv2d(3 -> 64, 3x3)"``.
    channels : int
        How many filters the layer has (the atlas may hold fewer of them).
    rgb_kernels : numpy.ndarray, optional
        ``(channels, 3, kh, kw)`` weights, channel axis in R, G, B order, when the layer reads
        RGB pixels directly (VGG16's ``block1_conv1``; Keras' Caffe-style weights are B, G, R
        and must be flipped first). Each filter's page then draws its kernel as a picture.
    """

    name: str
    description: str
    channels: int
    rgb_kernels: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_layer_name(self.name)
        if not isinstance(self.description, str):
            raise ValueError(
                f"layer {self.name!r}: description must be a string, got {self.description!r}"
            )
        if (
            not isinstance(self.channels, numbers.Integral)
            or isinstance(self.channels, bool)
            or self.channels < 1
        ):
            raise ValueError(
                f"layer {self.name!r}: channels must be a positive integer, got {self.channels!r}"
            )
        if self.rgb_kernels is not None:
            kernels = np.asarray(self.rgb_kernels)
            if kernels.ndim != 4 or kernels.shape[:2] != (self.channels, 3):
                raise ValueError(
                    f"layer {self.name!r}: rgb_kernels must have shape ({self.channels}, 3, kh, "
                    f"kw), got {kernels.shape}"
                )
            if not np.issubdtype(kernels.dtype, np.number) or not np.isfinite(kernels).all():
                raise ValueError(f"layer {self.name!r}: rgb_kernels must be finite numbers")


@dataclass(frozen=True)
class _Filter:
    """One rendered filter, checked: its image exists inside the output folder."""

    layer: str
    index: int
    activation: float
    image: str  # relative to the output folder, '/'-separated
    width: int
    height: int

    @property
    def dead(self) -> bool:
        return self.activation <= 0


def write_site(
    out: str | Path,
    atlas: Mapping,
    layers: Sequence[LayerSummary],
    curves: Mapping[tuple[str, int], Sequence[float]] | None = None,
) -> None:
    """Write ``out/index.html`` and one ``out/<layer>/index.html`` per layer (atomically).

    Parameters
    ----------
    out : str or pathlib.Path
        The output folder; it already holds the rendered PNGs the atlas names.
    atlas : Mapping
        ``{"parameters": {...}, "filters": [{"layer", "filter", "activation", "image"}, ...]}``
        as in ``out/atlas.json``; ``image`` is relative to ``out``, ``'/'``-separated.
    layers : sequence of LayerSummary
        Every layer the site shows, in the order it shows them; a layer may have no rendered
        filter yet.
    curves : Mapping, optional
        ``curves[(layer, filter)]`` is the filter's mean activation after each ascent step,
        drawn on its page; filters without one simply have no curve.

    Raises
    ------
    ValueError
        When the input is inconsistent, naming what is wrong: a filter of a layer not in
        ``layers``, a filter index outside ``range(channels)`` or given twice, an activation
        that is not a finite number, an image outside ``out``, missing, or not a PNG, a curve
        of a filter that is not in the atlas, a parameter that is not a JSON value, or a layer
        named twice. Everything is checked before the first page is written, so a refusal
        leaves ``out`` as it was.
    """
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"the output folder {out} does not exist or is not a folder")
    parameters, entries = _parts_of(atlas)
    summaries = _checked_layers(layers)
    filters = _checked_filters(out, entries, summaries)
    checked_curves = _checked_curves(curves or {}, filters)
    model = parameters.get("model", "model")
    for summary in summaries.values():
        page = _layer_page(summary, filters[summary.name], checked_curves, model)
        _write(out / summary.name / "index.html", page)
    _write(out / "index.html", _index_page(parameters, summaries, filters, model))


# ----------------------------------------------------------------------------- checking the input
def _parts_of(atlas: Mapping) -> tuple[dict[str, str], Sequence]:
    """The atlas's parameters as text (see :func:`_parameter_text`) and its filter entries."""
    if not isinstance(atlas, Mapping):
        raise ValueError(f"the atlas must be a mapping, got {type(atlas).__name__}")
    parameters, entries = atlas.get("parameters"), atlas.get("filters")
    if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
        raise ValueError("the atlas needs 'parameters': a mapping with string keys")
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ValueError("the atlas needs 'filters': a list of filter entries")
    return {key: _parameter_text(key, value) for key, value in parameters.items()}, entries


def _parameter_text(key: str, value: object) -> str:
    """A parameter's value as text: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"parameter {key!r} is not a JSON value: {value!r}") from err


def _checked_layers(layers: Sequence[LayerSummary]) -> dict[str, LayerSummary]:
    """The layers by name, in order; each a LayerSummary, no name twice."""
    summaries: dict[str, LayerSummary] = {}
    for summary in layers:
        if not isinstance(summary, LayerSummary):
            raise ValueError(f"layers must hold LayerSummary objects, got {summary!r}")
        if summary.name in summaries:
            raise ValueError(f"layer {summary.name!r} is given twice")
        summaries[summary.name] = summary
    return summaries


def _checked_filters(
    out: Path, entries: Sequence, summaries: Mapping[str, LayerSummary]
) -> dict[str, list[_Filter]]:
    """Each layer's filters, most active first (ties by index), after checking every entry."""
    root = out.resolve()
    filters: dict[str, list[_Filter]] = {name: [] for name in summaries}
    seen: set[tuple[str, int]] = set()
    for number, entry in enumerate(entries):
        item = _checked_entry(root, f"filter entry {number}", entry, summaries)
        if (item.layer, item.index) in seen:
            raise ValueError(
                f"filter entry {number}: filter {item.index} of layer {item.layer!r} is given twice"
            )
        seen.add((item.layer, item.index))
        filters[item.layer].append(item)
    for members in filters.values():
        members.sort(key=lambda f: (-f.activation, f.index))
    return filters


def _checked_entry(
    root: Path, where: str, entry: object, summaries: Mapping[str, LayerSummary]
) -> _Filter:
    """One filter entry of the atlas, checked; ``where`` names it in error messages."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a mapping, got {entry!r}")
    missing = {"layer", "filter", "activation", "image"} - set(entry)
    if missing:
        raise ValueError(f"{where} lacks {sorted(missing)}")
    layer, index, activation = entry["layer"], entry["filter"], entry["activation"]
    if not isinstance(layer, str) or layer not in summaries:
        raise ValueError(f"{where} names layer {layer!r}, which is not among the layers")
    channels = summaries[layer].channels
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise ValueError(f"{where}: the filter index must be an integer, got {index!r}")
    if not 0 <= index < channels:
        raise ValueError(
            f"{where}: filter {index} is outside layer {layer!r}'s {channels} channels"
        )
    if (
        not isinstance(activation, numbers.Real)
        or isinstance(activation, bool)
        or not math.isfinite(activation)
    ):
        raise ValueError(f"{where}: the activation must be a finite number, got {activation!r}")
    image = entry["image"]
    width, height = _png_size(_checked_image(root, image, where), where)
    return _Filter(layer, int(index), float(activation), image, width, height)


def _checked_image(root: Path, image: object, where: str) -> Path:
    """The file that ``image``, a '/'-separated path relative to ``root``, names inside it."""
    if not isinstance(image, str) or not image:
        raise ValueError(f"{where}: the image must be a non-empty path string, got {image!r}")
    parts = image.split("/")
    if (
        image.startswith("/")
        or any(c in image for c in "\\\0")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(
            f"{where}: image {image!r} must be a relative '/'-separated path inside the output "
            "folder, with no '.', '..' or empty parts"
        )
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{where}: image {image!r} leads outside the output folder {root}")
    if not path.is_file():
        raise ValueError(f"{where}: image {image!r} does not exist in {root}")
    return path


def _png_size(path: Path, where: str) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk comes first)."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{where}: {path} is not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _checked_curves(
    curves: Mapping[tuple[str, int], Sequence[float]], filters: Mapping[str, list[_Filter]]
) -> dict[tuple[str, int], list[float]]:
    """The curves as float lists, each of a filter in the atlas, non-empty and finite."""
    rendered = {(f.layer, f.index) for members in filters.values() for f in members}
    checked: dict[tuple[str, int], list[float]] = {}
    for key, values in curves.items():
        if key not in rendered:
            raise ValueError(f"curve {key!r} is not a (layer, filter) of a filter in the atlas")
        try:
            numbers_ = [float(v) for v in values]
        except (TypeError, ValueError) as err:
            raise ValueError(f"curve {key!r} must be a sequence of numbers") from err
        if not numbers_ or not all(math.isfinite(v) for v in numbers_):
            raise ValueError(f"curve {key!r} must hold at least one value, all finite")
        checked[key] = numbers_
    return checked


# ----------------------------------------------------------------------------- building blocks
def _e(text: object) -> str:
    """``text`` escaped for HTML text and quoted attribute values; code points HTML does not
    allow in a document (see :data:`NOT_IN_HTML`) become U+FFFD, the replacement character."""
    return html.escape(NOT_IN_HTML.sub("\ufffd", str(text)), quote=True)


def _href(*parts: str) -> str:
    """A relative address from path parts, each percent-encoded (``/`` inside a part too)."""
    return "/".join(quote(part, safe="") for part in parts)


def _image_href(image: str, up: bool) -> str:
    """The address of an atlas image (relative to the output folder) from the index page, or
    (``up``) from a layer page one folder down."""
    return _href(*([".."] if up else []), *image.split("/"))


def _number(value: float) -> str:
    """An activation as a reader wants it: four significant digits."""
    return f"{value:.4g}"


def _counts(rendered: int, channels: int, dead: int) -> str:
    """The line of counts for one layer, with the numbers also as data attributes."""
    dead_text = f' · <span class="dead">{dead} dead</span>' if dead else " · none dead"
    return (
        f'<p class="counts" data-rendered="{rendered}" data-channels="{channels}" '
        f'data-dead="{dead}">{rendered} of {channels} filters rendered{dead_text}</p>'
    )


def _asset(name: str) -> str:
    """A stylesheet or script of this package (holding no ``</``, so it can be inlined)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _page(title: str, body: str, script: bool) -> str:
    """A whole HTML5 page: ``title`` (plain text), ``body`` (HTML), the inlined stylesheet and,
    if ``script``, the layer page's script."""
    code = f"<script>{_asset('site.js')}</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_asset('site.css')}</style>\n</head>\n"
        f"<body>\n{body}\n{code}</body>\n</html>\n"
    )


def _write(path: Path, page: str) -> None:
    with atomic_write(path) as handle:
        handle.write(page.encode("utf-8"))


def _img(item: _Filter, up: bool, alt: str, css_class: str = "") -> str:
    """An ``<img>`` of one filter; small images are drawn with visible pixels."""
    classes = " ".join(c for c in (css_class, "pixelated" if item.width < SMALL_IMAGE else "") if c)
    attribute = f' class="{classes}"' if classes else ""
    return (
        f'<img src="{_e(_image_href(item.image, up))}" alt="{_e(alt)}" width="{item.width}" '
        f'height="{item.height}"{attribute}>'
    )


# ----------------------------------------------------------------------------- the index page
def _index_page(
    parameters: Mapping[str, str],
    summaries: Mapping[str, LayerSummary],
    filters: Mapping[str, list[_Filter]],
    model: str,
) -> str:
    """Every layer with its counts and most active filters, and the run's parameters."""
    rendered = sum(len(members) for members in filters.values())
    channels = sum(s.channels for s in summaries.values())
    dead = sum(f.dead for members in filters.values() for f in members)
    cards = "\n".join(_layer_card(s, filters[s.name]) for s in summaries.values())
    rows = "\n".join(
        f"<dt>{_e(key)}</dt><dd><code>{_e(text)}</code></dd>" for key, text in parameters.items()
    )
    body = f"""<header>
<h1>{_e(model)}, every filter</h1>
<p class="muted">Each picture is an input image grown by gradient ascent to make one filter fire
as strongly as it can. {rendered} of {channels} filters rendered in {len(summaries)} layers;
{dead} dead (final mean activation at most 0).</p>
<dl class="parameters">
{rows}
</dl>
</header>
<main>
<ol class="layers">
{cards}
</ol>
</main>
<footer>Open a layer to see all of its filters, sorted by how strongly each fires at the end of
the ascent. Its most active filters are shown here.</footer>"""
    return _page(f"{model}: every filter", body, script=False)


def _layer_card(summary: LayerSummary, members: list[_Filter]) -> str:
    """One layer on the index: its link, description, counts and most active filters."""
    page = _href(summary.name, "index.html")
    thumbs = "".join(
        f'<a href="{_e(page)}#filter={item.index}" title="filter {item.index}: activation '
        f'{_number(item.activation)}">'
        f"{_img(item, up=False, alt=f'filter {item.index}')}</a>"
        for item in members[:THUMBNAILS]
    )
    thumbs_block = f'\n<div class="thumbs">{thumbs}</div>' if thumbs else ""
    dead = sum(f.dead for f in members)
    return f"""<li data-layer="{_e(summary.name)}">
<div class="layer-head">
<h2><a href="{_e(page)}">{_e(summary.name)}</a></h2>
<span class="muted">{_e(summary.description)}</span>
</div>
{_counts(len(members), summary.channels, dead)}{thumbs_block}
</li>"""


# ----------------------------------------------------------------------------- a layer page
def _layer_page(
    summary: LayerSummary,
    members: list[_Filter],
    curves: Mapping[tuple[str, int], list[float]],
    model: str,
) -> str:
    """Every rendered filter of one layer, most active first, with the sort controls and the
    dialog that shows one filter larger."""
    buttons = "\n".join(
        f'<button type="button" data-sort="{key}" aria-pressed="{str(i == 0).lower()}">'
        f"{label}</button>"
        for i, (key, label) in enumerate(ORDERS.items())
    )
    kernels = None if summary.rgb_kernels is None else np.asarray(summary.rgb_kernels, float)
    tiles = "\n".join(
        _tile(
            item,
            curves.get((item.layer, item.index)),
            None if kernels is None else kernels[item.index],
        )
        for item in members
    )
    empty = "" if members else '<p class="muted">No filter of this layer is rendered yet.</p>\n'
    grid = f'{empty}<ol class="grid" id="grid">\n{tiles}\n</ol>'
    body = f"""<header>
<a class="back" href="../index.html">&larr; every layer of {_e(model)}</a>
<h1>{_e(summary.name)}</h1>
<p class="muted">{_e(summary.description)}</p>
{_counts(len(members), summary.channels, sum(f.dead for f in members))}
</header>
<main>
<div class="controls" id="controls" role="group" aria-label="order of the filters" hidden>
<span class="muted">sort by</span>
{buttons}
</div>
{grid}
<dialog class="detail" id="detail" aria-labelledby="detail-title">
<div class="nav">
<h2 id="detail-title">one filter</h2>
<span class="buttons"><button type="button" data-step="-1">&lsaquo; previous</button>
<button type="button" data-step="1">next &rsaquo;</button>
<button type="button" data-close>close</button></span>
</div>
<div id="detail-body"></div>
</dialog>
</main>
<footer>Each picture is the input image gradient ascent grew to make one filter of this layer fire;
the number is the filter's mean activation at the end. A filter at 0 or below is dead: nothing
made it fire. Click a filter to see it larger, with its activation step by step; the arrow keys
move to its neighbours.</footer>"""
    return _page(f"{summary.name} · {model}", body, script=True)


def _tile(item: _Filter, curve: list[float] | None, kernel: np.ndarray | None) -> str:
    """One filter in the grid: its picture (a link to the PNG itself), index and activation,
    and, in a template the script shows in the dialog, the larger view with its activation
    ``curve`` and RGB ``kernel`` when given."""
    own_png = _image_href(item.image, up=True)
    alt = f"filter {item.index}"
    facts = [f"<p>final mean activation <strong>{_number(item.activation)}</strong></p>"]
    if curve is not None:
        facts.append(_curve_figure(curve))
    if kernel is not None:
        facts.append(_kernel_figure(kernel))
    detail = (
        f'<div class="body">{_img(item, up=True, alt=alt, css_class="large")}'
        f'<div class="facts">{"".join(facts)}</div></div>'
    )
    dead = ' class="dead"' if item.dead else ""
    return (
        f'<li id="filter-{item.index}" data-filter="{item.index}" '
        f'data-activation="{item.activation!r}"{dead}>'
        f'<a href="{_e(own_png)}">{_img(item, up=True, alt=alt)}'
        f'<span class="caption"><span>#{item.index}</span>'
        f'<span class="activation">{_number(item.activation)}</span></span></a>'
        f"<template>{detail}</template></li>"
    )


def _curve_figure(values: list[float], width: int = 280, height: int = 90) -> str:
    """An inline SVG sparkline of the activation after each step, with a caption.

    Step ``i`` of ``n`` sits at ``x = pad + i (width - 2 pad) / (n - 1)``; the values are scaled
    so the lowest touches the bottom line and the highest the top line.
    """
    pad, top, bottom = 6, 14, height - 16
    low, high = min(values), max(values)
    span = high - low

    def y(value: float) -> float:
        return (top + bottom) / 2 if span == 0 else bottom - (value - low) / span * (bottom - top)

    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [(pad + i * step, y(v)) for i, v in enumerate(values)]
    line = (
        f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="3"/>'
        if len(points) == 1
        else '<polyline points="' + " ".join(f"{x:.1f},{y_:.1f}" for x, y_ in points) + '"/>'
    )
    svg = (
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="activation after each ascent step">'
        f'<line x1="{pad}" y1="{top}" x2="{width - pad}" y2="{top}"/>'
        f'<line x1="{pad}" y1="{bottom}" x2="{width - pad}" y2="{bottom}"/>'
        f'<text x="{pad}" y="{top - 3}">{_number(high)}</text>'
        f'<text x="{pad}" y="{height - 3}">{_number(low)}</text>'
        f'<text x="{width - pad}" y="{height - 3}" text-anchor="end">step {len(values)}</text>'
        f"{line}</svg>"
    )
    caption = (
        f"Mean activation after each of the {len(values)} ascent steps: from "
        f"{_number(values[0])} to {_number(values[-1])}."
    )
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _kernel_figure(kernel: np.ndarray) -> str:
    """A ``(3, kh, kw)`` RGB kernel as an SVG of coloured squares, with a caption.

    Each position's colour is ``255 (1 + w / max|w|) / 2`` per channel, the maximum taken over
    the kernel's ``3 kh kw`` weights: mid grey is 0; more of a channel's colour means a more
    positive weight on that channel, less of it a more negative one.
    """
    _, kh, kw = kernel.shape
    largest = float(np.abs(kernel).max())
    scaled = kernel / largest if largest > 0 else np.zeros_like(kernel)
    colours = np.rint(255 * (1 + scaled) / 2).astype(int)
    squares = "".join(
        f'<rect x="{j}" y="{i}" width="1" height="1" '
        f'fill="rgb({colours[0, i, j]},{colours[1, i, j]},{colours[2, i, j]})"/>'
        for i in range(kh)
        for j in range(kw)
    )
    svg = (
        f'<svg class="kernel" viewBox="0 0 {kw} {kh}" shape-rendering="crispEdges" role="img" '
        f'aria-label="the filter&#x27;s {kh}x{kw} kernel">{squares}</svg>'
    )
    caption = (
        f"The filter's {kh}x{kw} kernel on the input pixels: each square is one position, its "
        "colour the (R, G, B) weights there divided by the kernel's largest |weight| and mapped "
        "from [-1, 1] to [0, 255], so mid grey is 0."
    )
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"
