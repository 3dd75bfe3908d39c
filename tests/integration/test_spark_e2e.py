"""lifecycle against real Spark (pyspark 4.3.0's distribution), end to end, without Kubernetes.

One standalone master with no workers and one client-mode PySpark driver (started by `lifecycle driver`)
serve every executor test. Each executor is started as the Kubernetes scheduler starts it (the container
argument `executor` and the scheduler's environment, upstream-behaviour §4.1-§4.2) in a pod made of
namespaces: `unshare --pid --fork --mount-proc` gives it its own PID and mount namespaces, the network
namespace is shared so loopback reaches the driver. The executor registers with the driver itself (the
driver's scheduler backend accepts any executor that knows its URL).

Jobs are single-stage, two tasks; each task reports to the test's coordinator and blocks until released,
so a test knows exactly when tasks run and drains the executor while they do. Nothing sleeps: every wait
blocks on a log line, a socket or a pidfd, bounded. Every process is killed by pidfd at the end.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, pairwise
from pathlib import Path

import pytest

from examples.pods import EXECUTOR_CLASS
from examples.proc import cmdline, descendants, parent_pid, wait_exits
from examples.spark.driver import (
    EXPECTED_TOTAL,
    Driver,
    Master,
    driver_argv,
    split_command_string,
    start_driver,
    start_master,
    write_driver_program,
)
from examples.spark.executor import ExecutorPod, Hook, can_use_namespaces, executor_env
from examples.spark.install import LOOPBACK, PYSPARK_VERSION, SYSTEM_PATH, ensure_pyspark, spark_env
from examples.spark.output import Processes
from examples.spark.scenario import REGISTERED, Drain, run_drain, transitions
from tests.helpers.spark import DRAINED, START_UP, assert_result, expected_executor_argv

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

JAVA = shutil.which("java", path=SYSTEM_PATH)
needs_java = pytest.mark.skipif(JAVA is None, reason="needs java (OpenJDK 17+)")
needs_namespaces = pytest.mark.skipif(not can_use_namespaces(), reason="needs root, unshare and nsenter")
needs_tini = pytest.mark.skipif(shutil.which("tini", path=SYSTEM_PATH) is None, reason="needs tini")
TIMEOUT = 90.0  # seconds for any one wait (JVM start-ups on a loaded 2-core machine take a few)
HOOK_AFTER_JVM = 0.050  # the preStop command returns within 50 ms of the JVM's exit


@dataclass
class Cluster:
    master: Master
    driver: Driver
    workdir: Path
    ids: Iterator[int]

    def next_id(self) -> str:
        return str(next(self.ids))


@pytest.fixture(scope="session")
def spark_home() -> Path:
    """pyspark==4.3.0 in .spark-venv, installed on first use (about a minute), then reused."""
    if JAVA is None:
        pytest.skip("needs java")
    return ensure_pyspark()


@pytest.fixture(scope="module")
def processes() -> Iterator[Processes]:
    """Every process of this module (master, driver, pods, hooks), killed by pidfd at the end."""
    started = Processes()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster(spark_home: Path, processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A standalone master (no workers) and a client-mode driver through `lifecycle driver`, shared."""
    workdir = tmp_path_factory.mktemp("spark")
    master = start_master(processes, spark_home, workdir, timeout=TIMEOUT)
    driver = start_driver(processes, spark_home, master, workdir, timeout=TIMEOUT,
                          LIFECYCLE_LOG_FORMAT="json")
    yield Cluster(master, driver, workdir, count(1))
    try:
        code = driver.stop(timeout=TIMEOUT)
    finally:
        driver.coordinator.close()
    assert code == 0, f"lifecycle driver exited {code} after sc.stop():\n{driver.started.output.tail()}"


@pytest.fixture
def cancel_jobs(cluster: Cluster) -> Iterator[None]:
    """A failed test must not leave blocked tasks for the next executor: release and cancel its jobs."""
    yield
    cluster.driver.cancel_unfinished()


