"""Fixtures for the container tests: the session's image, venv and classes (cached, see image.py), and a
`start_container` factory whose containers are all torn down (runc kill, runc delete, umount) at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.container import image
from tests.helpers.container.executor import StartContainer
from tests.helpers.container.figures import FIGURES, Figures
from tests.helpers.container.runc import Container
from tests.helpers.container.spec import SYSTEM_PATH, Assets, Options

TOOLS = ("runc", "debootstrap")


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
def container_tools(tools_env: dict[str, str]) -> None:
    """runc and debootstrap (installed with apt-get when missing), root, and javac; a skip says which is lacking."""
    if os.geteuid() != 0:
        pytest.skip("needs root: runc containers, overlay mounts and debootstrap")
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


@pytest.fixture(scope="session")
def assets(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Assets:
    """The image, lifecycle's venv (both cached across sessions) and a SPARK_HOME with jars/ and work-dir/."""
    built = image.build_image(tools_env)
    venv = image.build_venv(tools_env)
    FIGURES.record("image build (debootstrap, this session; 0 when cached)", built.seconds)
    FIGURES.record("lifecycle venv build (this session; 0 when cached)", venv.seconds)
    spark_home = tmp_path_factory.mktemp("spark-home")
    (spark_home / "jars").mkdir()
    (spark_home / "work-dir").mkdir()  # the mount point of the working directory's emptyDir
    (spark_home / "work-dir").chmod(0o1777)
    spark_home.chmod(0o755)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True, timeout=10)
    java_home = f"/usr/lib/jvm/java-17-openjdk-{arch.stdout.strip()}"
    assert (built.path / java_home.lstrip("/") / "bin" / "java").exists(), f"no {java_home}/bin/java in the image"
    return Assets(built.path, venv.path, spark_home, java_home)


@pytest.fixture(scope="session")
def pyspark(container_tools: None, tools_env: dict[str, str]) -> image.Pyspark:
    """pyspark in a venv of Debian's python3 (cached across sessions; about a minute to build), for real Spark."""
    built = image.build_pyspark(tools_env)
    FIGURES.record("pyspark venv build (this session; 0 when cached)", built.seconds)
    return built


@pytest.fixture(scope="session")
def stub_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/decom.java compiled: the executor stub that drains on SIGPWR."""
    return image.compile_classes(image.REPO_ROOT / "tests" / "helpers" / "decom.java",
                                 tmp_path_factory.mktemp("stub-classes"), tools_env)  # fmt: skip


@pytest.fixture(scope="session")
def probe_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/container/probe.java compiled: an executor that prints user.name and exits."""
    return image.compile_classes(Path(image.__file__).with_name("probe.java"),
                                 tmp_path_factory.mktemp("probe-classes"), tools_env)  # fmt: skip


@pytest.fixture(scope="session")
def hog_classes(container_tools: None, tools_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/container/hog.java compiled: an executor that allocates without end on SIGUSR1."""
    return image.compile_classes(Path(image.__file__).with_name("hog.java"),
                                 tmp_path_factory.mktemp("hog-classes"), tools_env)  # fmt: skip


@pytest.fixture
def start_container(assets: Assets, tmp_path: Path) -> Iterator[StartContainer]:
    """`start_container(Options(...))`: a started container; every one is torn down when the test ends."""
    started: list[Container] = []

    def start(options: Options) -> Container:
        cid = f"lifecycle-test-{os.getpid()}-{len(started)}-{secrets.token_hex(3)}"
        container = Container(assets, options, tmp_path / f"container-{len(started)}", cid)
        started.append(container)
        container.start()
        return container

    try:
        yield start
    finally:
        for container in started:
            container.close()
