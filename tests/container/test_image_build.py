"""The image users build: examples/Dockerfile, built with podman from the repository root as the README says, on
the local stand-in for the official base (examples/image/build.py), then inspected as built.

The build itself is the first assertion: `podman build -f examples/Dockerfile --build-arg SPARK_IMAGE=… .`
must succeed (this machine's network goes through a TLS-intercepting proxy, so pip inside the build succeeds
only through the `build-ca` secret). Then: what the base has (as the official image has it), what the layer
leaves and what it cleans up, that the installed versions are exactly examples/constraints.txt, that the
build context holds only what .dockerignore lets in, and that build arguments reach pip.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from examples.image import build
from examples.image.cache import REPO_ROOT
from tests.helpers.container.figures import Figures

pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.timeout(1200)]

MB = 1e6
STEP = 300.0  # seconds for one podman command (a build step downloads)


@pytest.fixture(scope="module")
def images(base_image: build.Image, lifecycle_image: build.Image, figures: Figures) -> tuple[build.Image, build.Image]:
    """(base, lifecycle image): the session's (tests/container/conftest.py), built once per change of their inputs."""
    base, image = base_image.size / MB, lifecycle_image.size / MB
    figures.note("image sizes", f"base {base:.0f} MB, with lifecycle {image:.0f} MB, adds {image - base:.0f} MB")
    return base_image, lifecycle_image


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], env=build.podman_env(), capture_output=True, text=True, timeout=STEP,
                          check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, f"podman {' '.join(args[:4])} … exited {done.returncode}: {done.stderr[-3000:]}"
    return done


def shell(tag: str, script: str, user: str | None = None) -> str:
    """`script` run by bash in a throwaway container of `tag` (entrypoint overridden), its stdout."""
    who = ["--user", user] if user else []
    return podman("run", "--rm", "--passwd=false", *who, "--entrypoint", "/bin/bash", tag, "-c", script).stdout


def config(tag: str) -> dict[str, object]:
    data = json.loads(podman("image", "inspect", tag).stdout)[0]
    return dict(data["Config"])


def test_the_base_is_shaped_like_the_official_image(images: tuple[build.Image, build.Image]) -> None:
    base, _ = images
    conf = config(base.tag)
    assert conf["User"] == "185"
    assert conf["WorkingDir"] == "/opt/spark/work-dir"
    assert conf["Entrypoint"] == ["/opt/entrypoint.sh"]
    env = dict(item.split("=", 1) for item in conf["Env"])  # type: ignore[attr-defined]
    assert env["JAVA_HOME"] == "/opt/java/openjdk" and env["SPARK_HOME"] == "/opt/spark"
    out = shell(base.tag, "id -u; id -un; getent passwd 185; command -v tini ps bash; "
                          "$JAVA_HOME/bin/java -version 2>&1 | head -1; ls /opt/spark; ls /opt/spark/python/lib; "
                          "ls /opt/spark/jars | grep -c '^spark-core'; stat -c '%u %a' /opt/spark/work-dir; "
                          "command -v python3 || echo no-python")  # fmt: skip
    lines = out.splitlines()
    assert lines[:3] == ["185", "spark", "spark:x:185:185::/opt/spark:/bin/false"]
    assert lines[3:6] == ["/usr/bin/tini", "/usr/bin/ps", "/usr/bin/bash"]
    assert lines[6].startswith('openjdk version "17.')
    assert {"bin", "conf", "jars", "python", "sbin", "work-dir"} <= set(lines)
    assert "pyspark.zip" in lines and any(line.startswith("py4j-") and line.endswith("-src.zip") for line in lines)
    assert "1" in lines  # one spark-core jar
    assert "185 775" in lines
    assert lines[-1] == "no-python"  # as the official non-python image: examples/Dockerfile adds it


def test_the_image_runs_lifecycle_as_185_with_both_commands_and_the_shims(
    images: tuple[build.Image, build.Image],
) -> None:
    _, image = images
    conf = config(image.tag)
    assert conf["Entrypoint"] == ["lifecycle"]
    assert conf["User"] == "185"
    assert conf["WorkingDir"] == "/opt/spark/work-dir"
    out = shell(
        image.tag,
        "lifecycle --version; command -v lifecycle lifecycle-decommission; "
        "cat /opt/entrypoint.sh /opt/decom.sh | grep '^exec'; stat -c %a /opt/entrypoint.sh",
    )
    assert out.splitlines() == [
        "lifecycle 0.1.0" if "0.1.0" in image.tag else out.splitlines()[0],
        "/usr/local/bin/lifecycle", "/usr/local/bin/lifecycle-decommission",
        'exec lifecycle "$@"', "exec lifecycle-decommission", "755",
    ]  # fmt: skip