@pytest.fixture(scope="module")
def drained(cluster: Cluster, processes: Processes, spark_home: Path) -> Iterator[Drain]:
    """(b) and (c): `lifecycle executor` as PID 1 of its pod ran two tasks and was drained by the preStop command."""
    if not can_use_namespaces():
        pytest.skip("needs root, unshare and nsenter")
    executor_id = cluster.next_id()
    termination_log = cluster.workdir / f"termination-log-{executor_id}"
    termination_log.touch()
    try:
        drain = run_drain(processes, spark_home, cluster.driver, "lifecycle", executor_id,
                          cluster.workdir / f"executor-{executor_id}", timeout=TIMEOUT,
                          LIFECYCLE_TERMINATION_LOG=str(termination_log))
    finally:
        cluster.driver.cancel_unfinished()
    yield drain
    drain.pod.close()


# ---- (a) the driver -----------------------------------------------------------------------------------------


@needs_java
def test_lifecycle_driver_runs_a_pyspark_job_through_spark_submit(
    spark_home: Path, processes: Processes, tmp_path: Path
) -> None:
    """`lifecycle driver …` should run spark-submit in client mode: the PySpark job runs and its result is right."""
    program = write_driver_program(tmp_path)
    argv = driver_argv("local[2]", program, "oneshot")
    env = spark_env(spark_home, SPARK_DRIVER_BIND_ADDRESS=LOOPBACK, LIFECYCLE_LOG_FORMAT="json",
                              LIFECYCLE_TERMINATION_LOG="")
    driver = processes.start("driver-local", argv, env, tmp_path)
    out = driver.output
    out.wait_for("APP_ID local-", "out", timeout=TIMEOUT)
    (submit, *_) = descendants(driver.pid)  # spark-submit exec'd spark-class, which exec'd the JVM
    submit_argv = cmdline(submit)

    code = driver.process.wait(timeout=TIMEOUT)
    out.wait_closed(TIMEOUT)

    assert code == 0, out.tail()
    assert f"RESULT oneshot {EXPECTED_TOTAL} expected={EXPECTED_TOTAL}" in out.text("out")
    assert f"DEPLOY_MODE client MASTER local[2] BIND_ADDRESS {LOOPBACK}" in out.text("out")
    args = submit_argv[submit_argv.index("org.apache.spark.deploy.SparkSubmit") + 1 :]  # as the launcher orders them
    pairs = set(pairwise(args))
    assert {("--deploy-mode", "client"), ("--conf", f"spark.driver.bindAddress={LOOPBACK}"),
            ("--conf", f"spark.executorEnv.SPARK_DRIVER_POD_IP={LOOPBACK}"), ("--master", "local[2]")} <= pairs, args
    assert args[-2:] == [str(program), "oneshot"], args
    records = out.json_records()
    assert transitions(records) == [*START_UP, ("running", "terminated")], records
    (end,) = [r for r in records if r.get("event") == "terminated"]
    assert end["exit_code"] == 0 and "driver exited with code 0" in str(end["message"]), end


@needs_java
def test_the_shared_driver_is_a_client_mode_driver_of_the_standalone_master(cluster: Cluster) -> None:
    """The driver the executor tests use: Spark 4.3.0, an app id from the master, more than 10 java options."""
    driver = cluster.driver
    assert driver.spark_version == PYSPARK_VERSION
    assert driver.app_id.startswith("app-"), driver.app_id  # assigned by the standalone master
    options = driver.java_options()
    assert len(options) > 12, options  # more than 10: only a numeric order of SPARK_JAVA_OPT_<n> keeps them in order
    assert sum(option.startswith("--add-opens=") for option in options) >= 10, options
    assert options[-1] == f"-Dspark.driver.port={driver.port}"
    assert "SparkSubmit" in " ".join(cmdline(descendants(driver.started.pid)[0]))  # lifecycle's child


