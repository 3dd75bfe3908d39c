"""The 10,000-input Hypothesis profile of the hardening matrix (docs/reliability.md).

The profile is registered here and applied by name with `@settings.get_profile(HARDENING_PROFILE)` on the two
generated-input tests only: loading it globally would raise every other property test to 10,000 examples.
The fixtures the hardening tests use (`runs`, `pid1`, `pods`, `executor_classes`, …) are tests/conftest.py's.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.helpers.inputs import HARDENING_PROFILE

# derandomize: CI runs the same 10,000 inputs every time (a failure reproduces from the test name alone);
# database=None: nothing is written to .hypothesis/ by CI. 10,000 in-process dry runs take ~1 minute on 2 cores.
settings.register_profile(
    HARDENING_PROFILE,
    max_examples=10_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
