"""The microscope: every filter of every layer of a CNN, rendered into a static atlas.

:func:`microscope` plans the work (:mod:`.plan`), renders what is missing here or on a Dask
cluster (:mod:`.run`), keeps each filter's picture and record on disk (:mod:`.store`), and
writes the pages (:mod:`.site`).
"""

from .run import microscope

__all__ = ["microscope"]
