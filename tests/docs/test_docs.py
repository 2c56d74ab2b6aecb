"""Docs that cannot rot: every ```python block in README.md and docs/*.md is executed.

Each README block runs on its own, in a fresh namespace: a reader copies one snippet, not the
page. The blocks of a docs page run in order in a shared namespace (a page reads like a session).
Every block runs inside a temporary working directory; a block whose first line is
``# doctest: skip`` is shown, not run. Module docstrings with ``>>>`` examples are executed by
``test_module_docstrings``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tinygrad_edu

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("**/*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return [b for b in BLOCK.findall(page.read_text()) if not b.startswith("# doctest: skip")]


def run_blocks(page: Path, blocks: list[tuple[int, str]], namespace: dict) -> None:
    for number, block in blocks:
        try:
            exec(compile(block, f"{page.name} block {number}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"{page.name}, python block {number} failed: {type(err).__name__}: {err}")


@pytest.mark.parametrize("number", range(1, len(python_blocks(README)) + 1))
def test_each_readme_block_runs_on_its_own(number: int, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = python_blocks(README)[number - 1]
    run_blocks(README, [(number, block)], {"__name__": f"readme_block_{number}"})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = list(enumerate(python_blocks(page), 1))
    run_blocks(page, blocks, {"__name__": f"docs_{page.stem}"})


MODULES = sorted(
    m.name for m in pkgutil.walk_packages(tinygrad_edu.__path__, prefix="tinygrad_edu.")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_docstrings(name: str):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert failures == 0
