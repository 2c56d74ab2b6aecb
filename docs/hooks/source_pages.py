"""MkDocs hook: the course's links into the code work on the site too.

The pages link to source files as they sit in the repository (``../tinygrad_edu/autograd.py#L153``),
which reads right in a checkout and on a code host. The site has no such files, so for every
``.py`` file a page links to, this hook adds a page that shows the file with one anchor per line
(``#L153``, a code host's spelling), and points the links there.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

#: a Markdown link to a Python file above the docs folder, with an optional line anchor
SOURCE_LINK = re.compile(r"\]\(\.\./([\w./-]+\.py)(#L\d+)?\)")
#: where the source pages go inside the site
PREFIX = "source"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    docs = Path(config.docs_dir)
    root = docs.parent
    linked = {
        match.group(1)
        for page in docs.glob("**/*.md")
        for match in SOURCE_LINK.finditer(page.read_text(encoding="utf-8"))
    }
    for path in sorted(linked):
        source = (root / path).read_text(encoding="utf-8")
        files.append(File.generated(config, f"{PREFIX}/{path}.md", content=_page(path, source)))
    return files


def _page(path: str, source: str) -> str:
    lines = "".join(
        f'<span id="L{number}">{html.escape(line)}</span>\n'
        for number, line in enumerate(source.splitlines(), 1)
    )
    return f"---\nsearch:\n  exclude: true\n---\n\n# `{path}`\n\n<pre><code>{lines}</code></pre>\n"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    depth = page.file.src_uri.count("/")
    up = "../" * depth
    return SOURCE_LINK.sub(lambda m: f"]({up}{PREFIX}/{m.group(1)}.md{m.group(2) or ''})", markdown)
