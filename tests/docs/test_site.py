"""The documentation site, built and opened in a browser: home, a course page, the API page of
``Tensor`` and the search.

The site is built with ``mkdocs build --strict`` into a temporary folder and served by a local
``http.server`` on a free port (Material's search loads its index over HTTP). One headless
Chromium opens the pages, driven through the DevTools protocol over a pipe (``--remote-debugging-
pipe``: JSON messages ending in a NUL byte on file descriptors 3 and 4), and waits, in real time,
until each page shows what it should: the search builds its index in a web worker, which
``--dump-dom`` does not wait for.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, Browser

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

ROOT = Path(__file__).resolve().parents[2]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """The built site's address, served while the module's tests run."""
    folder = tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(folder)]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    chromium = Browser(tmp_path_factory.mktemp("profile"))
    yield chromium
    chromium.close()


def text_of(selector: str) -> str:
    """JavaScript: the text of the first element matching ``selector`` ('' when none)."""
    return f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"


def test_home_page(site, browser):
    session = browser.open(f"{site}/")
    assert "a course in reverse-mode autodiff" in browser.wait_for(session, text_of("h1"))
    links = browser.wait_for(session, "[...document.links].map(a => a.href).join(' ')")
    assert f"{site}/engine/" in links and f"{site}/reference/" in links


def test_a_course_page_and_its_links_into_the_code(site, browser):
    session = browser.open(f"{site}/engine/")
    assert "A tour of the engine" in browser.wait_for(session, text_of("h1"))
    links = browser.wait_for(session, "[...document.links].map(a => a.href).join(' ')")
    assert f"{site}/source/tinygrad_edu/autograd.py/#L" in links
    source = browser.open(f"{site}/source/tinygrad_edu/autograd.py/")
    assert "def backward" in browser.wait_for(source, text_of("pre"))


def test_the_api_page_of_tensor_shows_backward(site, browser):
    session = browser.open(f"{site}/reference/tensor/")
    entry = text_of('[id="tinygrad_edu.Tensor.backward"]')
    assert "backward" in browser.wait_for(session, entry)


def test_search_finds_backward(site, browser):
    session = browser.open(f"{site}/?q=backward")
    found = browser.wait_for(
        session,
        "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href).join(' ')",
    )
    on_tensor_page = [a for a in found.split() if a.startswith(f"{site}/reference/tensor/")]
    assert any(link.endswith("#tinygrad_edu.Tensor.backward") for link in on_tensor_page), found


def test_the_sequences_page_links_to_explorer_pages_that_replay(site, browser):
    session = browser.open(f"{site}/sequences/")
    assert "Backpropagation through time" in browser.wait_for(session, text_of("h1"))
    links = browser.wait_for(session, "[...document.links].map(a => a.href).join(' ')")
    for name in ("lstm_three_steps", "attention_head"):
        assert f"{site}/explorers/{name}.html" in links
    explorer = browser.open(f"{site}/explorers/lstm_three_steps.html", "#step=33")
    assert browser.wait_for(explorer, text_of("#counter")) == "step 33 of 53"
    assert "weight_hh_l0" in browser.wait_for(explorer, text_of("#current"))
    complaints = [
        event
        for event in browser.complaints(explorer)
        if not event["params"].get("entry", {}).get("url", "").endswith("/favicon.ico")
    ]  # the browser asks the server for a site icon the page does not name
    assert complaints == []
