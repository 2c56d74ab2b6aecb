"""The ``tinygrad-edu`` command line.

Each app adds its sub-commands from its own module; ``main`` parses and dispatches. Every problem
the user can fix (a bad argument, an unreadable file, a missing extra) ends as one line on stderr
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import explore, text_color, visualize
from .arguments import Parser
from .errors import CommandError

__all__ = ["CommandError", "build_parser", "main"]


def build_parser() -> Parser:
    parser = Parser(
        prog="tinygrad-edu",
        description=(
            "Apps built on the tinygrad_edu autodiff engine. Run "
            "'tinygrad-edu <command> --help' for the options of a command."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    text_color.add_commands(commands)
    visualize.add_commands(commands)
    explore.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except (CommandError, ValueError, OSError, ImportError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"tinygrad-edu: error: {message}", file=sys.stderr)
        return 2 if isinstance(err, (CommandError, ValueError)) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
