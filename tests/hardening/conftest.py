"""Fixtures for the hardening matrix (docs/reliability.md) and the 10,000-input Hypothesis profile.

The profile is registered here and applied by name with `@settings.get_profile(HARDENING_PROFILE)` on the two
generated-input tests only: loading it globally would raise every other property test to 10,000 examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.integration.test_decommission_jvm import executor_classes  # noqa: F401  (a session fixture, reused)
from tests.integration.test_pid1 import Runs
from tests.integration.test_prestop import Pod, base_env

HARDENING_PROFILE = "lifecycle-hardening"
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

StartPod = Callable[..., Pod]


@pytest.fixture
def runs() -> Iterator[Runs]:
    """A Runs (tests/integration/test_pid1.py) whose processes are all SIGKILLed by PID when the test ends."""
    tracker = Runs()
    try:
        yield tracker
    finally:
        tracker.close()


@pytest.fixture
def pods() -> Iterator[StartPod]:
    """`pods(layout, command, **env)` starts a Pod (tests/integration/test_prestop.py): lifecycle as PID 1 of new PID
    and mount namespaces with stdout and stderr read as lines; every process of every pod is killed by pidfd after."""
    started: list[Pod] = []

    def start(layout: str, command: list[str], **env: str) -> Pod:
        pod = Pod(layout, command, base_env(**env))
        started.append(pod)
        return pod

    yield start
    for pod in started:
        pod.kill()