# ---- (b) a real executor as PID 1's child -----------------------------------------------------------------


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_lifecycle_executor_launches_a_real_executor_with_upstreams_argv(
    drained: Drain, spark_home: Path, cluster: Cluster
) -> None:
    """The executor JVM's real argv should be upstream's: options in numeric order, heap, classpath, arguments."""
    env, argv = drained.env, drained.argv
    options = cluster.driver.java_options()
    names = [name for name in env if name.startswith("SPARK_JAVA_OPT_")]
    assert names[0] == f"SPARK_JAVA_OPT_{len(options) - 1}"  # the pod spec's order was reversed on purpose
    assert [env[name] for name in sorted(names)] != options  # a lexicographic order (0, 1, 10, 11, …) is wrong

    assert argv == expected_executor_argv(spark_home, cluster.driver, env, drained.jvm_cwd)
    assert argv[1 : 1 + len(options)] == options
    classpath = argv[argv.index("-cp") + 1].split(":")
    assert classpath == [f"{spark_home}/conf", "", f"{spark_home}/jars/*", drained.jvm_cwd, ""]
    assert (spark_home / "jars" / "spark-kubernetes_2.13-4.3.0.jar").is_file()
    assert drained.jvm_cwd == str(cluster.workdir / f"executor-{drained.executor_id}")


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_executor_registers_with_the_driver_and_runs_tasks_under_lifecycle_as_pid1(drained: Drain) -> None:
    """lifecycle is PID 1 of the pod, the JVM its child (PID 2), registered as executor 1 and ran both tasks."""
    log = drained.pod.started.output.text("err")
    assert drained.jvm_parent_inner_pid == 1
    assert drained.jvm_inner_pid == 2
    assert "executor running as pid 2" in log
    assert REGISTERED in log
    assert f"Executor: Starting executor ID {drained.executor_id} on host {LOOPBACK}" in log
    assert "Executor: Running task 0.0 in stage" in log and "Executor: Running task 1.0 in stage" in log
    assert [task.index for task in drained.tasks] == [0, 1]
    assert drained.lifecycle_rss_kib is not None and drained.lifecycle_rss_kib < 40_000, drained.lifecycle_rss_kib


# ---- (c) drained by the preStop command -----------------------------------------------------------------------


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_prestop_command_drains_a_running_executor_through_lifecycle(drained: Drain, cluster: Cluster) -> None:
    """While two tasks run, the preStop command should drain the executor: tasks finish, the job succeeds, the
    JVM exits 0, lifecycle goes running -> decommissioning -> terminated, and the command returns exit 0 within
    50 ms of the JVM's exit."""
    assert drained.hook_code == 0, drained.hook.started.output.tail()
    assert_result(drained.result)
    assert drained.tasks[-1].at < drained.hook.started_at < drained.decommissioning_at < drained.released_at
    assert drained.blocked_line.at < drained.released_at  # the JVM waited for its 2 running tasks
    assert drained.jvm_exit_to_hook_return <= HOOK_AFTER_JVM, f"{drained.jvm_exit_to_hook_return * 1000:.1f} ms"
    assert drained.pod.exit_code(TIMEOUT) == 0

    records = drained.records()
    assert transitions(records) == DRAINED, records
    (requested,) = [r for r in records if r.get("event") == "decommission"]
    assert requested["signal"] == "SIGPWR" and "on the preStop command" in str(requested["message"]), requested
    (end,) = [r for r in records if r.get("event") == "terminated"]
    assert end["exit_code"] == 0 and "executor exited with code 0" in str(end["message"]), end
    log = drained.pod.started.output.text("err")
    assert "Executor: Finished task 0.0" in log and "Executor: Finished task 1.0" in log
    assert "Executor self-exiting due to : Finished decommissioning" in log

    hook = {r["event"]: r for r in drained.hook_records()}
    assert hook["drained"]["supervisor_child_code"] == 0, hook
    assert hook["drained"]["supervisor_deadline_passed"] is False, hook
    termination = (cluster.workdir / f"termination-log-{drained.executor_id}").read_text()
    assert "exit code: 0" in termination and "state: terminated" in termination, termination


# ---- (d) the fallback: lifecycle exec'd the JVM under tini; the command scans /proc ----------------------------


