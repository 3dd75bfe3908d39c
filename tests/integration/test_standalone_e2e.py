"""A standalone Spark cluster run by lifecycle (pyspark 4.3.0's distribution), end to end, without Kubernetes.

`lifecycle master` starts the Master; `lifecycle worker spark://…` starts each Worker as PID 1 of its own PID
and mount namespaces (`unshare --pid --fork --mount-proc`, as a container). A client-mode application
(`lifecycle driver`) with decommission and block migration on runs two tasks on worker A's executor; a second
worker, B, joins and gets an executor too. The preStop command drains A while both tasks run: the tasks finish,
the job succeeds, A's executor exits, A's lifecycle stops the Worker and exits 0, the hook exits 0, the master
shows A decommissioned, and the application goes on on B. Then the kubelet's SIGTERM stops B; a worker whose
executor cannot finish (its tasks never end) reaches its deadline and is escalated; the master refuses a
decommission and stops on SIGTERM.

Nothing sleeps: every wait blocks on a log line, a socket or a pidfd, bounded. Every process is killed by pidfd
at the end (Processes.stop).
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from examples.proc import cmdline, descendants, parent_pid, wait_exits
from examples.spark.driver import Driver, start_driver
from examples.spark.executor import can_use_namespaces
from examples.spark.install import SYSTEM_PATH, ensure_pyspark
from examples.spark.output import Processes
from examples.spark.scenario import transitions
from examples.spark.standalone import (
    DECOMMISSION_CONF,
    MASTER_CLASS,
    WORKER_CLASS,
    StandaloneMaster,
    WorkerHook,
    WorkerPod,
    start_lifecycle_master,
    worker_env,
)
from tests.helpers.spark import START_UP, assert_result

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

JAVA = shutil.which("java", path=SYSTEM_PATH)
needs_java = pytest.mark.skipif(JAVA is None, reason="needs java (OpenJDK 17+)")
needs_namespaces = pytest.mark.skipif(not can_use_namespaces(), reason="needs root, unshare and nsenter")
TIMEOUT = 120.0  # seconds for any one wait (six JVMs on a loaded 2-core machine)
DRAINED = [*START_UP, ("running", "decommissioning"), ("decommissioning", "stopping"), ("stopping", "terminated")]


@dataclass
class Scaledown:
    """What worker A went through: two tasks on its executor, drained by the preStop command, stopped."""

    master: StandaloneMaster
    driver: Driver
    worker_a: WorkerPod
    worker_b: WorkerPod
    worker_a_id: str
    worker_b_id: str
    executor_a: int
    task_pids: list[int]
    tasks_on_a: bool  # A had the application's only executor when both tasks started
    attempts: int  # task connections of the job: 2 when no task was re-run
    state_while_draining: str
    hook_code: int
    worker_code: int
    exits: dict[str, float]
    result: dict[str, object]
    hook_started_at: float
    after: dict[str, object]  # a job on the application after the drain (on worker B)


@pytest.fixture(scope="module")
def spark_home() -> Path:
    if JAVA is None:
        pytest.skip("needs java")
    return ensure_pyspark()


@pytest.fixture(scope="module")
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("standalone")


@pytest.fixture(scope="module")
def master(spark_home: Path, processes: Processes, workdir: Path) -> StandaloneMaster:
    """`lifecycle master` on 127.0.0.1, ALIVE."""
    return start_lifecycle_master(processes, spark_home, workdir / "master", timeout=TIMEOUT,
                                  LIFECYCLE_LOG_FORMAT="json", SPARK_DAEMON_MEMORY="384m",
                                  SPARK_DAEMON_JAVA_OPTS="-Dlifecycle.test=daemon-opts")  # fmt: skip


@pytest.fixture(scope="module")
def driver(spark_home: Path, processes: Processes, workdir: Path, master: StandaloneMaster) -> Iterator[Driver]:
    """A client-mode application with decommission and storage decommission on (2 cores an executor)."""
    (workdir / "driver").mkdir(exist_ok=True)
    started = start_driver(processes, spark_home, master, workdir / "driver", timeout=TIMEOUT,
                           conf=DECOMMISSION_CONF, LIFECYCLE_LOG_FORMAT="json")  # fmt: skip
    yield started
    started.cancel_unfinished()
    started.coordinator.close()


@pytest.fixture(scope="module")
def scaledown(spark_home: Path, processes: Processes, workdir: Path, master: StandaloneMaster,
              driver: Driver) -> Scaledown:  # fmt: skip
    """Worker A (PID 1 of its pod) runs both tasks of a job; worker B joins; the preStop command drains A."""
    if not can_use_namespaces():
        pytest.skip("needs root, unshare and nsenter")
    worker_a = WorkerPod(processes, master, worker_env(spark_home, workdir / "a"), workdir / "a", label="worker-a")
    worker_a_id = worker_a.wait_registered(master, TIMEOUT)
    driver.submit("job-a")
    tasks = driver.coordinator.wait_tasks("job-a", 2, TIMEOUT)  # both on A's executor: the only one so far
    (executor_a,) = worker_a.executors()
    task_pids = [task.pid for task in tasks]
    tasks_on_a = len(worker_a.executors()) == 1 and driver.coordinator.attempts["job-a"] == 2

    worker_b = WorkerPod(processes, master, worker_env(spark_home, workdir / "b"), workdir / "b", label="worker-b")
    worker_b_id = worker_b.wait_registered(master, TIMEOUT)
    worker_b.started.output.wait_for("Asked to launch executor", timeout=TIMEOUT)  # the application grows onto B

    fds = {"executor": os.pidfd_open(executor_a), "worker-jvm": os.pidfd_open(worker_a.worker_jvm())}
    mark = worker_a.started.output.count()
    hook = WorkerHook(processes, worker_a)
    worker_a.started.output.wait_for(f"Decommission worker {worker_a_id}", timeout=TIMEOUT, start=mark)
    master.started.output.wait_for(f"Decommissioning worker {worker_a_id}", timeout=TIMEOUT)
    state = master.worker_states()[worker_a_id]  # the tasks still run: the executor cannot have left
    driver.coordinator.release("job-a")
    fds["hook"] = hook.pidfd
    exits = wait_exits(fds, TIMEOUT)
    for name in ("executor", "worker-jvm"):
        os.close(fds[name])
    hook_code = hook.finish(TIMEOUT)
    worker_code = worker_a.exit_code(TIMEOUT)
    result = driver.result("job-a", TIMEOUT)
    attempts = driver.coordinator.attempts["job-a"]

    driver.submit("job-after")  # the application goes on, on B
    driver.coordinator.wait_tasks("job-after", 2, TIMEOUT)
    driver.coordinator.release("job-after")
    after = driver.result("job-after", TIMEOUT)
    return Scaledown(master, driver, worker_a, worker_b, worker_a_id, worker_b_id, executor_a, task_pids,
                     tasks_on_a, attempts, state, hook_code, worker_code, exits, result,
                     hook.started.started_at, after)  # fmt: skip


# ---- the modes ----------------------------------------------------------------------------------------------


@needs_java
def test_lifecycle_master_runs_the_master_jvm_in_the_foreground_through_spark_class(
    master: StandaloneMaster,
) -> None:
    """`lifecycle master` should run the Master JVM as its own child (spark-class execs it), logging on stderr,
    with spark-class's daemon options: SPARK_DAEMON_MEMORY as -Xmx, SPARK_DAEMON_JAVA_OPTS, SPARK_MASTER_OPTS."""
    (jvm,) = [pid for pid in descendants(master.started.pid) if MASTER_CLASS in cmdline(pid)]
    argv = cmdline(jvm)
    assert os.path.basename(argv[0]) == "java" and parent_pid(jvm) == master.started.pid
    assert {"-Xmx384m", "-Dlifecycle.test=daemon-opts", "-Dspark.master.rest.enabled=false"} <= set(argv), argv
    assert master.started.output.find("Starting Spark master at spark://127.0.0.1", "err") is not None
    assert master.status()["status"] == "ALIVE"


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_lifecycle_worker_runs_the_worker_jvm_as_pid1s_child(scaledown: Scaledown) -> None:
    """`lifecycle worker URL` as PID 1 of its pod: the Worker JVM was its child (PID 2), registered, logging on
    the container's stderr; the executor it launched was the Worker's own child."""
    records = scaledown.worker_a.records()
    running = next(r for r in records if r.get("event") == "running")
    assert running["child_pid"] == 2, running
    assert scaledown.worker_a.started.output.find("Successfully registered with master", "err") is not None
    assert scaledown.worker_a_id.startswith("worker-")


