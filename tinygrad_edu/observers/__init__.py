"""Observers: watching the engine work without the engine knowing them.

Each is an :class:`~tinygrad_edu.graph.Observer` registered with
:func:`~tinygrad_edu.graph.observe` for the length of a ``with`` block, or a view of what one
recorded:

- :mod:`~tinygrad_edu.observers.trace` -- ``tg.trace()``: every VJP a backward pass applies;
- :mod:`~tinygrad_edu.observers.records` -- what a trace keeps, as plain frozen records;
- :mod:`~tinygrad_edu.observers.anomaly` -- ``tg.detect_anomaly()``: stop at the first NaN/Inf;
- :mod:`~tinygrad_edu.observers.dot` -- a graph or a trace as Graphviz DOT text;
- :mod:`~tinygrad_edu.observers.explorer` -- a trace as one HTML page replaying the sweep.
"""
