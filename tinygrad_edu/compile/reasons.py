"""Why a call does not replay its tape: it warns and runs eagerly, or it records again.

A compiled step gives way to eager execution in two ways, and each has its exception:

* :class:`NotReplayable` -- a recording saw something a tape cannot replay (a value read in
  Python, random numbers, an in-place change ...). Its text becomes the
  :class:`~tinygrad_edu.compile.CompileWarning` the user sees once; calls with that signature
  then run eagerly.
* :class:`StaleGuard` -- a replay's guards found the state or a module changed since recording
  (``model.eval()``, a parameter resized, a hook added). Nothing is wrong with the step: the
  call simply records afresh.
"""

from __future__ import annotations


class NotReplayable(Exception):
    """Raised while building a program: the reason is the warning's text."""


class StaleGuard(Exception):
    """Raised by a replay whose guards fail: the state or a module changed since recording."""
