"""lifecycle as PID 1 of a real container, started and stopped the way the kubelet does it through runc.

Every container here is an OpenShift-restricted executor pod: read-only root, uid 1000770000 with gid 0, no
capabilities, no_new_privs, a memory limit, emptyDirs at /tmp and the working directory, the termination-log
bind mount, a loopback-only network namespace (harness: tests/helpers/container/). PID 1 is `lifecycle
executor` and the executor JVM is tests/helpers/decom.java (a real JVM with Spark's main class and SIGPWR
handler) or tests/helpers/container/probe.java (reports user.name). The preStop hook is `runc exec` of
`lifecycle-decommission` with the container's own process settings, as containerd builds it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.container.executor import ENTRY, StartContainer, events, executor, summary
from tests.helpers.container.figures import Figures
from tests.helpers.container.spec import MIB, SPARK_HOME, UID, Assets, Options

# The first test also builds the image (about a minute; image.py bounds each step): hence the long timeout.
pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.jvm, pytest.mark.timeout(900)]

STOP_GRACE = 2.0  # seconds: the kubelet's grace period where the JVM outlives SIGTERM (kept short)


def passthrough(assets: Assets, *command: str, **variables: str) -> Options:
    env = {"JAVA_HOME": assets.java_home, "SPARK_HOME": SPARK_HOME, "LIFECYCLE_LOG_FORMAT": "json", **variables}
    return Options([assets.lifecycle, *command], env)


def wall(timestamp: object) -> float:
    """lifecycle's `ts` field (UTC, milliseconds) as time.time()."""
    return datetime.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


# ---- 1. preStop: runc exec lifecycle-decommission ----------------------------------------------------------


def test_prestop_exec_drains_the_executor_and_returns_0_before_pid1_exits(
    start_container: StartContainer, assets: Assets, stub_classes: Path, figures: Figures
) -> None:
    """The preStop exec should drain the JVM, return 0 before PID 1 exits, and the container should exit 0."""
    started = time.monotonic()
    container = start_container(executor(assets, stub_classes, DECOM_DRAIN_MS="300"))
    container.ready()
    figures.record("container start -> JVM ready", time.monotonic() - started)

    hook = container.exec([assets.hook])
    container.expect("draining")
    hooked = hook.wait()
    ended = container.wait()

    # Had the hook still been running when PID 1 exited, the kernel would have SIGKILLed it (137), and lifecycle
    # would have warned that LIFECYCLE_HOOK_GRACE ran out. (The two shims' reap times are too noisy to order.)
    assert hooked.status == 0, f"preStop exec exited {hooked.status}:\n{hook.stderr()}"
    assert ended.status == 0, container.stderr()
    assert container.stdout_lines()[-2:] == ["draining", "drained"]
    states = [dest for _, dest in container.transitions()]
    assert states == ["env-resolved", "launching", "running", "decommissioning", "terminated"], states
    log = container.log()
    assert [r for r in log if r["level"] != "info"] == []
    assert "preStop command" in str(events(log, "decommission")[0]["message"])
    assert events(log, "terminated")[0]["exit_code"] == 0
    assert "exit code: 0" in container.termination_message()
    assert any('"event": "drained"' in line for line in hook.stderr().splitlines()), hook.stderr()

    jvm_exited = wall(next(r["ts"] for r in log if r.get("dest") == "terminated"))
    figures.record("preStop exec wall time (runc exec -> hook reaped)", hooked.exited_at - hooked.started_at)
    figures.record("JVM exit -> hook exit (lifecycle's log ts, ms resolution)", hooked.exited_wall - jvm_exited)
    figures.record("hook reaped -> PID 1 reaped (two shims: noisy)", ended.exited_at - hooked.exited_at)
    figures.note("1 preStop drain", f"hook exit {hooked.status}; " + summary(container, ended.status))


# ---- 2. the kubelet's stop: runc kill TERM, grace, runc kill KILL -------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected", "killed"),
    [
        pytest.param({}, 128 + signal.SIGTERM, False, id="jvm-dies-of-term-143"),
        pytest.param({"LIFECYCLE_EXIT_REMAP": "143:0"}, 0, False, id="exit-remap-143-to-0"),
        pytest.param({"DECOM_BEHAVIOUR": "stubborn"}, 128 + signal.SIGKILL, True, id="jvm-ignores-term-137"),
    ],
)
def test_kubelet_stop_gives_the_documented_status(
    start_container: StartContainer,
    assets: Assets,
    stub_classes: Path,
    figures: Figures,
    variables: Mapping[str, str],
    expected: int,
    killed: bool,
) -> None:
    """SIGTERM to PID 1 should end the JVM (143, or 0 remapped); a JVM ignoring it is SIGKILLed after the grace."""
    container = start_container(executor(assets, stub_classes, **variables))
    container.ready()
    stopping = time.monotonic()
    ended, kill_sent = container.stop(grace=STOP_GRACE if killed else 30.0)
    outcome = f"SIGKILL sent: {kill_sent}; " + summary(container, ended.status)
    figures.note(f"2 kubelet stop {dict(variables) or 'default'}", outcome)
    assert (ended.status, kill_sent) == (expected, killed), container.stderr()
    if killed:  # SIGKILLed with the JVM: lifecycle wrote nothing
        assert container.termination_message() == ""
        assert events(container.log(), "terminated") == []
    else:
        figures.record("runc kill TERM -> PID 1 exit", ended.exited_at - stopping)
        terminated = events(container.log(), "terminated")[0]
        assert terminated["exit_code"] == expected
        assert f"exit code: {expected}" in container.termination_message()
        assert "executor exited with code 143" in str(terminated["message"])


