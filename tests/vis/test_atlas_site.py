"""The atlas's static site: the pages :func:`write_site` writes from rendered filters, checked as
HTML (every address resolves, each layer lists exactly its filters, counts, order, escaping), its
refusals of bad input, and, in headless Chromium, the pages as a reader sees them.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte on file descriptors 3 and 4), so a test can click, read the live
page, collect every console message and take a screenshot.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.browser import CHROMIUM, Browser
from tinygrad_edu.vis.atlas.site import ASSETS, NOT_IN_HTML, THUMBNAILS, LayerSummary, write_site

Image = pytest.importorskip("PIL.Image", reason="Pillow (the image extra) writes the test PNGs")

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
#: the tags the pages are made of: a hostile name must never add another
TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "h1", "h2",
    "p", "a", "span", "strong", "code", "dl", "dt", "dd", "ol", "li", "div", "img", "button",
    "dialog", "template", "figure", "figcaption", "svg", "polyline", "circle", "line", "text",
    "rect", "script",
}  # fmt: skip


# ----------------------------------------------------------------------------- a fake atlas
def write_png(path: Path, size: int, seed: int) -> None:
    """A colourful ``size`` x ``size`` PNG: smooth waves plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    phase = rng.random(3) * 2 * np.pi
    waves = [np.sin(2 * np.pi * (x * (c + 1) + y * (2 - c)) + phase[c]) for c in range(3)]
    image = 0.5 + 0.4 * np.stack(waves, axis=-1) + 0.1 * rng.random((size, size, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(path)


#: layer -> (description, channels, rendered filter indices, image size)
LAYERS = {
    "block1_conv1": ("Conv2d(3 -> 64, 3x3)", 64, list(range(10)), 128),
    "block5_conv3": ("Conv2d(512 -> 512, 3x3)", 512, [0, 3, 7, 100, 511], 32),
    "1.0": ("Conv2d(8 -> 16, 3x3)", 16, [2, 1], 8),
    "2": ("ReLU (nothing rendered yet)", 4, [], 8),
}
KERNELS = np.random.default_rng(1).normal(size=(64, 3, 3, 3))


def activation_of(layer: str, index: int) -> float:
    """Distinct activations with ties and dead filters: every third filter is dead."""
    return 0.0 if index % 3 == 0 else round(math.sin(index + len(layer)) * 10, 1)


def fake_site(out: Path, layers: dict = LAYERS) -> tuple[dict, list[LayerSummary], dict]:
    """PNGs, the atlas, the layer summaries and curves of a small made-up run."""
    filters, curves = [], {}
    for layer, (_, _, indices, size) in layers.items():
        for index in indices:
            image = f"{layer}/{index:04d}.png"
            write_png(out / image, size, seed=index)
            activation = activation_of(layer, index)
            filters.append(
                {"layer": layer, "filter": index, "activation": activation, "image": image}
            )
            if index != 7:  # one filter has no curve
                curves[(layer, index)] = list(np.linspace(0, activation, 5))
    parameters = {"model": "VGG16", "weights": "ab" * 32, "steps": 5, "size": 128, "seed": 0}
    summaries = [
        LayerSummary(name, text, channels, KERNELS if name == "block1_conv1" else None)
        for name, (text, channels, _, _) in layers.items()
    ]
    return {"parameters": parameters | {"mode": "classic"}, "filters": filters}, summaries, curves


def most_active_first(layer: str, indices: list[int]) -> list[int]:
    return sorted(indices, key=lambda i: (-activation_of(layer, i), i))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("atlas")
    write_site(out, *fake_site(out))
    return out


# ----------------------------------------------------------------------------- reading the pages
class Page(HTMLParser):
    """What a page is made of: its tags, addresses, texts, and the elements tests look for."""

    VOID = frozenset({"meta", "img"})  # the pages' elements that have no end tag

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.addresses: list[str] = []
        self.texts: list[str] = []
        self.text_in: dict[str, list[str]] = {}  # tag -> the texts right inside such elements
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.unclosed: list[str] = []
        self.feed(path.read_bytes().decode("utf-8"))  # as written: no newline translation
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.tags.append(tag)
        self.elements.append((tag, attributes))
        self.addresses += [attributes[key] for key in ("href", "src") if key in attributes]
        if tag not in self.VOID:
            self.unclosed.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert tag in self.unclosed, f"</{tag}> closes nothing"
        while self.unclosed.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self.unclosed:
            self.text_in.setdefault(self.unclosed[-1], []).append(data)

    def having(self, tag: str, attribute: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.elements if t == tag and attribute in attrs]


def layer_page(out: Path, layer: str) -> Page:
    return Page(out / layer / "index.html")


# ----------------------------------------------------------------------------- the pages as HTML
def assert_addresses_resolve(path: Path, root: Path) -> Page:
    """Parse the page at ``path``; each of its addresses names a file inside ``root``."""
    page = Page(path)
    assert page.addresses, path
    for address in page.addresses:
        parts = urlsplit(address)
        assert not parts.scheme and not parts.netloc, address  # nothing from the network
        target = (path.parent / unquote(parts.path)).resolve()
        assert target.is_file() and target.is_relative_to(root.resolve()), address
    return page


def test_every_address_resolves_to_a_file_in_the_atlas(site):
    for path in [site / "index.html", *(site / layer / "index.html" for layer in LAYERS)]:
        page = assert_addresses_resolve(path, site)
        assert page.tags[0] == "html" and set(page.tags) <= TAGS and not page.unclosed


def test_each_layer_page_lists_exactly_its_filters_most_active_first(site):
    for layer, (_, _, indices, size) in LAYERS.items():
        tiles = layer_page(site, layer).having("li", "data-filter")
        assert [int(t["data-filter"]) for t in tiles] == most_active_first(layer, indices)
        assert [float(t["data-activation"]) for t in tiles] == [
            activation_of(layer, int(t["data-filter"])) for t in tiles
        ]
        assert [t.get("class") == "dead" for t in tiles] == [
            activation_of(layer, int(t["data-filter"])) <= 0 for t in tiles
        ]
        images = [
            i
            for i in layer_page(site, layer).having("img", "src")
            if "large" not in i.get("class", "")
        ]
        assert [i["src"] for i in images] == [
            f"../{layer}/{int(t['data-filter']):04d}.png" for t in tiles
        ]
        assert all(i["width"] == i["height"] == str(size) for i in images)
        assert all(("pixelated" in i.get("class", "")) == (size < 64) for i in images)


def test_the_counts_on_the_index_and_the_layer_pages(site):
    index = Page(site / "index.html")
    cards = index.having("li", "data-layer")
    assert [card["data-layer"] for card in cards] == list(LAYERS)  # in the given order
    counts = index.having("p", "data-rendered")
    text = re.sub(r"\s+", " ", "".join(index.texts))
    for layer, count in zip(LAYERS, counts):
        _, channels, indices, _ = LAYERS[layer]
        dead = sum(activation_of(layer, i) <= 0 for i in indices)
        expected = {"rendered": len(indices), "channels": channels, "dead": dead}
        assert {k: int(count[f"data-{k}"]) for k in expected} == expected
        assert layer_page(site, layer).having("p", "data-rendered")[0] == count
        dead_text = f"{dead} dead" if dead else "none dead"
        assert f"{len(indices)} of {channels} filters rendered · {dead_text}" in text
    assert "17 of 596 filters rendered in 4 layers; 11 dead" in text


def test_the_index_shows_each_layers_most_active_filters(site):
    links = Page(site / "index.html").having("a", "href")
    for layer, (_, _, indices, _) in LAYERS.items():
        shown = [a["href"] for a in links if a["href"].startswith(f"{layer}/index.html#filter=")]
        expected = most_active_first(layer, indices)[:THUMBNAILS]
        assert shown == [f"{layer}/index.html#filter={i}" for i in expected]


def test_the_larger_view_draws_the_curve_and_the_rgb_kernel(site):
    page = layer_page(site, "block1_conv1")
    curves = [p["points"].split() for p in page.having("polyline", "points")]
    assert len(curves) == 9 and all(len(points) == 5 for points in curves)  # filter 7 has none
    rectangles = [r["fill"] for r in page.having("rect", "fill")]
    assert len(rectangles) == 10 * 9
    best = most_active_first("block1_conv1", LAYERS["block1_conv1"][2])[0]
    kernel = KERNELS[best] / np.abs(KERNELS[best]).max()
    colours = np.rint(255 * (1 + kernel) / 2).astype(int)
    expected = [f"rgb({r},{g},{b})" for r, g, b in colours.reshape(3, 9).T]
    assert rectangles[:9] == expected
    assert not layer_page(site, "block5_conv3").having("rect", "fill")  # no RGB kernels there


def test_writing_twice_gives_the_same_pages(site):
    before = {p: p.read_bytes() for p in site.rglob("*.html")}
    write_site(site, *fake_site(site))
    assert {p: p.read_bytes() for p in site.rglob("*.html")} == before


def test_the_inlined_stylesheet_and_script_cannot_end_their_element():
    for asset in ("site.css", "site.js"):
        assert "</" not in (ASSETS / asset).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- hostile text
@settings(max_examples=40, deadline=None)
@given(
    description=st.text(),
    value=st.text(),
    name=st.from_regex(r"\A[A-Za-z0-9_.-]+\Z").filter(lambda n: n not in (".", "..")),
)
def test_hostile_names_descriptions_and_parameters_stay_text(description, value, name):
    hostile = f"</script><script>alert('{value}')</script>&amp;\"'<b>"
    odd_name = '~x <b>"&amp;#1?%20é'  # a layer name that must be percent-encoded
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        layers = {name: (description, 3, [1], 8), odd_name: (hostile, 2, [0], 8)}
        atlas, summaries, _ = fake_site(out, layers)
        atlas["parameters"] |= {"model": hostile, "mode": value, hostile: [value]}
        write_site(out, atlas, summaries)
        index = assert_addresses_resolve(out / "index.html", out)
        page = assert_addresses_resolve(out / name / "index.html", out)
        assert_addresses_resolve(out / odd_name / "index.html", out)
    for parsed in (index, page):
        assert set(parsed.tags) <= TAGS and not parsed.unclosed  # every element is closed
        assert parsed.tags.count("script") == (parsed is page)
        assert not any(k.startswith("on") for _, attrs in parsed.elements for k in attrs)
    # what HTML cannot carry shows as U+FFFD; everything else is the text itself
    as_json = shown(json.dumps([value], ensure_ascii=False))
    description, value, hostile = (shown(t) for t in (description, value, hostile))
    if description:
        assert description in index.text_in["span"] and description in page.text_in["p"]
    assert f"{hostile}, every filter" in index.text_in["h1"]
    assert f"{hostile}: every filter" in index.text_in["title"]
    assert page.text_in["h1"] == [name] and page.text_in["title"] == [f"{name} · {hostile}"]
    assert hostile in index.text_in["dt"] and hostile in index.text_in["span"]
    values = index.text_in.get("code", [])
    assert as_json in values
    assert not value or value in values
    assert [a["data-layer"] for a in index.having("li", "data-layer")] == [name, odd_name]
    link = index.having("a", "href")[0]["href"]
    assert unquote(link) == f"{name}/index.html"


def shown(text: str) -> str:
    return NOT_IN_HTML.sub("\ufffd", text)


def test_what_html_cannot_carry_is_shown_as_the_replacement_character(tmp_path):
    text = "a\0b\x01c\x0bd\x7fe\x85f\ufdd0g\uffffh\U0010fffei\ud800j"
    kept = "\t\n\x0c\r é😀"
    atlas, summaries, _ = fake_site(tmp_path, {"0": (text + kept, 2, [1], 8)})
    write_site(tmp_path, atlas, summaries)
    assert (
        "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj" + kept
        in (Page(tmp_path / "0" / "index.html").text_in["p"])
    )


# ----------------------------------------------------------------------------- refusals
def _entry(atlas: dict, number: int = 0) -> dict:
    return atlas["filters"][number]


BAD_ATLASES = {
    "an unknown layer": (lambda a, s, c: _entry(a).update(layer="block9"), "layer 'block9'"),
    "a layer that is no string": (
        lambda a, s, c: _entry(a).update(layer=["block1_conv1"]),
        "not among the layers",
    ),
    "a missing key": (lambda a, s, c: _entry(a).pop("activation"), r"lacks \['activation'\]"),
    "an index past the channels": (lambda a, s, c: _entry(a).update(filter=64), "outside"),
    "a negative index": (lambda a, s, c: _entry(a).update(filter=-1), "outside"),
    "an index that is a bool": (lambda a, s, c: _entry(a).update(filter=True), "integer"),
    "a filter twice": (lambda a, s, c: a["filters"].append(dict(_entry(a))), "given twice"),
    "a NaN activation": (lambda a, s, c: _entry(a).update(activation=math.nan), "finite"),
    "an infinite activation": (lambda a, s, c: _entry(a).update(activation=math.inf), "finite"),
    "a text activation": (lambda a, s, c: _entry(a).update(activation="1.0"), "finite"),
    "an image outside": (
        lambda a, s, c: _entry(a).update(image="../outside.png"),
        "relative '/'-separated path inside",
    ),
    "an image path with NUL": (
        lambda a, s, c: _entry(a).update(image="block1_conv1/0001.png\0"),
        "relative",
    ),
    "an absolute image path": (lambda a, s, c: _entry(a).update(image="/etc/passwd"), "relative"),
    "a missing image": (
        lambda a, s, c: _entry(a).update(image="block1_conv1/0063.png"),
        "does not exist",
    ),
    "an image that is not a PNG": (
        lambda a, s, c: _entry(a).update(image="block1_conv1/index.html"),
        "not a PNG",
    ),
    "no filters list": (lambda a, s, c: a.pop("filters"), "'filters'"),
    "parameters that are not a mapping": (
        lambda a, s, c: a.update(parameters=[1]),
        "'parameters'",
    ),
    "a parameter that is not JSON": (
        lambda a, s, c: a["parameters"].update(seed=object()),
        "parameter 'seed'",
    ),
    "a layer twice": (lambda a, s, c: s.append(s[0]), "'block1_conv1' is given twice"),
    "a curve of no rendered filter": (
        lambda a, s, c: c.update({("block1_conv1", 40): [1.0]}),
        r"curve \('block1_conv1', 40\)",
    ),
    "a curve with NaN": (
        lambda a, s, c: c.update({("block1_conv1", 1): [1.0, math.nan]}),
        "finite",
    ),
    "an empty curve": (lambda a, s, c: c.update({("block1_conv1", 1): []}), "at least one"),
}


@pytest.mark.parametrize("spoil", BAD_ATLASES.values(), ids=BAD_ATLASES.keys())
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, spoil):
    mutate, message = spoil
    layers = {"block1_conv1": LAYERS["block1_conv1"]}
    atlas, summaries, curves = fake_site(tmp_path, layers)
    write_site(tmp_path, atlas, summaries, curves)  # the unspoilt input is fine
    pages = {p: p.stat().st_ino for p in tmp_path.rglob("index.html")}  # a new file: new inode
    (tmp_path / "outside.png").write_bytes((tmp_path / "block1_conv1" / "0001.png").read_bytes())
    mutate(atlas, summaries, curves)
    with pytest.raises(ValueError, match=message):
        write_site(tmp_path, atlas, summaries, curves)
    assert {p: p.stat().st_ino for p in tmp_path.rglob("index.html")} == pages


def test_an_image_reached_through_a_link_to_outside_is_refused(tmp_path):
    atlas, summaries, _ = fake_site(tmp_path / "site", {"0": ("Conv2d", 2, [0], 8)})
    write_png(tmp_path / "elsewhere.png", 8, seed=0)
    (tmp_path / "site" / "0" / "0001.png").symlink_to(tmp_path / "elsewhere.png")
    atlas["filters"].append({"layer": "0", "filter": 1, "activation": 1.0, "image": "0/0001.png"})
    with pytest.raises(ValueError, match="leads outside the output folder"):
        write_site(tmp_path / "site", atlas, summaries)


def test_the_output_folder_must_exist(tmp_path):
    with pytest.raises(ValueError, match="does not exist or is not a folder"):
        write_site(tmp_path / "nowhere", {"parameters": {}, "filters": []}, [])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", "d", 1), "cannot be a folder name"),
        ((".", "d", 1), "cannot be a folder name"),
        (("..", "d", 1), "cannot be a folder name"),
        (("a/b", "d", 1), "cannot be a folder name"),
        (("a\\b", "d", 1), "cannot be a folder name"),
        (("index.html", "d", 1), "one of the site's own files"),
        ((3, "d", 1), "must be a string"),
        (("conv", None, 1), "description must be a string"),
        (("conv", "d", 0), "channels must be a positive integer"),
        (("conv", "d", 2.0), "channels must be a positive integer"),
        (("conv", "d", 2, np.zeros((2, 1, 3, 3))), r"shape \(2, 3, kh, kw\)"),
        (("conv", "d", 3, np.zeros((2, 3, 3, 3))), r"shape \(3, 3, kh, kw\)"),
        (("conv", "d", 1, np.full((1, 3, 3, 3), np.nan)), "finite"),
    ],
)
def test_a_bad_layer_summary_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        LayerSummary(*arguments)


