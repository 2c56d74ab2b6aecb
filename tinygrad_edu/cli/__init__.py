"""The ``tinygrad-edu`` command line.

Each app is a module of its own: its docstring is the command's help (first line) and description,
its ``add_arguments`` declares the options; ``main`` parses and dispatches. Every problem the user
can fix (a bad argument, an unreadable file, a missing extra, too little memory) ends as one line
on stderr and a non-zero exit status, never a traceback; Ctrl-C ends any command with status 130
and one line (files are written atomically, so none is left half-written). A script run by
``explore`` that fails shows its own traceback, without the command line's frames.

A command owns its process, so it keeps freed memory for reuse
(:func:`tinygrad_edu.kernels.memory.keep_freed_memory`) instead of having the kernel zero fresh
pages for every new array.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata

from ..kernels.memory import keep_freed_memory
from . import explore, microscope, text_color, visualize
from .arguments import Parser
from .errors import CommandError, ScriptError

__all__ = ["CommandError", "ScriptError", "build_parser", "main", "version"]

#: the sub-commands, in the order ``tinygrad-edu --help`` lists them
COMMANDS = {
    "text-color": text_color,
    "visualize": visualize,
    "microscope": microscope,
    "explore": explore,
}


def version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    try:
        return metadata.version("tinygrad_edu")
    except metadata.PackageNotFoundError:
        from .. import __version__

        return __version__


def build_parser() -> Parser:
    parser = Parser(
        prog="tinygrad-edu",
        description=(
            "Apps built on the tinygrad_edu autodiff engine. Run "
            "'tinygrad-edu <command> --help' for the options of a command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, app in COMMANDS.items():
        summary = app.__doc__.split("\n", 1)[0]
        app.add_arguments(commands.add_parser(name, help=summary, description=app.__doc__))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(
            f"tinygrad-edu: interrupted: {command} stopped, no file half-written", file=sys.stderr
        )
        return 130
    except ScriptError as err:
        sys.stderr.write(err.report)
        return err.status
    except MemoryError:
        _error(f"{args.command} ran out of memory; try smaller sizes or counts")
        return 1
    except (CommandError, ValueError, OSError, ImportError) as err:
        _error(" ".join(str(err).split()) or type(err).__name__)
        return 2 if isinstance(err, (CommandError, ValueError)) else 1


def _error(message: str) -> None:
    print(f"tinygrad-edu: error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
