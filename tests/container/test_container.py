"""lifecycle as PID 1 of the built image, started and stopped with podman the way the kubelet does it (CRI-O's shape:
conmon and runc).

Every container here is an OpenShift-restricted executor pod: read-only root, uid 1000770000 with gid 0, no
capabilities, no_new_privs, a memory limit, emptyDirs at /tmp and the working directory, the termination-log
bind mount, a loopback-only network namespace (harness: tests/helpers/container/podman.py). PID 1 is the
image's ENTRYPOINT, `lifecycle`, with `executor` as the pod's args, and the executor JVM is the image's JRE
running tests/helpers/decom.java (Spark's main class and SIGPWR handler) or tests/helpers/container/probe.java
(reports user.name). The preStop hook is `podman exec` of `lifecycle-decommission` (or of /opt/decom.sh, the
shim Spark's default spark.kubernetes.decommission.script names), with the container's own user, environment
and working directory, as CRI-O runs an exec. Further scenarios: the stop signal set to SIGPWR (Kubernetes
1.37's container `stopSignal`), the image's `driver` mode running a PySpark job, and a pass-through command.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.helpers.container.executor import ENTRY, StartContainer, events, executor, log_wall, summary
from tests.helpers.container.figures import Figures
from tests.helpers.container.podman import DECOM_SCRIPT, HOOK, MIB, SPARK_HOME, UID, WORK_DIR, Options

# The first test may also build the images (minutes; examples/image bounds each step): hence the long timeout.
pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.jvm, pytest.mark.timeout(900)]

STOP_GRACE = 2  # seconds: the kubelet's grace period where the JVM outlives SIGTERM (kept short)


def passthrough(*command: str, **variables: str) -> Options:
    """A command as the pod's args: the image's ENTRYPOINT, lifecycle, runs it as given."""
    return Options(list(command), {"LIFECYCLE_LOG_FORMAT": "json", **variables})


# ---- 0. the harness: the pod's security context as podman applied it ----------------------------------------

CONTEXT_PROBE = r"""
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | tr -s ' \t' ' ' |
    sed 's/ *$//'
echo "passwd-lines=$(grep -c "^[^:]*:[^:]*:$(id -u):" /etc/passwd)"
for d in / /etc /var/tmp /tmp "$PWD" /dev/termination-log; do
    if [ -d "$d" ]; then f="$d/probe"; else f="$d"; fi
    if ( : >> "$f" ) 2>/dev/null; then echo "$d: writable"; else echo "$d: read-only"; fi
