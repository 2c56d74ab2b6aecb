"""Shared test configuration: hypothesis profiles.

``CI=true`` selects the "ci" profile (fewer examples, so the whole suite stays within a few
minutes on a 2-core machine); locally the "dev" profile explores more. Override with
``HYPOTHESIS_PROFILE=<name>``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=500, deadline=None)
default = "ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))
