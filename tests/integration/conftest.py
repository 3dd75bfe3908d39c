"""Fixtures shared by the PID-1, supervisor-state and JVM decommission tests (harness in test_pid1.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_pid1 import Runs, needs_unshare


@pytest.fixture
def runs() -> Iterator[Runs]:
    """A Runs whose processes are all SIGKILLed by PID when the test ends."""
    tracker = Runs()
    try:
        yield tracker
    finally:
        tracker.close()


@pytest.fixture(params=[pytest.param(True, id="pid1", marks=[pytest.mark.pid1, needs_unshare]),
                        pytest.param(False, id="subreaper")])  # fmt: skip
def pid1(request: pytest.FixtureRequest) -> bool:
    """Both ways lifecycle supervises: PID 1 of a new PID namespace, and a child subreaper that is not PID 1."""
    return bool(request.param)