@needs_java
@needs_namespaces
@needs_tini
@pytest.mark.pid1
def test_the_prestop_command_drains_an_executor_under_tini(
    cluster: Cluster, processes: Processes, spark_home: Path, cancel_jobs: None
) -> None:
    """Upstream's layout (`tini -s --` the executor; lifecycle only builds the argv and execs it): the command
    finds the JVM by its argv, signals it through a pidfd and returns exit 0 within 50 ms of its exit.

    A pause process is PID 1 (shareProcessNamespace): with tini itself as PID 1 the kernel SIGKILLs the command
    the moment tini exits after the JVM (it cuts decom.sh short the same way), so its exit status is a race.
    """
    executor_id = cluster.next_id()
    drain = run_drain(processes, spark_home, cluster.driver, "tini", executor_id,
                      cluster.workdir / f"executor-{executor_id}", timeout=TIMEOUT)
    try:
        assert drain.hook_code == 0, drain.hook.started.output.tail()
        assert_result(drain.result)
        assert drain.blocked_line.at < drain.released_at
        assert drain.jvm_exit_to_hook_return <= HOOK_AFTER_JVM, f"{drain.jvm_exit_to_hook_return * 1000:.1f} ms"
        assert drain.jvm_parent_inner_pid == 2  # 1 pause, 2 tini, 3 the JVM that lifecycle exec'd into
        assert drain.argv == expected_executor_argv(spark_home, cluster.driver, drain.env, drain.jvm_cwd)
        drain.pod.started.output.wait_for("pause: reaped 2 exit 0", "err", timeout=TIMEOUT)  # tini passed on 0

        hook = drain.hook_records()
        assert transitions(hook, "lifecycle-decommission") == [("running", "decommissioning"),
                                                               ("decommissioning", "terminated")], hook
        events = {r["event"]: r for r in hook}
        assert events["attached"]["pid"] == 3, events
        assert events["decommission"]["signal"] == "SIGPWR", events
        assert "executor pid 3 exited" in str(events["drained"]["message"]), events
        records = drain.records()
        assert transitions(records) == START_UP[:2], records  # then exec: no supervisor
    finally:
        drain.pod.close()


# ---- (e) SIGTERM to PID 1 ---------------------------------------------------------------------------------------


@needs_java
@needs_namespaces
@pytest.mark.pid1
@pytest.mark.parametrize(("remap", "expected"), [("", 143), ("143:0", 0)], ids=["plain", "remapped"])
def test_sigterm_to_pid1_gives_the_jvms_exit_status(
    cluster: Cluster, processes: Processes, spark_home: Path, remap: str, expected: int
) -> None:
    """SIGTERM to lifecycle (PID 1) reaches the registered executor JVM, which exits 143; lifecycle exits with
    that status, or with the remapped one under LIFECYCLE_EXIT_REMAP=143:0."""
    executor_id = cluster.next_id()
    env = executor_env(spark_home, cluster.driver, executor_id, f"exec-{executor_id}",
                       LIFECYCLE_LOG_FORMAT="json", LIFECYCLE_EXIT_REMAP=remap,
                       LIFECYCLE_TERMINATION_LOG="")
    workdir = cluster.workdir / f"executor-{executor_id}"
    workdir.mkdir()
    pod = ExecutorPod(processes, "lifecycle", env, workdir, label=f"executor-{executor_id}")
    try:
        out = pod.started.output
        out.wait_for(REGISTERED, timeout=TIMEOUT)
        out.wait_for("running as pid 2", timeout=TIMEOUT)
        lifecycle = pod.lifecycle_pid
        jvm = pod.jvm_pid()
        assert parent_pid(jvm) == lifecycle and EXECUTOR_CLASS in cmdline(jvm)
        jvm_fd, lifecycle_fd = pod.pidfd(jvm), pod.pidfd(lifecycle)

        signal.pidfd_send_signal(lifecycle_fd, signal.SIGTERM)

        wait_exits({"jvm": jvm_fd, "lifecycle": lifecycle_fd}, TIMEOUT)
        assert pod.exit_code(TIMEOUT) == expected, out.tail()
        records = out.json_records()
        assert transitions(records) == [*START_UP, ("running", "terminated")], records
        (end,) = [r for r in records if r.get("event") == "terminated"]
        assert end["exit_code"] == expected, end
        assert "executor exited with code 143" in str(end["message"]), end
        if remap:
            assert "exit code 143 remapped to 0" in str(end["message"]), end
        assert "RECEIVED SIGNAL TERM" in out.text("err")  # the JVM's own handler saw the forwarded SIGTERM
    finally:
        pod.close()