# ---- item 2 and 4: the drain -------------------------------------------------------------------------------


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_a_drained_workers_tasks_finish_and_the_job_succeeds(scaledown: Scaledown) -> None:
    """Both tasks ran on worker A's executor, finished there after the decommission request (none was re-run
    elsewhere), and the job succeeded."""
    assert scaledown.tasks_on_a
    assert scaledown.attempts == 2
    assert scaledown.exits["executor"] > scaledown.hook_started_at
    assert_result(scaledown.result)


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_preStop_command_drains_a_worker_and_everything_exits_cleanly(scaledown: Scaledown) -> None:
    """The executor exits, then the Worker JVM, then lifecycle with 0 (the Worker's 143 after a completed drain is
    a success); the preStop command exits 0."""
    assert scaledown.hook_code == 0, scaledown.worker_a.started.output.tail()
    assert scaledown.worker_code == 0, scaledown.worker_a.started.output.tail()
    assert scaledown.exits["executor"] <= scaledown.exits["worker-jvm"]
    records = scaledown.worker_a.records()
    (end,) = [r for r in records if r.get("event") == "terminated"]
    assert end["exit_code"] == 0 and "worker drained: 1 executor(s) exited" in str(end["message"]), end
    assert "exited with code 143" in str(end["message"]), end


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_drain_is_visible_in_the_transition_log(scaledown: Scaledown) -> None:
    """The JSON log shows decommissioning, each executor's exit (its pid, how many are left, when), stopping."""
    records = scaledown.worker_a.records()
    assert transitions(records) == DRAINED, records
    exits = [r for r in records if r.get("event") == "transition" and r.get("trigger") == "executor_exited"]
    assert len(exits) == 1, records
    assert exits[0]["executors_left"] == 0 and float(str(exits[0]["elapsed_s"])) > 0, exits
    (drained,) = [r for r in records if r.get("trigger") == "executors_drained"]
    assert drained["executors"] == 1, drained
    (drain,) = [r for r in records if r.get("event") == "drain"]
    assert drain["executors"] == [exits[0]["executor_pid"]], drain


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_master_shows_the_drained_worker_decommissioned_then_dead(scaledown: Scaledown) -> None:
    """The master's /json/ shows worker A DECOMMISSIONED while it drains, then DEAD once it is stopped."""
    assert scaledown.state_while_draining == "DECOMMISSIONED"
    assert scaledown.master.worker_states()[scaledown.worker_a_id] in ("DECOMMISSIONED", "DEAD")
    assert scaledown.master.worker_states()[scaledown.worker_b_id] == "ALIVE"


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_application_goes_on_on_the_other_worker(scaledown: Scaledown) -> None:
    """After the drain, a new job of the same application runs on worker B and succeeds."""
    assert_result(scaledown.after)
    assert scaledown.worker_b.executors(), "worker B has no executor"