def pins(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return sorted(line.lower().replace("_", "-") for line in lines if line and not line.startswith("#"))


LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m; print('\\n'.join(sorted(f'{d.name}=={d.version}' for d in m.distributions())))"
)


def test_the_image_installs_exactly_the_locked_versions_and_no_installer(
    images: tuple[build.Image, build.Image],
) -> None:
    """What the venv holds is examples/constraints.txt plus lifecycle itself: pip and setuptools (26 MB) are gone
    once they have done their work."""
    _, image = images
    listed = shell(image.tag, f'/opt/lifecycle/venv/bin/python -c "{LIST_DISTRIBUTIONS}"')
    locked = pins((REPO_ROOT / "examples/constraints.txt").read_text())
    ours = [line for line in pins(listed) if line.startswith("spark-lifecycle==")]
    assert len(ours) == 1
    assert sorted(set(pins(listed)) - set(ours)) == locked


def test_the_layers_clean_up_after_themselves(images: tuple[build.Image, build.Image]) -> None:
    """No apt lists or downloaded packages (the stand-in base, like a debootstrap root, has no apt clean-up
    hook: the Dockerfile must clean itself), no sources, constraints or CA bundle left in /tmp."""
    _, image = images
    out = shell(image.tag, "for d in /var/lib/apt/lists /var/cache/apt/archives /tmp; do echo $d: $(ls -A $d); done; "
                           "find / -xdev \\( -name '*.deb' -o -name 'build-ca.pem' -o -name 'lifecycle-src' \\) -print",
                user="0")  # fmt: skip
    assert out.splitlines() == ["/var/lib/apt/lists:", "/var/cache/apt/archives: lock partial", "/tmp:"], out


def test_secrets_given_to_the_build_are_not_in_the_image_history(images: tuple[build.Image, build.Image]) -> None:
    _, image = images
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag).stdout
    assert "BEGIN CERTIFICATE" not in history
    assert "--mount=type=secret,id=build-ca" in history  # the step that used it is there, its content not


def build_context(tag: str) -> list[str]:
    """What a build of the repository root receives: a throwaway Containerfile copies the context and lists it."""
    containerfile = f"FROM {tag}\nUSER 0\nCOPY . /context\nRUN cd /context && find . -mindepth 1 | sort\n"
    done = subprocess.run(
        ["podman", "build", "--no-cache", "--rm", "-f", "-", str(REPO_ROOT)], input=containerfile,
        env=build.podman_env(), capture_output=True, text=True, timeout=STEP, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    podman("image", "prune", "--force", "--filter", "dangling=true", check=False)
    return [line[2:] for line in done.stdout.splitlines() if line.startswith("./")]


def test_the_build_context_holds_only_what_the_dockerfile_copies(images: tuple[build.Image, build.Image]) -> None:
    base, _ = images
    (REPO_ROOT / ".container-cache").mkdir(exist_ok=True)  # present after any container test; must stay out
    listed = build_context(base.tag)
    tops = sorted({path.split("/")[0] for path in listed})
    assert tops == ["LICENSE", "README.md", "examples", "lifecycle", "pyproject.toml"], tops
    assert sorted(p for p in listed if p.startswith("examples/")) == [
        "examples/Dockerfile", "examples/constraints.txt", "examples/decom.sh", "examples/entrypoint.sh",
    ]  # fmt: skip
    assert not [p for p in listed if "__pycache__" in p]


def failed_build(base: build.Image, args: Sequence[str]) -> str:
    done = subprocess.run(
        ["podman", "build", "-f", "examples/Dockerfile", "--build-arg", f"SPARK_IMAGE={base.tag}", *args,
         str(REPO_ROOT)], env=build.podman_env(), capture_output=True, text=True, timeout=STEP, check=False,
    )  # fmt: skip
    podman("image", "prune", "--force", "--filter", "dangling=true", check=False)
    assert done.returncode != 0, "the build succeeded with a package index that does not exist"
    return done.stdout + done.stderr


def test_the_package_index_build_argument_reaches_pip(images: tuple[build.Image, build.Image]) -> None:
    base, _ = images
    output = failed_build(base, ["--build-arg", "PIP_INDEX_URL=http://127.0.0.1:9/simple/"])
    assert "127.0.0.1" in output and "pip install" in output, output[-3000:]
    assert Path(REPO_ROOT / "examples/Dockerfile").read_text().count("ARG PIP_INDEX_URL=") == 1
