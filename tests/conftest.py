"""Shared test settings: Hypothesis profiles.

`make test` uses the default profile; `HYPOTHESIS_PROFILE=deep` runs the property tests
with 20x the examples, to hunt for rare inputs before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "deep", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=3000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
