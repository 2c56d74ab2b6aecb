"""Replay a backward pass step by step in the browser (one self-contained HTML file).

Trace the backward pass of a built-in example ('text-color': the worked example's 3-5-2-1
network on its 10 colours) or of a Python script (every backward() it runs is recorded; --sweep
picks one) and write an HTML page that draws the graph and replays the sweep step by step. Open
it in any browser; it needs no network.
"""

from __future__ import annotations

import argparse
import runpy
import sysconfig
import traceback
from pathlib import Path

from ..observers.trace import Trace, trace
from .errors import ScriptError

EXAMPLES = ("text-color",)
_PREFIX = "tinygrad-edu: error: explore: "


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="SCRIPT_OR_EXAMPLE", help=f"a .py file or one of {EXAMPLES}")
    p.add_argument(
        "--out", type=Path, default=Path("explorer.html"), help="output file (explorer.html)"
    )
    p.add_argument("--sweep", type=int, default=0, help="which backward pass to show (default 0)")
    p.set_defaults(run=run)


def _text_color() -> tuple[Trace, dict[int, str], str]:
    from ..models.text_color import COLORS, LABELS, build_mlp, error
    from ..tensor import Tensor

    model = build_mlp(rng=0)
    loss = error(model(Tensor(COLORS)), LABELS)
    with trace() as recorded:
        loss.backward()
    names = {id(p): name for name, p in model.named_parameters()}
    return recorded, names, "text-colour network: the backward pass of E = 1/2 sum (o - y)^2"


def _script(path: Path) -> tuple[Trace, dict[int, str], str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"explore: {path} is neither a file nor an example ({', '.join(EXAMPLES)})"
        )
    with trace() as recorded:
        _run_script(path)
    if not recorded.graphs:
        raise ValueError(f"explore: {path} ran no backward pass, so there is nothing to replay")
    return recorded, {}, f"backward pass of {path.name}"


def _run_script(path: Path) -> None:
    """Run ``path`` as ``__main__``; its failure becomes a :class:`ScriptError` whose report is
    the script's traceback through the user's own code only (Ctrl-C passes through)."""
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as done:
        if isinstance(done.code, int) and done.code:
            raise ScriptError(
                f"{_PREFIX}{path} exited with status {done.code}\n", done.code
            ) from None
        if done.code is not None and not isinstance(done.code, int):  # sys.exit("message")
            raise ScriptError(f"{_PREFIX}{path} exited: {done.code}\n") from None
    except Exception as err:
        raise ScriptError(_user_traceback(err, path)) from None


def _user_traceback(err: BaseException, path: Path) -> str:
    """The traceback of ``err`` without frames of this package, Python's library or installed
    packages: what the user wrote, file:line by file:line, then the error itself."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not _is_library(f.filename)]
    lines = [f"{_PREFIX}{path} raised {type(err).__name__}\n"]
    if frames:
        lines += ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(err), err)
    return "".join(lines)


def _is_library(filename: str) -> bool:
    """Whether ``filename`` belongs to tinygrad_edu, the standard library or site-packages."""
    roots = {Path(__file__).resolve().parents[1]}
    roots |= {
        Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "purelib", "platlib")
    }
    if filename.startswith("<"):  # <frozen runpy>, <string>: never the user's file
        return True
    resolved = Path(filename).resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def run(args: argparse.Namespace) -> int:
    if args.target in EXAMPLES:
        recorded, names, title = _text_color()
    else:
        recorded, names, title = _script(Path(args.target))
    if len(recorded.graphs) > 1:
        title += f" (sweep {args.sweep} of {len(recorded.graphs)})"
    path = recorded.to_html(args.out, sweep=args.sweep, title=title, names=names)
    steps = sum(1 for s in recorded.steps if s.sweep == args.sweep % len(recorded.graphs))
    print(f"{path}: {steps} VJP steps over {len(recorded.graphs[args.sweep])} tensors")
    print(f"open it in a browser: {path.resolve().as_uri()}")
    return 0