def test_split_command_string_follows_spark() -> None:
    """The K8s scheduler's splitter (§4.2) as ported here: quotes, escapes and empty words."""
    split = split_command_string
    assert split("  -Da=1\t-Db='x y'  ") == ["-Da=1", "-Db=x y"]
    assert split('-Dc="q \\" r" \'\' ""') == ['-Dc=q " r', "", ""]
    assert split("") == []


# ---- two lifecycles in one mount namespace ---------------------------------------------------------------------

# Holds a mount namespace open for the processes that nsenter puts in it; ready, then waits for SIGTERM/SIGKILL.
HOLD = "import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); print('ready', flush=True); " \
       "signal.sigwait({signal.SIGTERM})"


@needs_java
@needs_namespaces
def test_the_prestop_command_drains_the_executor_not_the_driver_beside_it(
    cluster: Cluster, processes: Processes, spark_home: Path, tmp_path: Path
) -> None:
    """With `lifecycle driver` and `lifecycle executor` in one mount namespace (outside Kubernetes: a developer's
    machine, CI, the demo without root), the preStop command should decommission the executor, never the driver.

    Both run in a mount namespace of their own (`unshare --mount`), so the other tests' driver is not involved;
    the driver's lifecycle starts first, as it does in every Spark application.
    """
    unshare, nsenter = shutil.which("unshare", path=SYSTEM_PATH), shutil.which("nsenter", path=SYSTEM_PATH)
    assert unshare is not None and nsenter is not None
    env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
    hold = processes.start("mount-namespace", [unshare, "--mount", "--propagation", "private", sys.executable, "-I",
                                               "-c", HOLD], env)
    hold.output.wait_for("ready", "out", timeout=TIMEOUT)
    enter = [nsenter, "-t", str(hold.pid), "-m", "--"]  # no fork: the pid is the command's
    driver = start_driver(processes, spark_home, cluster.master, tmp_path, timeout=TIMEOUT, prefix=enter,
                          LIFECYCLE_LOG_FORMAT="json")
    try:
        (driver_jvm, *_) = descendants(driver.started.pid)
        driver.submit("beside-the-driver")
        environment = executor_env(spark_home, driver, "1", "exec-1", LIFECYCLE_LOG_FORMAT="json",
                                   LIFECYCLE_TERMINATION_LOG="")
        (tmp_path / "executor").mkdir()
        pod = ExecutorPod(processes, "plain", environment, tmp_path / "executor", "executor-plain", prefix=enter)
        pod.started.output.wait_for(REGISTERED, timeout=TIMEOUT)
        driver.coordinator.wait_tasks("beside-the-driver", 2, TIMEOUT)
        pod.started.output.wait_for("running as pid", timeout=TIMEOUT)
        jvm = pod.jvm_pid()

        hook = Hook(processes, pod)
        accepted = hook.started.output.wait_for('"supervisor_event": "accepted"', "err", timeout=TIMEOUT)
        signalled = json.loads(accepted.text)["supervisor_child_pid"]
        assert signalled == jvm, (
            f"the preStop command reached the driver's lifecycle, which sent SIGPWR to pid {signalled} (the driver "
            f"JVM is pid {driver_jvm}: {' '.join(cmdline(driver_jvm))[:120]}…), not to the executor (pid {jvm})"
        )
        pod.started.output.wait_for("Blocked from shutdown by 2 running tasks", timeout=TIMEOUT)
        driver.coordinator.release("beside-the-driver")
        assert hook.finish(TIMEOUT) == 0, hook.started.output.tail()
        assert_result(driver.result("beside-the-driver", TIMEOUT))
        assert pod.exit_code(TIMEOUT) == 0
        assert driver.stop(TIMEOUT) == 0
    finally:
        driver.coordinator.close()
        for started in (driver.started, hold):
            processes.kill(started)
