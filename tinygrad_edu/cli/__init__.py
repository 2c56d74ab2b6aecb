"""The ``tinygrad-edu`` command line.

Each app adds its sub-commands from its own module; ``main`` parses and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import text_color, visualize


class CommandError(Exception):
    """A problem the user can fix (bad argument, missing file): printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description=(
            "Apps built on the tinygrad_edu autodiff engine. Run "
            "'tinygrad-edu <command> --help' for the options of a command."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    text_color.add_commands(commands)
    visualize.add_commands(commands)
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
    except (CommandError, ValueError, FileNotFoundError, ImportError) as err:
        print(f"tinygrad-edu: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, (CommandError, ValueError)) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