done
echo "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "env-TERM=$(printenv TERM || echo unset) env-container=$(printenv container || echo unset) HOME=$HOME"
"""


def test_the_restricted_security_context_is_in_force(start_container: StartContainer, figures: Figures) -> None:
    """The harness's podman flags should give what the tests claim: uid 1000770000, gid 0 and no other group, no
    capability in any set, no_new_privs, a read-only root (no /var/tmp tmpfs of podman's), writable emptyDirs and
    termination log, the memory limit, no passwd line written by podman, none of podman's extra variables."""
    container = start_container(passthrough("bash", "-c", CONTEXT_PROBE))
    ended = container.wait()
    lines = container.stdout_lines()
    figures.note("0 security context", f"{lines}; " + summary(container, ended.status))

    assert ended.status == 0, container.stderr()
    assert f"Uid: {UID} {UID} {UID} {UID}" in lines and "Gid: 0 0 0 0" in lines, lines
    assert "Groups: 0" in lines, lines
    assert [line for line in lines if line.startswith("Cap")] == [
        f"{name}: 0000000000000000" for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    ], lines
    assert "NoNewPrivs: 1" in lines
    assert "passwd-lines=0" in lines  # --passwd=false: no line for the uid in the image's /etc/passwd
    assert [line for line in lines if ": " in line and line.split(": ")[1] in ("writable", "read-only")] == [
        "/: read-only", "/etc: read-only", "/var/tmp: read-only", "/tmp: writable", f"{WORK_DIR}: writable",
        "/dev/termination-log: writable",
    ], lines  # fmt: skip
    assert f"limit={512 * MIB}" in lines
    assert "env-TERM=unset env-container=unset HOME=/" in lines


# ---- 1. preStop: podman exec lifecycle-decommission, or /opt/decom.sh ---------------------------------------


@pytest.mark.parametrize("hook_command", [HOOK, DECOM_SCRIPT], ids=["lifecycle-decommission", "opt-decom-sh"])
def test_prestop_exec_drains_the_executor_and_returns_0_before_pid1_exits(
    start_container: StartContainer, stub_classes: Path, figures: Figures, hook_command: str
) -> None:
    """The preStop exec (lifecycle-decommission, or the image's /opt/decom.sh shim that Spark's default
    spark.kubernetes.decommission.script names) should drain the JVM, return 0 before PID 1 exits, and the
    container should exit 0."""
    started = time.monotonic()
    container = start_container(executor(stub_classes, DECOM_DRAIN_MS="300"))
    container.ready()
    figures.record("container start -> JVM ready", time.monotonic() - started)

    hook = container.exec([hook_command])
    container.expect("draining")
    hooked = hook.wait()
    ended = container.wait()

    # Had the hook still been running when PID 1 exited, the kernel would have SIGKILLed it (137), and lifecycle
    # would have warned that LIFECYCLE_HOOK_GRACE ran out; `podman exec` would have returned 137. (The two podman
    # clients' exit times are too noisy to order.)
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

    jvm_exited = log_wall(next(r["ts"] for r in log if r.get("dest") == "terminated"))
    name = Path(hook_command).name
    figures.record(f"preStop {name}: podman exec wall time", hooked.exited_at - hooked.started_at)
    figures.record(f"preStop {name}: JVM exit (lifecycle ts) -> podman exec returned", hooked.exited_wall - jvm_exited)
    figures.record(f"preStop {name}: JVM exit (lifecycle ts) -> PID 1 exit (conmon)", ended.exited_wall - jvm_exited)
    figures.note(f"1 preStop drain ({name})", f"hook exit {hooked.status}; " + summary(container, ended.status))


# ---- 2. the kubelet's stop: podman stop -t GRACE (TERM, the grace, KILL) ---------------------------------


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
    stub_classes: Path,
    figures: Figures,
    variables: Mapping[str, str],
    expected: int,
    killed: bool,
) -> None:
    """SIGTERM to PID 1 should end the JVM (143, or 0 remapped); a JVM ignoring it is SIGKILLed after the grace."""
    container = start_container(executor(stub_classes, **variables))
    container.ready()
    stopping = time.time()
    ended, kill_sent = container.stop(grace=STOP_GRACE if killed else 30)
    outcome = f"SIGKILL sent: {kill_sent}; " + summary(container, ended.status)
    figures.note(f"2 kubelet stop {dict(variables) or 'default'}", outcome)
    assert (ended.status, kill_sent) == (expected, killed), container.stderr()
    if killed:  # SIGKILLed with the JVM: lifecycle wrote nothing
        assert container.termination_message() == ""
        assert events(container.log(), "terminated") == []
    else:
        figures.record("podman stop (SIGTERM) -> PID 1 exit (conmon)", ended.exited_wall - stopping)
        terminated = events(container.log(), "terminated")[0]
        assert terminated["exit_code"] == expected
        assert f"exit code: {expected}" in container.termination_message()
        assert "executor exited with code 143" in str(terminated["message"])


# ---- 3. identity: nss_wrapper on a read-only root -----------------------------------------------------------


def test_jvm_user_name_is_the_entry_lifecycle_provides_and_nothing_is_written(
    start_container: StartContainer, probe_classes: Path, figures: Figures
) -> None:
    """The JVM's user.name should be the anonymous uid's nss_wrapper entry, with nothing written to the root."""
    container = start_container(executor(probe_classes))
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
    assert not [path for path, kind in written.items() if kind != "dir"], written  # only mount points
    assert not [path for path in written if path.startswith("/etc")], written


# ---- 4. a real JVM in pass-through mode, and the network namespace -----------------------------------------


def test_passthrough_java_runs_in_the_container(start_container: StartContainer, figures: Figures) -> None:
    """`lifecycle java -XshowSettings:properties -version` should run the image's JVM as given and exit 0."""
    container = start_container(passthrough("java", "-XshowSettings:properties", "-version"))
    ended = container.wait()
    stderr = container.stderr()
    figures.note("4 pass-through java", summary(container, ended.status))

    assert ended.status == 0, stderr
    assert "java.home = /usr/lib/jvm/java-17-openjdk-" in stderr  # where the image's /opt/java/openjdk links
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