# ---- 3. identity: nss_wrapper on a read-only root -----------------------------------------------------------


def test_jvm_user_name_is_the_entry_lifecycle_provides_and_nothing_is_written(
    start_container: StartContainer, assets: Assets, probe_classes: Path, figures: Figures
) -> None:
    """The JVM's user.name should be the anonymous uid's nss_wrapper entry, with nothing written to the root."""
    container = start_container(executor(assets, probe_classes))
    ended = container.wait()
    lines = container.stdout_lines()
    user = next((line for line in lines if line.startswith("user.name=")), "no user.name line")
    figures.note("3 identity", f"{user}; upper layer: {container.upper_entries()}; " + summary(container, ended.status))

    assert ended.status == 0, container.stderr()
    assert f"user.name={UID}" in lines  # the entry's name field is the uid, as upstream's line has it
    assert f"user.home={SPARK_HOME}" in lines
    identity = [r["message"] for r in events(container.log(), "identity")]
    assert identity == [f"nss_wrapper gives uid {UID} the entry '{ENTRY}' (nothing written to disk)"]
    written = container.upper_entries()
    assert not [path for path, kind in written.items() if kind != "dir"], written  # only runc's mount points
    assert not [path for path in written if path.startswith("/etc")], written


# ---- 4. a real JVM in pass-through mode, and the network namespace -----------------------------------------


def test_passthrough_java_runs_in_the_container(
    start_container: StartContainer, assets: Assets, figures: Figures
) -> None:
    """`lifecycle java -XshowSettings:properties -version` should run the image's JVM as given and exit 0."""
    container = start_container(passthrough(assets, "java", "-XshowSettings:properties", "-version"))
    ended = container.wait()
    stderr = container.stderr()
    figures.note("4 pass-through java", summary(container, ended.status))

    assert ended.status == 0, stderr
    assert f"java.home = {assets.java_home}" in stderr
    assert f"user.name = {UID}" in stderr
    assert 'openjdk version "17.' in stderr
    passthrough_lines = [r["message"] for r in events(container.log(), "pass-through")]
    assert passthrough_lines == ["not a Spark mode: running 'java' as given"]


NETWORK_PROBE = """
import os, socket
print("interfaces=" + ",".join(sorted(os.listdir("/sys/class/net"))))
print("lo-flags=" + open("/sys/class/net/lo/flags").read().strip())
server = socket.create_server(("127.0.0.1", 0))
socket.create_connection(server.getsockname(), timeout=5).sendall(b"ping")
print("loopback=" + server.accept()[0].recv(4).decode())
"""


def test_network_namespace_has_only_loopback_and_it_is_up(
    start_container: StartContainer, assets: Assets, figures: Figures
) -> None:
    """The container's network namespace should hold only `lo`, brought up by runc, and 127.0.0.1 should work."""
    container = start_container(passthrough(assets, "python3", "-c", NETWORK_PROBE))
    ended = container.wait()
    lines = container.stdout_lines()
    figures.note("4 network", f"{lines}; " + summary(container, ended.status))
    assert ended.status == 0, container.stderr()
    assert "interfaces=lo" in lines
    assert int(next(line for line in lines if line.startswith("lo-flags=")).split("=")[1], 16) & 0x1  # IFF_UP
    assert "loopback=ping" in lines


# ---- 5. OOM kill under the memory limit ---------------------------------------------------------------------


def test_jvm_above_the_memory_limit_is_oom_killed_and_reported(
    start_container: StartContainer, assets: Assets, hog_classes: Path, figures: Figures
) -> None:
    """A JVM outgrowing a 128 MiB limit with its 512 MiB heap should be OOM-killed: 137, OOMKilled in the message."""
    options = executor(assets, hog_classes, SPARK_EXECUTOR_MEMORY="512m")
    options.memory = 128 * MIB
    container = start_container(options)
    container.ready()
    container.kill("USR1")  # forwarded to the JVM, which starts allocating
    container.expect("allocating")
    ended = container.wait()
    message = container.termination_message()
    figures.note("5 OOM", f"oom_kill={container.oom_kills()}; {summary(container, ended.status)}; message: {message!r}")

    assert container.oom_kills() >= 1, "the kernel did not OOM-kill anything: the harness's limit is not in force"
    assert ended.status == 128 + signal.SIGKILL, container.stderr()
    assert "exit code: 137" in message, message
    assert "OOMKilled" in message, message