def test_layers_must_be_layer_summaries(tmp_path):
    with pytest.raises(ValueError, match="LayerSummary"):
        write_site(tmp_path, {"parameters": {}, "filters": []}, [("conv", "d", 1)])


# ----------------------------------------------------------------------------- in Chromium
@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    chromium = Browser(tmp_path_factory.mktemp("profile"))
    yield chromium
    chromium.close()


GRID_ORDER = "[...document.getElementById('grid').children].map(li => Number(li.dataset.filter))"
#: every image of the page has loaded and has pixels
IMAGES_LOADED = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"


@needs_chromium
def test_the_pages_load_every_image_with_no_console_complaint(site, browser):
    for path, images in [
        (site / "index.html", sum(min(len(v[2]), THUMBNAILS) for v in LAYERS.values())),
        *(
            (site / layer / "index.html", len(indices))
            for layer, (_, _, indices, _) in LAYERS.items()
        ),
    ]:
        session = browser.open(path)
        assert browser.evaluate(session, "document.images.length") == images, path
        assert browser.evaluate(session, IMAGES_LOADED), path
        links = browser.evaluate(session, "[...document.links].map(a => a.href)")
        assert all(link.startswith("file://") for link in links)
        assert browser.complaints(session) == [], path


@needs_chromium
def test_the_sort_buttons_reorder_the_grid(site, browser):
    layer, indices = "block1_conv1", LAYERS["block1_conv1"][2]
    session = browser.open(site / layer / "index.html")
    assert browser.evaluate(session, GRID_ORDER) == most_active_first(layer, indices)
    orders = {
        "index": sorted(indices),
        "activation-asc": sorted(indices, key=lambda i: (activation_of(layer, i), i)),
        "activation-desc": most_active_first(layer, indices),
    }
    for order, expected in orders.items():
        browser.evaluate(session, f"document.querySelector('[data-sort={order}]').click()")
        assert browser.wait_for(session, f"location.hash === '#sort={order}' && {GRID_ORDER}")
        assert browser.evaluate(session, GRID_ORDER) == expected, order
        pressed = "[...document.querySelectorAll('[aria-pressed=true]')].map(b => b.dataset.sort)"
        assert browser.evaluate(session, pressed) == [order]
    linked = browser.open(site / layer / "index.html", "#sort=activation-asc")
    assert browser.evaluate(linked, GRID_ORDER) == orders["activation-asc"]
    assert browser.complaints(session) == browser.complaints(linked) == []