def test_network_namespace_has_only_loopback_and_it_is_up(start_container: StartContainer, figures: Figures) -> None:
    """The container's network namespace should hold only `lo`, brought up by podman, and 127.0.0.1 should work."""
    container = start_container(passthrough("python3", "-c", NETWORK_PROBE))
    ended = container.wait()
    lines = container.stdout_lines()
    figures.note("4 network", f"{lines}; " + summary(container, ended.status))
    assert ended.status == 0, container.stderr()
    assert "interfaces=lo" in lines
    assert int(next(line for line in lines if line.startswith("lo-flags=")).split("=")[1], 16) & 0x1  # IFF_UP
    assert "loopback=ping" in lines


# ---- 5. OOM kill under the memory limit ---------------------------------------------------------------------


def test_jvm_above_the_memory_limit_is_oom_killed_and_reported(
    start_container: StartContainer, hog_classes: Path, figures: Figures
) -> None:
    """A JVM outgrowing a 128 MiB limit with its 512 MiB heap should be OOM-killed: 137, OOMKilled in the message."""
    options = executor(hog_classes, SPARK_EXECUTOR_MEMORY="512m")
    options.memory = 128 * MIB
    container = start_container(options)
    container.ready()
    container.kill("USR1")  # forwarded to the JVM, which starts allocating
    container.expect("allocating")
    ended = container.wait()
    message = container.termination_message()
    kills, limit = container.oom_kills(), container.inspect()["HostConfig"]["Memory"]
    conmon = container.oom_killed()
    figures.note("5 OOM", f"conmon saw an OOM kill: {conmon}; host oom_kill +{kills}; "
                 f"{summary(container, ended.status)}; message: {message!r}")  # fmt: skip

    assert limit == 128 * MIB, f"podman applied a memory limit of {limit}"
    assert conmon, "conmon saw no OOM kill in the container's memory cgroup: the limit is not in force"
    assert kills >= 1, "the kernel counted no OOM kill"
    assert ended.status == 128 + signal.SIGKILL, container.stderr()
    assert "exit code: 137" in message, message
    assert "OOMKilled" in message, message


# ---- 6. decommission without a preStop hook: the container's stop signal is SIGPWR ---------------------------


def test_stop_signal_pwr_decommissions_the_executor_without_a_prestop_hook(
    start_container: StartContainer, stub_classes: Path, figures: Figures
) -> None:
    """With the container's stop signal SIGPWR (Kubernetes 1.37's `stopSignal`, here `--stop-signal`), the kubelet's
    stop (`podman stop -t 30`) should make lifecycle's default trigger decommission the JVM: it drains and exits 0
    well within the grace, no SIGKILL, running -> decommissioning -> terminated."""
    options = executor(stub_classes, DECOM_DRAIN_MS="300")
    options.stop_signal = "SIGPWR"
    container = start_container(options)
    container.ready()
    assert container.inspect()["Config"]["StopSignal"] == signal.SIGPWR, "podman did not take the stop signal"
    stopping = time.time()
    ended, kill_sent = container.stop(grace=30)
    figures.record("stop signal SIGPWR: podman stop -> PID 1 exit (conmon)", ended.exited_wall - stopping)
    figures.note("7 stop signal SIGPWR", f"SIGKILL sent: {kill_sent}; " + summary(container, ended.status))

    assert (ended.status, kill_sent) == (0, False), container.stderr()
    assert container.stdout_lines()[-2:] == ["draining", "drained"]
    states = [dest for _, dest in container.transitions()]
    assert states == ["env-resolved", "launching", "running", "decommissioning", "terminated"], states
    log = container.log()
    assert [r for r in log if r["level"] != "info"] == [], log
    (requested,) = events(log, "decommission")
    assert requested["signal"] == "SIGPWR" and "preStop" not in str(requested["message"]), requested
    (terminated,) = events(log, "terminated")
    assert terminated["exit_code"] == 0 and "executor exited with code 0" in str(terminated["message"]), terminated
    assert "exit code: 0" in container.termination_message()


# ---- 7. pass-through and the image's driver mode ----------------------------------------------------------

