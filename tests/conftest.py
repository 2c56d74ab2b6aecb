"""Shared test configuration: hypothesis profiles.

``python -m pytest`` runs the "fast" profile: 12 examples per property, drawn from fixed seeds
(``derandomize``), so the whole suite finishes in about two and a half minutes on a 2-core
machine and a failure reproduces on the next run. Longer explorations are opt-in::

    HYPOTHESIS_PROFILE=dev python -m pytest        # 60 random examples per property
    HYPOTHESIS_PROFILE=thorough python -m pytest   # 500 random examples per property

A test that sets its own ``max_examples`` keeps it under every profile.

Layout: ``tests/`` mirrors the package (``tests/engine``, ``tests/ops``, ``tests/kernels``,
``tests/nn``, ...), one file per subject; test file names are unique across folders (there are no
``__init__.py`` files). Modules shared across folders live here at the top: ``op_specs.py``
(the op-spec table), ``kernel_references.py`` (float64 convolution references and the memory
layouts kernels are fed), ``keras_writer.py`` and ``pth_writer.py`` (weight files built byte by
byte); import them as ``tests.<module>``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
