"""Fixtures shared by the integration tests (the ones shared with tests/hardening are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["exec", "supervise"])
def both_run_modes(request: pytest.FixtureRequest) -> str:
    """LIFECYCLE_RUN_MODE: exec replaces lifecycle with the command, supervise spawns it and stays."""
    mode: str = request.param
    return mode