PASSTHROUGH_SCRIPT = (
    'echo "args=$#:$1"; echo "user=$(id -un) uid=$(id -u) gid=$(id -g) home=$HOME"; echo oops >&2; exit 7'
)


def test_passthrough_bash_runs_as_given_with_its_exit_code_and_output(
    start_container: StartContainer, figures: Figures
) -> None:
    """`podman run IMAGE bash -c …` should run bash as given (lifecycle's pass-through): its stdout and stderr
    through, its exit code as the container's, and the anonymous uid named by nss_wrapper's entry."""
    started = time.monotonic()
    container = start_container(passthrough("bash", "-c", PASSTHROUGH_SCRIPT, "bash", "one"))
    ended = container.wait()
    lines = container.stdout_lines()
    figures.record("pass-through bash: podman run -> exit", ended.exited_at - started)
    figures.note("8 pass-through bash", f"{lines}; " + summary(container, ended.status))

    assert ended.status == 7, container.stderr()
    assert lines == ["args=1:one", f"user={UID} uid={UID} gid=0 home=/"], lines
    assert "oops" in container.stderr().splitlines()
    log = container.log()
    assert [r["message"] for r in events(log, "pass-through")] == ["not a Spark mode: running 'bash' as given"]
    assert events(log, "terminated")[0]["exit_code"] == 7
    assert "exit code: 7" in container.termination_message()


DRIVER_APP = """\
import sys
from pyspark import SparkConf, SparkContext

sc = SparkContext(conf=SparkConf().setAppName("lifecycle-in-image"))
conf = sc.getConf()
total = sc.parallelize(range(1000), 2).map(lambda x: x * x).sum()
workers = set(sc.parallelize(range(2), 2).map(lambda _: __import__("sys").executable).collect())
print(f"RESULT {total} master={sc.master} deploy={conf.get('spark.submit.deployMode')} "
      f"bind={conf.get('spark.driver.bindAddress')} workers={','.join(sorted(workers))}", flush=True)
sc.stop()
sys.exit(0 if total == sum(x * x for x in range(1000)) else 1)
"""
DRIVER_TIMEOUT = 240.0  # seconds: spark-submit, a JVM and two Python workers on 2 shared cores


def test_driver_mode_runs_a_pyspark_job_in_the_image(
    start_container: StartContainer, tmp_path: Path, figures: Figures
) -> None:
    """`podman run IMAGE driver --master local[2] … local:///opt/app/app.py` should run spark-submit in client mode
    from the image's /opt/spark, the job's Python workers in the image's python3, and exit 0 with the result."""
    app = tmp_path / "app"
    app.mkdir(mode=0o755)
    (app / "app.py").write_text(DRIVER_APP)
    (app / "app.py").chmod(0o644)
    args = ["driver", "--master", "local[2]", "--name", "lifecycle-in-image", "--driver-memory", "512m",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false",
            "--conf", "spark.driver.host=127.0.0.1", "local:///opt/app/app.py"]  # fmt: skip
    env = {"SPARK_DRIVER_BIND_ADDRESS": "127.0.0.1", "SPARK_LOCAL_IP": "127.0.0.1", "LIFECYCLE_LOG_FORMAT": "json"}
    options = Options(args, env, memory=1536 * MIB, binds={app: "/opt/app"})
    started = time.monotonic()
    container = start_container(options)
    ended = container.wait(DRIVER_TIMEOUT)
    lines = container.stdout_lines()
    figures.record("driver mode: podman run -> job done, container exit", ended.exited_at - started)
    figures.note("9 driver mode", f"{[line for line in lines if line.startswith('RESULT')]}; "
                 + summary(container, ended.status))  # fmt: skip

    assert ended.status == 0, container.stderr()[-4000:]
    expected = sum(x * x for x in range(1000))
    assert f"RESULT {expected} master=local[2] deploy=client bind=127.0.0.1 workers=/usr/bin/python3" in lines, lines
    log = container.log()
    states = [dest for _, dest in container.transitions()]
    assert states == ["env-resolved", "launching", "running", "terminated"], states
    assert [r for r in log if r["level"] in ("warning", "error")] == [], log
    (terminated,) = events(log, "terminated")
    assert terminated["exit_code"] == 0 and "driver exited with code 0" in str(terminated["message"]), terminated
    assert "exit code: 0" in container.termination_message()