@needs_chromium
def test_a_filter_opens_larger_with_its_curve_and_kernel(site, browser):
    layer, indices = "block1_conv1", LAYERS["block1_conv1"][2]
    ranked = most_active_first(layer, indices)
    session = browser.open(site / layer / "index.html")
    browser.evaluate(session, f"document.querySelector('#filter-{ranked[1]} a').click()")
    detail = "document.getElementById('detail')"
    assert browser.wait_for(session, f"{detail}.open && location.hash") == f"#filter={ranked[1]}"
    assert browser.evaluate(session, "document.getElementById('detail-title').textContent") == (
        f"filter {ranked[1]}"
    )
    browser.wait_for(session, f"{detail}.querySelector('img.large').naturalWidth > 0")
    assert browser.evaluate(session, f"{detail}.querySelectorAll('polyline').length") == 1
    assert browser.evaluate(session, f"{detail}.querySelectorAll('rect').length") == 9
    browser.evaluate(session, f"{detail}.querySelector('[data-step=\"1\"]').click()")
    assert browser.wait_for(session, f"location.hash === '#filter={ranked[2]}'")
    browser.evaluate(session, f"{detail}.querySelector('[data-close]').click()")
    assert browser.wait_for(session, f"!{detail}.open && location.hash === ''")
    # the index's thumbnails link to a filter's larger view; an order can come along
    linked = browser.open(site / layer / "index.html", f"#sort=index&filter={ranked[-1]}")
    assert browser.evaluate(linked, f"{detail}.open && {GRID_ORDER}") == sorted(indices)
    title = "document.getElementById('detail-title').textContent"
    assert browser.evaluate(linked, title) == f"filter {ranked[-1]}"
    assert browser.complaints(session) == browser.complaints(linked) == []


