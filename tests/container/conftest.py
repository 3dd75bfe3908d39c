"""Fixtures for the container tests: the session's images (examples/image/, cached by content key), derived images
and compiled classes (tests/helpers/container/image.py), and a `start_container` factory whose containers are all
removed (`podman rm -f`) when the test ends; a sweep at the session's start and end removes any container of this
suite left over (named lifecycle-test-<pytest's pid>-…), this session's or a dead session's."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.image.build import Image, build_base, build_lifecycle
from examples.image.cache import SYSTEM_PATH
from tests.helpers.container import image
from tests.helpers.container.executor import StartContainer
from tests.helpers.container.figures import FIGURES, Figures
from tests.helpers.container.podman import Container, Options, new_name, sweep

TOOLS = ("podman", "buildah")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the container tests measured (image build, start-up, preStop timings)."""
    if FIGURES.values or FIGURES.notes:
        terminalreporter.write_sep("-", "container tests: timings and outcomes")
        for line in FIGURES.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


@pytest.fixture(scope="session")
def tools_env() -> dict[str, str]:
    """The environment for installers and builders: the session's (pip's and apt's settings live there)."""
    return {**os.environ, "PATH": SYSTEM_PATH}


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool, path=SYSTEM_PATH) is None]


@pytest.fixture(scope="session")
def container_tools(tools_env: dict[str, str]) -> Iterator[None]:
    """podman and buildah (installed with apt-get when missing), root, and javac; a skip says which is lacking.
    Removes this suite's leftover containers before the session and this session's after it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the images' build (debootstrap, buildah) and rootful podman with cgroup limits")
    if missing_tools() and shutil.which("apt-get", path=SYSTEM_PATH):
        env = {**tools_env, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing_tools()]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                pytest.skip(f"{' '.join(TOOLS)} cannot be installed ({' '.join(command)}): {done.stderr[-500:]}")
    if missing_tools():
        pytest.skip(f"{', '.join(missing_tools())} not installed and apt-get could not install it")
    if shutil.which("javac", path=SYSTEM_PATH) is None:
        pytest.skip("needs a JDK (javac) to compile the executor stub")
    left = sweep()
    if left:
        FIGURES.note("leftover containers removed at start", ", ".join(left))
    yield
    sweep(os.getpid())


@pytest.fixture(scope="session")
def base_image(container_tools: None, tools_env: dict[str, str]) -> Image:
    """localhost/spark-base:<spark version>: the stand-in for the official image (examples/image/build.py)."""
    built = build_base(tools_env)
    FIGURES.record("base image build (this session; 0 when cached)", built.seconds)
    return built


@pytest.fixture(scope="session")
def lifecycle_image(base_image: Image, tools_env: dict[str, str]) -> Image:
    """examples/Dockerfile built on the base, as the README tells users (examples/image/build.py)."""
    built = build_lifecycle(base_image, tools_env)
    FIGURES.record("lifecycle image build (this session; 0 when cached)", built.seconds)
    return built


@pytest.fixture(scope="session")
def no_nss_wrapper_image(lifecycle_image: Image, tools_env: dict[str, str]) -> Image:
    """The lifecycle image without libnss_wrapper.so (a derived image's layer deletes it)."""
    built = image.derived_image(lifecycle_image, "no-nss-wrapper", tools_env)
    FIGURES.record("derived image build: no-nss-wrapper (0 when cached)", built.seconds)
    return built


@pytest.fixture(scope="session")
def java_not_executable_image(lifecycle_image: Image, tools_env: dict[str, str]) -> Image:
    """The lifecycle image whose java lost its exec bit (a derived image's layer: chmod 0644)."""
    built = image.derived_image(lifecycle_image, "java-not-executable", tools_env)
    FIGURES.record("derived image build: java-not-executable (0 when cached)", built.seconds)
    return built


def compiled(source: Path, factory: pytest.TempPathFactory, tools_env: dict[str, str], name: str) -> Path:
    out = factory.mktemp(name)
    out.chmod(0o755)  # the container's uid reaches it through the bind mount
    return image.compile_classes(source, out, tools_env)


@pytest.fixture(scope="session")
def stub_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/decom.java compiled: the executor stub that drains on SIGPWR."""
    return compiled(image.REPO_ROOT / "tests" / "helpers" / "decom.java", tmp_path_factory, tools_env, "stub-classes")


@pytest.fixture(scope="session")
def probe_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/container/probe.java compiled: an executor that prints user.name and exits."""
    return compiled(Path(image.__file__).with_name("probe.java"), tmp_path_factory, tools_env, "probe-classes")


@pytest.fixture(scope="session")
def hog_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/container/hog.java compiled: an executor that allocates without end on SIGUSR1."""
    return compiled(Path(image.__file__).with_name("hog.java"), tmp_path_factory, tools_env, "hog-classes")


@pytest.fixture
def start_container(lifecycle_image: Image, tmp_path: Path) -> Iterator[StartContainer]:
    """`start_container(Options(...))`: a started container of the lifecycle image (or Options.image); every one
    is removed when the test ends."""
    started: list[Container] = []

    def start(options: Options) -> Container:
        container = Container(lifecycle_image.tag, options, tmp_path / f"container-{len(started)}", new_name())
        started.append(container)
        container.start()
        return container

    try:
        yield start
    finally:
        for container in started:
            container.close()
