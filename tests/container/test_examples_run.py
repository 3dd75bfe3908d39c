"""The examples run, not only parsed (tests/test_examples.py parses them): with the image built from
examples/Dockerfile, under podman.

* The two Pod examples (`examples/k8s/*.yaml`) run with `podman kube play`, which applies their security
  context (uid, gid, read-only root, dropped capabilities, no privilege escalation), env and emptyDir volumes
  as a kubelet would; their container gets the image, examples/executor.env (what Spark's scheduler adds) and
  `--dry-run executor` as its args, so lifecycle validates the template's settings and builds the executor's
  plan under that context, and exits 0. (podman kube play writes a passwd line for the pod's uid, as `podman
  run` does without `--passwd=false`; the identity path without one is tested in test_container.py.)
* `/opt/entrypoint.sh` (the shim) hands PID 1 to lifecycle with the arguments.
* examples/spark-decommission.conf is the properties file of a real client-mode PySpark job run by the image's
  `driver` mode: Spark reads it (the job prints the values it got) and the job succeeds.

The SparkApplication needs the kubeflow operator, which cannot run here; its fields are checked by
tests/test_examples.py.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from examples.image import build
from examples.image.cache import REPO_ROOT
from tests.helpers.container.executor import StartContainer
from tests.helpers.container.podman import Options

pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.timeout(900)]

STEP = 180.0  # seconds for one podman command (a dry run, or a local Spark job, in a container)
POD_EXAMPLES = ["executor-pod-template.yaml", "openshift-securitycontext.yaml"]
ALL_CAPABILITIES = 14  # what podman would otherwise give a container (its default list)


@pytest.fixture(scope="module")
def image(lifecycle_image: build.Image) -> build.Image:
    return lifecycle_image


def podman(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], env=build.podman_env(), input=stdin, capture_output=True, text=True,
                          timeout=STEP, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, f"podman {' '.join(args[:3])} exited {done.returncode}: {done.stderr[-3000:]}"
    return done


def executor_env() -> list[dict[str, str]]:
    lines = (REPO_ROOT / "examples/executor.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return [{"name": name, "value": value} for name, value in pairs]


@pytest.fixture
def played(image: build.Image, request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the example as played, the container's name, its output) for the example named by the test's param."""
    doc = yaml.safe_load((REPO_ROOT / "examples/k8s" / request.param).read_text())
    name = f"lifecycle-test-play-{secrets.token_hex(3)}"
    doc["metadata"]["name"] = name
    container = doc["spec"]["containers"][0]
    container["image"] = image.tag
    container["args"] = ["--dry-run", "executor"]
    container["env"] = [*container.get("env", []), *executor_env()]
    played_yaml = yaml.safe_dump(doc)
    try:
        podman("kube", "play", "-", stdin=played_yaml)
        full = f"{name}-{container['name']}"
        podman("wait", full)
        logs = podman("logs", full)
        yield doc, full, logs.stdout + logs.stderr
    finally:
        podman("kube", "down", "-", stdin=played_yaml, check=False)
        podman("pod", "rm", "--force", name, check=False)


@pytest.mark.parametrize("played", POD_EXAMPLES, indirect=True)
def test_the_pod_examples_run_the_image_under_their_own_security_context(
    played: tuple[dict[str, Any], str, str],
) -> None:
    doc, name, output = played
    state = json.loads(podman("inspect", name).stdout)[0]
    assert state["State"]["ExitCode"] == 0, output
    assert "lifecycle dry run: executor" in output
    assert "/opt/java/openjdk/bin/java" in output  # the plan's argv: the image's JAVA_HOME
    assert "initializing -> env-resolved" in output and "error" not in output.lower()
    spec = doc["spec"]
    context = {**spec.get("securityContext", {}), **spec["containers"][0].get("securityContext", {})}
    if "runAsUser" in context:
        assert state["Config"]["User"] == f"{context['runAsUser']}:{context.get('runAsGroup', 0)}"
    assert state["HostConfig"]["ReadonlyRootfs"] is bool(context.get("readOnlyRootFilesystem", False))
    if context.get("capabilities", {}).get("drop") == ["ALL"]:
        assert len(state["HostConfig"]["CapDrop"]) >= ALL_CAPABILITIES and not state["HostConfig"]["CapAdd"]
    mounted = {mount["Destination"] for mount in state["Mounts"]}
    for volume_mount in spec["containers"][0].get("volumeMounts", []):
        assert volume_mount["mountPath"] in mounted


def test_the_entrypoint_shim_hands_pid_1_to_lifecycle(start_container: StartContainer) -> None:
    """`command: ["/opt/entrypoint.sh"]` with args: PID 1 is lifecycle's supervisor (the shim's shell exec'd it and
    is gone), and the child got the arguments. PID 1's command line is read from the host once the supervisor has
    logged that the child runs (before, PID 1 may be between the start-up stage and the supervisor's exec)."""
    options = Options(["bash", "-c", 'echo "args: $0 $#"; exec sleep 60', "x"], {}, entrypoint="/opt/entrypoint.sh",
                      capture_stderr=True)  # fmt: skip
    container = start_container(options)
    container.expect("args: x 0")
    assert container.err is not None
    container.err.wait_for("bash running as pid")
    pid1 = Path(f"/proc/{container.init_pid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "lifecycle.supervise" in pid1 and "/bin/sh" not in pid1 and "entrypoint.sh" not in pid1, pid1
    assert "running 'bash' as given" in container.stderr()


JOB = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
conf = spark.sparkContext.getConf()
for key in ("spark.decommission.enabled", "spark.executor.decommission.forceKillTimeout",
            "spark.storage.decommission.enabled"):
    print("conf", key, conf.get(key))
print("sum", spark.sparkContext.parallelize(range(100), 2).sum())
spark.stop()
"""


def test_the_decommission_conf_is_the_properties_file_of_a_job_the_image_runs(
    image: build.Image, tmp_path: Path
) -> None:
    """`driver --properties-file …` as Spark's scheduler starts a driver pod, with the example conf."""
    (tmp_path / "job.py").write_text(JOB)
    tmp_path.chmod(0o755)
    done = podman(
        "run", "--rm", "--passwd=false", "--user", "1000770000:0", "--read-only", "--tmpfs", "/tmp",
        "--tmpfs", "/opt/spark/work-dir:rw,exec,mode=1777",
        "-v", f"{REPO_ROOT / 'examples/spark-decommission.conf'}:/opt/spark/conf/spark.properties:ro",
        "-v", f"{tmp_path}:/app:ro", image.tag,
        "driver", "--properties-file", "/opt/spark/conf/spark.properties", "--master", "local[2]",
        "--conf", "spark.driver.host=127.0.0.1", "local:///app/job.py",
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert "conf spark.decommission.enabled true" in lines
    assert "conf spark.executor.decommission.forceKillTimeout 35s" in lines
    assert "conf spark.storage.decommission.enabled true" in lines
    assert "sum 4950" in lines
    assert "exit 0" in done.stderr