# ---- the kubelet's stop, the deadline, the master ------------------------------------------------------------


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_kubelets_sigterm_stops_a_worker_and_its_executors(scaledown: Scaledown) -> None:
    """SIGTERM to PID 1 of worker B's pod (the kubelet's stop, no preStop) is forwarded to the Worker, which stops
    its executor; lifecycle exits with the Worker's 143 and nothing of the pod is left."""
    pod = scaledown.worker_b
    lifecycle = pod.init_pid
    assert pod.executors()
    os.kill(lifecycle, signal.SIGTERM)
    code = pod.exit_code(TIMEOUT)
    assert code == 143, pod.started.output.tail()
    records = pod.records()
    assert transitions(records) == [*START_UP, ("running", "terminated")], records
    assert pod.started.output.find("RECEIVED SIGNAL TERM", "err") is not None


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_a_worker_whose_executor_cannot_drain_reaches_its_deadline_and_is_escalated(
    scaledown: Scaledown, spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """Worker C's executor runs tasks that never end: after LIFECYCLE_DECOMMISSION_TIMEOUT the Worker gets SIGTERM
    (its shutdown kills the executor), lifecycle exits 143 and the preStop command 5 (the deadline)."""
    driver, master = scaledown.driver, scaledown.master
    env = worker_env(spark_home, workdir / "c", LIFECYCLE_DECOMMISSION_TIMEOUT="4s", LIFECYCLE_KILL_GRACE="20s")
    pod = WorkerPod(processes, master, env, workdir / "c", label="worker-c")
    pod.wait_registered(master, TIMEOUT)
    driver.submit("job-stuck")
    driver.coordinator.wait_tasks("job-stuck", 2, TIMEOUT)  # on C: B has gone
    (executor,) = pod.executors()
    hook = WorkerHook(processes, pod)
    code = hook.finish(TIMEOUT)
    worker_code = pod.exit_code(TIMEOUT)
    driver.cancel_unfinished()

    assert code == 5, hook.started.output.tail()
    assert worker_code == 143, pod.started.output.tail()
    records = pod.records()
    assert transitions(records) == [*START_UP, ("running", "decommissioning"), ("decommissioning", "terminated")]
    assert any(r.get("event") == "deadline" for r in records), records
    assert not os.path.exists(f"/proc/{executor}"), "the executor outlived its pod"


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_a_master_declines_a_decommission_and_stops_on_the_kubelets_sigterm(
    spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """`lifecycle master` as PID 1 of its pod: the preStop command is declined (exit 7, nothing signalled, the
    master stays ALIVE); SIGTERM to PID 1 stops the Master JVM and lifecycle exits 143."""
    from examples.pods import pod_command
    from examples.spark.driver import free_port
    from examples.spark.install import lifecycle_bin
    from examples.spark.standalone import MASTER_ALIVE, master_env

    port, ui_port = free_port(), free_port()
    entry, env = pod_command([lifecycle_bin(), "master"], master_env(spark_home, port, ui_port,
                                                                        LIFECYCLE_LOG_FORMAT="json"))
    (workdir / "m2").mkdir()
    started = processes.start("master-pod", entry, env, workdir / "m2")
    started.output.wait_for(MASTER_ALIVE, timeout=TIMEOUT)
    own = StandaloneMaster(f"spark://127.0.0.1:{port}", started, ui_port)
    pod = WorkerPod.__new__(WorkerPod)  # the pod helpers only need the layout and the started process
    pod.layout, pod.started = "pod", started
    hook = WorkerHook(processes, pod)
    assert hook.finish(TIMEOUT) == 7, hook.started.output.tail()
    os.kill(pod.init_pid, signal.SIGPWR)  # the trigger signal: declined too, never forwarded
    started.output.wait_for("decommission request (SIGPWR) declined", timeout=TIMEOUT)
    assert own.status()["status"] == "ALIVE"
    jvm = pod.jvms(MASTER_CLASS)
    assert len(jvm) == 1 and not pod.jvms(WORKER_CLASS)
    os.kill(pod.init_pid, signal.SIGTERM)
    code = started.process.wait(timeout=TIMEOUT)
    started.output.wait_closed(TIMEOUT)
    assert code == 143, started.output.tail()
    records = started.output.json_records()
    assert transitions(records) == [*START_UP, ("running", "terminated")], records
    assert any(r.get("event") == "decommission" and "declined" in str(r.get("message")) for r in records)


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_the_trigger_signal_drains_an_idle_worker_and_lifecycle_exits_0(
    master: StandaloneMaster, spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """SIGPWR to lifecycle (LIFECYCLE_DECOMMISSION_TRIGGER) in a worker with no executor: the drain finds none,
    the Worker is stopped at once and lifecycle exits 0, all visible in the transition log; the master no longer
    counts it as ALIVE."""
    pod = WorkerPod(processes, master, worker_env(spark_home, workdir / "idle"), workdir / "idle", label="idle")
    worker_id = pod.wait_registered(master, TIMEOUT)
    os.kill(pod.init_pid, signal.SIGPWR)
    code = pod.exit_code(TIMEOUT)
    assert code == 0, pod.started.output.tail()
    records = pod.records()
    assert transitions(records) == DRAINED, records
    (drain,) = [r for r in records if r.get("event") == "drain"]
    assert drain["executors"] == [], drain
    # stopped at once: the Worker may not have told the master before its SIGTERM (then the master shows DEAD)
    assert master.worker_states()[worker_id] in ("DECOMMISSIONED", "DEAD")


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_a_drained_workers_post_exit_scripts_see_the_decommission_and_exit_0(
    master: StandaloneMaster, spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """Issue #15 with #16: a worker with post-exit scripts goes stopping -> post-exit -> terminated after its drain,
    and the script sees how it ended: decommissioned, lifecycle's exit code 0, mode worker."""
    scripts, seen = workdir / "post-exit.d", workdir / "post-exit-seen"
    scripts.mkdir()
    (scripts / "10-record.sh").write_text(
        f'#!/bin/sh\necho "$LIFECYCLE_EXIT_REASON $LIFECYCLE_EXIT_CODE $LIFECYCLE_MODE" > {seen}\n'
    )
    (scripts / "10-record.sh").chmod(0o755)
    env = {**worker_env(spark_home, workdir / "scripted"), "LIFECYCLE_POST_EXIT_DIR": str(scripts)}
    pod = WorkerPod(processes, master, env, workdir / "scripted", label="scripted")
    pod.wait_registered(master, TIMEOUT)
    os.kill(pod.init_pid, signal.SIGPWR)
    assert pod.exit_code(TIMEOUT) == 0, pod.started.output.tail()
    expected = [*DRAINED[:-1], ("stopping", "post-exit"), ("post-exit", "terminated")]
    assert transitions(pod.records()) == expected, pod.records()
    assert seen.read_text().split() == ["decommissioned", "0", "worker"]


@needs_java
@needs_namespaces
@pytest.mark.pid1
def test_a_worker_without_decommission_gets_sigterm_with_a_warning(
    master: StandaloneMaster, spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """A Worker started without spark.decommission.enabled has no SIGPWR handler: the preStop command's request
    sends it SIGTERM instead, with a warning (SIGPWR would kill it at once), and it stops with 143."""
    env = worker_env(spark_home, workdir / "plain", SPARK_WORKER_OPTS="")
    pod = WorkerPod(processes, master, env, workdir / "plain", label="no-decommission")
    pod.wait_registered(master, TIMEOUT)
    hook = WorkerHook(processes, pod)
    assert hook.finish(TIMEOUT) == 0, hook.started.output.tail()
    assert pod.exit_code(TIMEOUT) == 143, pod.started.output.tail()
    records = pod.records()
    warning = next(r for r in records if r.get("event") == "decommission" and r.get("level") == "warning")
    assert "does not handle SIGPWR: sending SIGTERM" in str(warning["message"]), warning
    assert pod.started.output.find("RECEIVED SIGNAL TERM", "err") is not None


@needs_java
def test_conf_spark_env_sh_still_overrides_the_start_script_defaults(
    spark_home: Path, processes: Processes, workdir: Path
) -> None:
    """SPARK_MASTER_WEBUI_PORT unset: lifecycle puts start-master.sh's default (8080) in the environment, and a
    conf/spark-env.sh that sets it, sourced by spark-class afterwards, still wins, as it does for the script."""
    from examples.spark.driver import free_port
    from examples.spark.install import lifecycle_bin
    from examples.spark.standalone import MASTER_ALIVE, master_env

    conf = workdir / "conf-env"
    conf.mkdir()
    port, ui_port = free_port(), free_port()
    (conf / "spark-env.sh").write_text(f"SPARK_MASTER_WEBUI_PORT={ui_port}\n")
    env = master_env(spark_home, port, ui_port, SPARK_CONF_DIR=str(conf))
    del env["SPARK_MASTER_WEBUI_PORT"]
    started = processes.start("master-conf", [lifecycle_bin(), "master"], env, conf)
    started.output.wait_for(MASTER_ALIVE, timeout=TIMEOUT)
    assert StandaloneMaster(f"spark://127.0.0.1:{port}", started, ui_port).status()["status"] == "ALIVE"
    processes.kill(started)
