"""docs/sequences.md shows what its code prints, and ships the explorer pages its code writes.

The page's blocks run in order in one namespace (as in ``test_docs.py``), each with its output
captured: a ```text block right after a ```python block is that block's output and must match it
line by line. The explorer pages under docs/explorers/ must be the pages the code writes: the same
template, script and style, and the same data (graph, steps, labels; numbers equal to 1e-9).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "sequences.md"
SHIPPED = ROOT / "docs" / "explorers"
#: a python block, and the text block that follows it directly (its output) if there is one
BLOCK_AND_OUTPUT = re.compile(
    r"^```python\n(.*?)^```\n(?:\n```text\n(.*?)^```\n)?", re.DOTALL | re.MULTILINE
)


def run_page(folder: Path) -> list[tuple[int, str, str | None]]:
    """Run the page's python blocks in ``folder``: (number, what it printed, what the page
    shows, or ``None`` when no output follows the block)."""
    namespace = {"__name__": "docs_sequences"}
    results = []
    start = os.getcwd()
    os.chdir(folder)
    try:
        for number, match in enumerate(BLOCK_AND_OUTPUT.finditer(PAGE.read_text()), 1):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(match.group(1), f"sequences.md block {number}", "exec"), namespace)
            results.append((number, printed.getvalue(), match.group(2)))
    finally:
        os.chdir(start)
    return results


@pytest.fixture(scope="module")
def page_run(tmp_path_factory) -> tuple[Path, list[tuple[int, str, str | None]]]:
    folder = tmp_path_factory.mktemp("sequences")
    return folder, run_page(folder)


def test_every_output_shown_is_what_its_block_prints(page_run):
    _, results = page_run
    shown = [(number, printed, output) for number, printed, output in results if output is not None]
    assert len(shown) == len(results)  # every block of this page shows its output
    for number, printed, output in shown:
        assert printed.rstrip().splitlines() == output.rstrip().splitlines(), f"block {number}"


def _parts(page: Path) -> tuple[str, dict, str]:
    """An explorer page as the text before its data, the data (the JSON after ``const DATA =``)
    and the text after it."""
    text = page.read_text()
    start = text.index("const DATA = ") + len("const DATA = ")
    data, end = json.JSONDecoder().raw_decode(text, start)
    return text[:start], data, text[end:]


def _same(a, b, where: str = "DATA") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("name", ["lstm_three_steps.html", "attention_head.html"])
def test_the_shipped_explorer_pages_are_what_the_code_writes(page_run, name):
    folder, _ = page_run
    shipped, written = _parts(SHIPPED / name), _parts(folder / name)
    stale = f"docs/explorers/{name} is stale: copy the page the docs' code writes (run_page)"
    assert shipped[0] == written[0] and shipped[2] == written[2], stale
    _same(shipped[1], written[1])
