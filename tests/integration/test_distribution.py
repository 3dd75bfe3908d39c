"""The artifact users install: the `spark-lifecycle` distribution, built as a release would be (`python -m build`),
checked (`twine check --strict`), and installed from the wheel into a fresh venv, where both console scripts run.

Needs PyPI (build isolation fetches setuptools; the venv fetches the three dependencies), as CI has.
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import lifecycle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
STEP = 300.0  # seconds for a build or an install (downloads)


def run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=STEP)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    return out


def test_sdist_and_wheel_build_and_pass_twine_check(dist: Path) -> None:
    names = sorted(path.name for path in dist.iterdir())
    version = lifecycle.__version__
    assert names == [f"spark_lifecycle-{version}-py3-none-any.whl", f"spark_lifecycle-{version}.tar.gz"]
    run([sys.executable, "-m", "twine", "check", "--strict", *(str(path) for path in dist.iterdir())])
    with tarfile.open(dist / f"spark_lifecycle-{version}.tar.gz") as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "lifecycle/__init__.py"} <= members


def test_wheel_metadata_names_the_distribution_its_version_license_and_bounded_dependencies(dist: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        info = f"spark_lifecycle-{lifecycle.__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert metadata["Name"] == "spark-lifecycle"
    assert metadata["Version"] == lifecycle.__version__  # single-sourced from lifecycle/__init__.py
    assert metadata["License-Expression"] == "Apache-2.0"
    assert f"{info}/licenses/LICENSE" in files
    assert metadata["Requires-Python"] == ">=3.10"
    requires = metadata.get_all("Requires-Dist") or []
    for dependency in ("transitions>=", "psutil>=", "pydantic-settings>="):
        assert any(line.startswith(dependency) for line in requires), requires
    assert "lifecycle = lifecycle.launch.cli:main" in entry_points
    assert "lifecycle-decommission = lifecycle.prestop.main:run" in entry_points
    for package in ("lifecycle", "lifecycle/launch", "lifecycle/supervise", "lifecycle/prestop"):
        assert f"{package}/__init__.py" in files
    assert "lifecycle/py.typed" in files
    assert not any(name.startswith(("tests/", "examples/", "bench/")) for name in files)


def test_the_installed_wheel_gives_both_console_scripts(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(next(dist.glob("*.whl")))])
    version = run([str(venv / "bin" / "lifecycle"), "--version"], cwd=tmp_path)
    assert version.stdout == f"lifecycle {lifecycle.__version__}\n"
    plan = run([str(venv / "bin" / "lifecycle"), "--dry-run", "true"], cwd=tmp_path)
    assert "lifecycle dry run: pass-through" in plan.stdout
    hook = subprocess.run([str(venv / "bin" / "lifecycle-decommission"), "x"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=STEP)  # fmt: skip
    assert hook.returncode == 64 and "takes no arguments" in hook.stderr


# The lowest versions pyproject.toml allows; pydantic's is the lowest pydantic-settings 2.7.0 accepts with wheels
# for every supported Python (pyproject.toml's comment names it).
PYDANTIC_LOWEST = "2.7.4"
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")  # pyproject's classifiers


def lowest_pins() -> list[str]:
    """`name==lower bound` for each runtime dependency in pyproject.toml, plus pydantic's."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    found = re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', block)
    assert {name for name, _ in found} == {"transitions", "psutil", "pydantic-settings"}, found
    return [f"{name}=={version}" for name, version in found] + [f"pydantic=={PYDANTIC_LOWEST}"]


def interpreter(version: str) -> str | None:
    """A CPython `version` on this machine: pyenv's, or one on PATH (None when there is none)."""
    for candidate in (Path.home() / ".pyenv/versions").glob(f"{version}.*/bin/python{version}"):
        return str(candidate)
    return shutil.which(f"python{version}")


def install(python: str, dist: Path, venv: Path, constraints: list[str]) -> str:
    """The wheel installed into a fresh venv of `python` under `constraints`; the venv's `pip freeze`."""
    pins = venv.with_suffix(".txt")
    pins.write_text("\n".join(constraints) + "\n")
    run([python, "-m", "venv", str(venv)])
    run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "-c", str(pins), str(next(dist.glob("*.whl")))])
    return run([str(venv / "bin/python"), "-m", "pip", "freeze"]).stdout.lower().replace("_", "-")


def check_all_three_processes(venv: Path, cwd: Path) -> None:
    """Settings refused as documented (78, one line, no traceback); the supervisor runs its machine; the preStop
    command drains through it (needs root for unshare)."""
    bad = subprocess.run([str(venv / "bin/lifecycle"), "true"], env={"LIFECYCLE_KILL_GRACE": "soon"},
                         cwd=cwd, capture_output=True, text=True, timeout=STEP)  # fmt: skip
    assert bad.returncode == 78, bad.stderr
    assert [line for line in bad.stderr.splitlines() if "LIFECYCLE_KILL_GRACE" in line], bad.stderr
    assert "Traceback" not in bad.stderr
    # A mount namespace of its own (unshare execs lifecycle in it), entered by the hook as the kubelet's exec
    # enters the container's: the hook reaches this lifecycle and no other running on the host.
    child = subprocess.Popen(["unshare", "--mount", str(venv / "bin/lifecycle"), "sleep", "60"], cwd=cwd,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert child.stderr is not None
        for line in child.stderr:  # bounded by the pytest timeout; lifecycle logs this once the child runs
            if "running as pid" in line:
                break
        enter = ["nsenter", "--mount", "--target", str(child.pid)]
        hook = subprocess.run([*enter, str(venv / "bin/lifecycle-decommission")], cwd=cwd, capture_output=True,
                              text=True, timeout=STEP)  # fmt: skip
        assert child.wait(STEP) == 143  # sleep has no SIGPWR handler: SIGTERM, as documented
        assert hook.returncode == 0, hook.stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(STEP)


def test_the_lowest_allowed_dependencies_run_all_three_processes(dist: Path, tmp_path: Path) -> None:
    """Every dependency at its lower bound, on the oldest supported Python here (3.10 when present)."""
    python = interpreter(SUPPORTED[0]) or sys.executable
    frozen = install(python, dist, tmp_path / "venv", lowest_pins())
    for pin in lowest_pins():
        name, version = pin.split("==")
        assert re.search(rf"^{re.escape(name)}=={re.escape(version)}(\.0)?$", frozen, re.M), frozen
    check_all_three_processes(tmp_path / "venv", tmp_path)


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_wheel_runs_on_every_supported_python(dist: Path, tmp_path: Path, version: str) -> None:
    """The locked versions (examples/constraints.txt, what images install) on each supported Python here."""
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    locked = [line for line in (ROOT / "examples/constraints.txt").read_text().splitlines() if "==" in line]
    install(python, dist, tmp_path / "venv", locked)
    check_all_three_processes(tmp_path / "venv", tmp_path)
