"""Fixtures shared by every test: each test starts from an empty environment (STYLE rule 19); and the fixtures the
integration, hardening and container tests share, thin wrappers over tests/helpers (and examples/pods.py)."""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import pytest

from examples.pods import TINI, Pod, base_env
from tests.helpers.cgroups import limited_memory_cgroup
from tests.helpers.executor import compile_decom
from tests.helpers.identity import install_anonymous_lifecycle, installer_env
from tests.helpers.inputs import SetEnv
from tests.helpers.pods import StartPod
from tests.helpers.supervised import Runs, needs_unshare

SOURCES = Path(__file__).resolve().parents[1] / "lifecycle"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once when the venv's lifecycle (the wheel scripts/setup.sh installs, which every `lifecycle` the
    tests start runs) differs from the sources beside the tests: the run would test stale code."""
    installed = Path(sysconfig.get_paths()["purelib"]) / "lifecycle"
    sources = sorted(path.relative_to(SOURCES) for path in SOURCES.rglob("*.py"))
    wheel = sorted(path.relative_to(installed) for path in installed.rglob("*.py")) if installed.is_dir() else []
    same = sources == wheel and all(filecmp.cmp(SOURCES / p, installed / p, shallow=False) for p in sources)
    if not same:
        pytest.exit(f"{sys.prefix} has no spark-lifecycle wheel of these sources: run `bash scripts/setup.sh` "
                    "(it rebuilds and installs the wheel) or `bash scripts/test.sh`", returncode=4)


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


# ---- supervised runs (tests/helpers/supervised.py) ----------------------------------------------------------


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


# ---- pods and the JVMs in them (examples/pods.py, tests/helpers/pods.py, tests/helpers/executor.py) ---------


@pytest.fixture
def pods() -> Iterator[StartPod]:
    """`pods(layout, command, **env)` starts a Pod: an entrypoint as PID 1 of new PID and mount namespaces with
    stdout and stderr read as lines; every process of every pod is killed by pidfd afterwards."""
    started: list[Pod] = []

    def start(layout: str, command: list[str], **env: str) -> Pod:
        if layout.startswith("tini") and TINI is None:
            pytest.skip("needs tini")
        pod = Pod(layout, command, base_env(**env))
        started.append(pod)
        return pod

    yield start
    for pod in started:
        pod.kill()


@pytest.fixture(scope="session")
def executor_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/decom.java compiled into a session directory."""
    return compile_decom(tmp_path_factory.mktemp("executor-classes"))


# ---- a limited memory cgroup (tests/helpers/cgroups.py) -----------------------------------------------------


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A child memory cgroup limited to LIMIT bytes; every process left in it is SIGKILLed, then it is removed."""
    with limited_memory_cgroup() as path:
        yield path


# ---- the anonymous UID (tests/helpers/identity.py) ----------------------------------------------------------


@pytest.fixture(scope="session")
def install_env() -> dict[str, str]:
    """The environment for installers: the session's (pip's index settings live there), with a PATH."""
    return installer_env()


@pytest.fixture(scope="session")
def anonymous_lifecycle(install_env: dict[str, str]) -> Iterator[str]:
    """lifecycle installed in a venv any uid can run (Debian's python3, outside /root and /tmp)."""
    root = Path(tempfile.mkdtemp(prefix="lifecycle-venv-", dir="/var/tmp"))
    try:
        yield install_anonymous_lifecycle(root, install_env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