@needs_chromium
def test_a_screenshot_at_desktop_width_shows_the_filters(site, browser):
    layer = "block1_conv1"
    session = browser.open(site / layer / "index.html")
    shot = browser.screenshot(session)
    assert shot.shape == (900, 1280, 3)
    boxes = browser.evaluate(
        session,
        "[...document.querySelectorAll('#grid img')].map(i => {"
        " const r = i.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })",
    )
    rows = {round(top) for _, top, _, _ in boxes}
    assert len(rows) == 2  # the tiles fill the width: eight 128 px tiles side by side
    left, top, width, height = (round(v) for v in boxes[0])
    first_row = shot[top : top + height]
    assert len(np.unique(first_row.reshape(-1, 3), axis=0)) > 5000
    background = shot[5, 5].astype(int)
    assert (np.abs(first_row.astype(int) - background).sum(axis=-1) > 30).mean() > 0.8
    # the first tile shows the most active filter's PNG, scaled to the tile
    best = most_active_first(layer, LAYERS[layer][2])[0]
    expected = Image.open(site / layer / f"{best:04d}.png").resize((width, height))
    shown = shot[top : top + height, left : left + width].astype(int)
    assert np.abs(shown - np.asarray(expected, dtype=int)).mean() < 15  # others: > 30


@needs_chromium
@pytest.mark.parametrize("page", ["index.html", "block1_conv1/index.html"])
def test_the_pages_fit_a_narrow_screen(site, browser, page):
    session = browser.open(site / page, width=360, height=740)
    assert browser.evaluate(session, "document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.complaints(session) == []
