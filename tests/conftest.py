"""Fixtures shared by every test: each test starts from an empty environment (STYLE rule 19)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from unittest import mock

import pytest

SetEnv = Callable[..., None]


@pytest.fixture(autouse=True)
def clean_env() -> Iterator[None]:
    """Clear os.environ for the test and restore it afterwards; nothing is kept, not even PATH."""
    with mock.patch.dict(os.environ, clear=True):
        yield


@pytest.fixture
def set_env() -> SetEnv:
    """Set environment variables for this test: `set_env({"A": "1"}, B="2")`; later calls add to earlier ones."""

    def set_variables(variables: Mapping[str, str] | None = None, /, **more: str) -> None:
        os.environ.update(variables or {})
        os.environ.update(more)

    return set_variables
