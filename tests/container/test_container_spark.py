"""Real Spark end to end with the executor in a container of the built image, under podman (Spark 4.3.0).

The standalone master and the client-mode PySpark driver (`lifecycle driver`) run on the host from the project's
.spark-venv (examples/spark/), as in tests/integration/test_spark_e2e.py. The executor is the image's ENTRYPOINT,
`lifecycle`, with `executor` as the pod's args: PID 1 of a podman container with the restricted security context
of the other container tests (tests/helpers/container/podman.py: read-only root, uid 1000770000 with gid 0, no
capabilities, no_new_privs, emptyDirs at /tmp and the working directory, the termination-log mount), a 1 GiB
memory limit for a 512m executor, and one difference: the host's network and UTS namespaces (`hostNetwork:
true`), because the executor must reach the driver and the master, and its tasks the test's coordinator, all
listening on the host's 127.0.0.1. Everything it runs is the image's: the JRE at /opt/java/openjdk, Spark at
/opt/spark, and /usr/bin/python3 for the PySpark workers (the driver's PYSPARK_PYTHON), which find pyspark in
$SPARK_HOME/python/lib/pyspark.zip.

The executor registers and runs a two-task job whose tasks block until the test releases them; while both
run, the preStop command runs as the kubelet runs Spark's default one: `podman exec <container> /opt/decom.sh`
(spark.kubernetes.decommission.script, the image's shim for lifecycle-decommission). The JVM logs that it is
blocked from shutdown by its 2 running tasks, the test releases them, the job succeeds, the JVM, the hook and
the container's PID 1 all exit 0. With the host's network, the abstract socket the hook asks through is in the
host's namespace beside the driver's lifecycle; it is named after the container's mount namespace, so the hook
must reach the container's lifecycle, and the test checks that it does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

from examples.image.build import Image
from examples.pods import EXECUTOR_CLASS
from examples.proc import cmdline, namespace_pid, parent_pid, wait_exits
from examples.spark.coordinator import Task
from examples.spark.driver import Driver, start_driver, start_master
from examples.spark.executor import executor_env
from examples.spark.install import LOOPBACK, SYSTEM_PATH, ensure_pyspark
from examples.spark.output import Line, Processes
from examples.spark.scenario import REGISTERED, transitions
from tests.helpers.container.executor import ENTRY, events, log_wall, summary
from tests.helpers.container.figures import Figures
from tests.helpers.container.podman import (
    DECOM_SCRIPT,
    JAVA_HOME,
    LIFECYCLE_VENV,
    MIB,
    SPARK_HOME,
    TIMEOUT,
    UID,
    WORK_DIR,
    Container,
    Exec,
    Options,
    Result,
    new_name,
)
from tests.helpers.spark import DRAINED, assert_result

# The first run may also build the images and the host's pyspark venv: hence the long timeout.
pytestmark = [
    pytest.mark.integration, pytest.mark.container, pytest.mark.jvm, pytest.mark.spark, pytest.mark.timeout(900),
]  # fmt: skip

EXECUTOR_MEMORY = "512m"  # SPARK_EXECUTOR_MEMORY: -Xms and -Xmx
CONTAINER_MEMORY = 1024 * MIB  # the pod's limit: heap, metaspace, two Python workers and the tmpfs emptyDirs
WORKER_PYTHON = "/usr/bin/python3"  # the image's: PYSPARK_PYTHON, as the driver tells the executors
JOB = "in-container"


@dataclass
class Cluster:
    """The master and the driver on the host (the project's .spark-venv), the executors' python the image's."""

    driver: Driver
    workdir: Path
    ids: Iterator[int]


@pytest.fixture(scope="module")
def cluster(container_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A standalone master (no workers) and a client-mode driver through `lifecycle driver`, killed by PID after."""
    if shutil.which("java", path=SYSTEM_PATH) is None:
        pytest.skip("needs java on the host for the master and the driver")
    spark_home = ensure_pyspark(quiet=True)
    workdir = tmp_path_factory.mktemp("spark-cluster")
    processes = Processes()
    try:
        master = start_master(processes, spark_home, workdir, timeout=TIMEOUT)
        driver = start_driver(processes, spark_home, master, workdir, timeout=TIMEOUT,
                              LIFECYCLE_LOG_FORMAT="json", PYSPARK_PYTHON=WORKER_PYTHON)  # fmt: skip
        try:
            yield Cluster(driver, workdir, count(1))
            code = driver.stop(timeout=TIMEOUT)
            assert code == 0, f"lifecycle driver exited {code} after sc.stop():\n{driver.started.output.tail()}"
        finally:
            driver.coordinator.close()
    finally:
        processes.stop()


@dataclass(frozen=True)
class Proc:
    """One of the container's processes, seen from the host while the tasks ran."""

    host_pid: int
    pid: int  # in the container's PID namespace
    parent: int  # in the container's PID namespace
    uids: list[int]  # real, effective, saved, filesystem
    gids: list[int]
    argv: list[str]
    environ: dict[str, str]


def proc(host_pid: int, inner: dict[int, int]) -> Proc:
    """Read /proc/<host_pid> (status, cmdline, environ); `inner` maps host PIDs to the container's."""
    fields = {}
    with open(f"/proc/{host_pid}/status", encoding="utf-8") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    with open(f"/proc/{host_pid}/environ", "rb") as handle:
        pairs = [item.decode("utf-8", "replace").partition("=") for item in handle.read().split(b"\0") if item]
    return Proc(host_pid, inner[host_pid], inner.get(parent_pid(host_pid), 0),
                [int(v) for v in fields["Uid"]], [int(v) for v in fields["Gid"]], cmdline(host_pid),
                {name: value for name, _, value in pairs})  # fmt: skip


@dataclass
class Drained:
    """What the executor in the container went through: registered, ran two tasks, drained by the preStop exec."""

    container: Container
    env: dict[str, str]
    jvm: Proc
    workers: list[Proc]  # the Python workers that ran the two tasks
    passwd: str  # the file NSS_WRAPPER_PASSWD names, read from the host while lifecycle held it
    tasks: list[Task]
    hook: Exec
    hooked: Result
    ended: Result
    result: dict[str, object]
    started_at: float  # time.monotonic() just before `podman run`
    registered: Line
    requested_at: float  # just before `podman exec` of /opt/decom.sh
    decommissioning: Line  # the JVM's `Decommission executor`
    blocked: Line  # the JVM's `Blocked from shutdown by 2 running tasks`
    released_at: float
    jvm_exited_at: float  # its pidfd turned readable
    pid1_argv: list[str]  # the container's PID 1, as the host saw it while the tasks ran


def json_lines(text: str) -> list[dict[str, object]]:
    """The lines of `text` that are JSON objects (lifecycle-decommission's log with LIFECYCLE_LOG_FORMAT=json)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def read_passwd(jvm: Proc, by_inner: dict[int, int]) -> str:
    """The passwd file the JVM's nss_wrapper reads (NSS_WRAPPER_PASSWD, /proc/<pid>/fd/<n> in the container)."""
    found = re.fullmatch(r"/proc/(\d+)/fd/(\d+)", jvm.environ.get("NSS_WRAPPER_PASSWD", ""))
    if found is None or int(found.group(1)) not in by_inner:
        return f"(NSS_WRAPPER_PASSWD={jvm.environ.get('NSS_WRAPPER_PASSWD')!r})"
    return Path(f"/proc/{by_inner[int(found.group(1))]}/fd/{found.group(2)}").read_text()


def container_processes(container: Container) -> dict[int, int]:
    """{host PID: PID in the container} for every process in the container's PID namespace.

    Found by namespace, not as PID 1's descendants: the JVM starts the Python daemon from a task thread, and a
    thread's children are listed only in its own /proc/<pid>/task/<tid>/children.
    """
    namespace = os.readlink(f"/proc/{container.init_pid()}/ns/pid")
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                    continue
            except OSError:  # exited meanwhile
                continue
            inner = namespace_pid(int(entry))
            if inner is not None:
                found[int(entry)] = inner
    return found


@pytest.fixture(scope="module")
def drained(
    cluster: Cluster, lifecycle_image: Image, tmp_path_factory: pytest.TempPathFactory, figures: Figures
) -> Iterator[Drained]:
    """`lifecycle executor` as PID 1 of the container ran two tasks and was drained by `podman exec … /opt/decom.sh`."""
    driver = cluster.driver
    executor_id = str(next(cluster.ids))
    env = executor_env(
        Path(SPARK_HOME), driver, executor_id, f"exec-{executor_id}", memory=EXECUTOR_MEMORY, cores=2,
        PYSPARK_PYTHON=WORKER_PYTHON, LIFECYCLE_LOG_FORMAT="json",
    )  # fmt: skip
    for name in ("PATH", "HOME", "LANG"):  # the scheduler sets none of them: the image's (HOME: podman's /)
        del env[name]
    options = Options(["executor"], env, memory=CONTAINER_MEMORY, host_network=True, capture_stderr=True)
    container = Container(lifecycle_image.tag, options, tmp_path_factory.mktemp("spark-container"), new_name("spark"))
    pidfds: list[int] = []
    try:
        driver.submit(JOB)
        started = time.monotonic()
        container.start()
        assert container.err is not None
        err = container.err
        registered = err.wait_for(REGISTERED, timeout=TIMEOUT)
        tasks = driver.coordinator.wait_tasks(JOB, 2, TIMEOUT)
        err.wait_for("running as pid", timeout=TIMEOUT)  # lifecycle is in `running`: its control socket listens

        inner = container_processes(container)
        by_inner = {pid: host for host, pid in inner.items()}
        jvms = [pid for pid in inner if EXECUTOR_CLASS in cmdline(pid)[1:]]
        assert len(jvms) == 1, f"expected one executor JVM in the container, found {jvms}"
        jvm = proc(jvms[0], inner)
        workers = [proc(by_inner[task.pid], inner) for task in tasks if task.pid in by_inner]
        passwd = read_passwd(jvm, by_inner)
        pid1_argv = cmdline(by_inner[1])
        pidfds.append(os.pidfd_open(jvm.host_pid))

        mark = err.count()
        requested = time.monotonic()
        hook = container.exec([DECOM_SCRIPT])  # as the kubelet runs the preStop exec: no arguments, no shell
        decommissioning = err.wait_for("CoarseGrainedExecutorBackend: Decommission executor", timeout=TIMEOUT,
                                       start=mark)  # fmt: skip
        blocked = err.wait_for("Blocked from shutdown by 2 running tasks", timeout=TIMEOUT, start=mark)
        released = time.monotonic()
        driver.coordinator.release(JOB)
        exits = wait_exits({"jvm": pidfds[0]}, TIMEOUT)
        hooked, ended = hook.wait(), container.wait()
        err.wait_closed(TIMEOUT)
        result = driver.result(JOB, TIMEOUT)
        drain = Drained(container, env, jvm, workers, passwd, tasks, hook, hooked, ended, result, started,
                        registered, requested, decommissioning, blocked, released, exits["jvm"], pid1_argv)  # fmt: skip
        figures.record("spark: podman run -> executor registered with the driver", registered.at - started)
        figures.record("spark: drain: podman exec /opt/decom.sh -> JVM exit (tasks held)", exits["jvm"] - requested)
        figures.record("spark: drain: tasks released -> JVM exit", exits["jvm"] - released)
        jvm_logged = log_wall(next(r["ts"] for r in container.log() if r.get("dest") == "terminated"))
        figures.record("spark: JVM exit (pidfd, seen by the test) -> podman exec /opt/decom.sh returned",
                       hooked.exited_at - exits["jvm"])  # fmt: skip
        figures.record("spark: JVM exit (lifecycle's log ts) -> podman exec /opt/decom.sh returned",
                       hooked.exited_wall - jvm_logged)  # fmt: skip
        figures.record("spark: JVM exit -> podman run returned (container exited)", ended.exited_at - exits["jvm"])
        figures.note(
            "10 real Spark executor drained (podman exec /opt/decom.sh)",
            f"hook exit {hooked.status}; {summary(container, ended.status)}",
        )
        yield drain
    finally:
        driver.cancel_unfinished()
        for fd in pidfds:
            os.close(fd)
        container.close()


# ---- the executor in the container ----------------------------------------------------------------------------


def test_the_executor_registers_and_runs_pyspark_tasks_in_the_container_as_the_arbitrary_uid(
    drained: Drained,
) -> None:
    """The JVM (lifecycle's child, uid 1000770000, gid 0, the image's JRE) should register and run both tasks, each
    in a Python worker of the image's python3 inside the container, as the same uid."""
    log = drained.container.stderr()
    assert f"Executor: Starting executor ID {drained.env['SPARK_EXECUTOR_ID']} on host {LOOPBACK}" in log
    assert "Executor: Running task 0.0 in stage" in log and "Executor: Running task 1.0 in stage" in log
    pid1 = drained.pid1_argv  # the image's ENTRYPOINT, lifecycle, now its supervisor (exec'd in place)
    assert pid1[:3] == [f"{LIFECYCLE_VENV}/bin/python3", "-I", "-c"] and "lifecycle.supervise" in pid1[3], pid1
    jvm = drained.jvm
    assert jvm.parent == 1, jvm  # lifecycle, PID 1 of the container
    assert (jvm.uids, jvm.gids) == ([UID] * 4, [0] * 4), jvm
    assert f"-Xmx{EXECUTOR_MEMORY}" in jvm.argv and jvm.argv[0] == f"{JAVA_HOME}/bin/java"
    classpath = jvm.argv[jvm.argv.index("-cp") + 1].split(":")
    assert classpath[:3] == [f"{SPARK_HOME}/conf", "", f"{SPARK_HOME}/jars/*"], classpath
    assert classpath[3] == WORK_DIR, classpath  # the JVM's working directory, an emptyDir

    assert [task.index for task in drained.tasks] == [0, 1]
    workers = drained.workers
    assert len(workers) == 2, f"task PIDs {[t.pid for t in drained.tasks]} are not the container's processes"
    for worker in workers:
        assert (worker.uids, worker.gids) == ([UID] * 4, [0] * 4), worker
        assert worker.argv[:3] == [WORKER_PYTHON, "-m", "pyspark.daemon"], worker  # forked by the daemon


def test_the_prestop_exec_drains_the_executor_while_its_two_tasks_run(drained: Drained) -> None:
    """While two tasks run, `podman exec <container> /opt/decom.sh` should drain the executor: the JVM waits for its
    tasks, the job succeeds, the JVM, the hook and PID 1 exit 0 (the hook first: had it still run when PID 1
    exited, the kernel would have killed it and `podman exec` returned 137), and lifecycle goes running ->
    decommissioning -> terminated."""
    container = drained.container
    assert drained.hooked.status == 0, f"preStop exec exited {drained.hooked.status}:\n{drained.hook.stderr()}"
    assert drained.ended.status == 0, summary(container, drained.ended.status)
    assert_result(drained.result)
    assert max(task.at for task in drained.tasks) < drained.requested_at < drained.decommissioning.at
    assert container.err is not None
    for index in (0, 1):  # held by the coordinator until released, both tasks finished while the JVM waited
        finished = container.err.find(f"Executor: Finished task {index}.0")
        assert finished is not None and drained.blocked.at < drained.released_at < finished.at, finished

    log = container.log()
    assert transitions(log) == DRAINED, log
    assert [r for r in log if r["level"] != "info"] == [], log
    (requested,) = events(log, "decommission")
    assert requested["signal"] == "SIGPWR" and "on the preStop command" in str(requested["message"]), requested
    (end,) = events(log, "terminated")
    assert end["exit_code"] == 0 and "executor exited with code 0" in str(end["message"]), end
    assert "Executor self-exiting due to : Finished decommissioning" in container.stderr()
    termination = container.termination_message()
    assert "exit code: 0" in termination and "state: terminated" in termination, termination

    hook = {r["event"]: r for r in json_lines(drained.hook.stderr())}
    # The host's abstract socket namespace also holds the driver's lifecycle: the hook reached the container's.
    assert hook["decommission"]["supervisor_event"] == "accepted", hook
    assert hook["decommission"]["supervisor_child_pid"] == drained.jvm.pid, hook
    assert hook["drained"]["supervisor_child_code"] == 0, hook
    assert hook["drained"]["supervisor_deadline_passed"] is False, hook


def test_the_executor_jvm_sees_the_nss_wrapper_entry_and_writes_nothing_to_the_root(drained: Drained) -> None:
    """The JVM should run with nss_wrapper preloaded and the anonymous uid's entry in its passwd file, Spark should
    name that user, and nothing should be written to the image's layers."""
    jvm = drained.jvm
    assert "libnss_wrapper.so" in jvm.environ.get("LD_PRELOAD", ""), jvm.environ
    assert jvm.environ.get("NSS_WRAPPER_PASSWD", "").startswith("/proc/1/fd/"), jvm.environ  # lifecycle's memfd
    assert drained.passwd.splitlines()[-1] == ENTRY, drained.passwd
    # Spark's user: Hadoop's UGI login name, from getpwuid(3) through nss_wrapper (no entry: the login fails)
    assert f"SecurityManager: Changing view acls to: {UID}" in drained.container.stderr()
    identity = [r["message"] for r in events(drained.container.log(), "identity")]
    assert identity == [f"nss_wrapper gives uid {UID} the entry '{ENTRY}' (nothing written to disk)"]
    written = drained.container.upper_entries()
    assert not [path for path, kind in written.items() if kind != "dir"], written  # only mount points
