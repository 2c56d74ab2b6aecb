"""The command line's own error."""


class CommandError(Exception):
    """A problem the user can fix (bad argument, missing file): printed without a traceback."""
