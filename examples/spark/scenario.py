"""One executor's whole life with real Spark: started as the K8s scheduler starts it, registered with the driver,
two tasks running, drained by the preStop command while they run, exited; with the timings of each step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from examples.proc import cmdline, namespace_pid, parent_pid, vm_rss_kib, wait_exits
from examples.spark.coordinator import Task
from examples.spark.driver import Driver
from examples.spark.executor import ExecutorPod, Hook, executor_env
from examples.spark.output import Line, Processes

REGISTERED = "CoarseGrainedExecutorBackend: Successfully registered with driver"


def transitions(records: Sequence[Mapping[str, object]], logger: str = "lifecycle") -> list[tuple[str, str]]:
    """(source, dest) of every state change in a JSON log (internal transitions left out)."""
    return [(str(r["source"]), str(r["dest"])) for r in records
            if r.get("event") == "transition" and r.get("logger") == logger and r.get("source") != r.get("dest")]


@dataclass
class Drain:
    """What one executor went through: started, registered, ran two tasks, drained by the preStop command."""

    layout: str
    executor_id: str
    env: dict[str, str]
    pod: ExecutorPod
    argv: list[str]  # the executor JVM's real argv (/proc/<pid>/cmdline)
    jvm_cwd: str
    jvm_host_pid: int
    jvm_inner_pid: int | None  # the JVM's PID inside the pod
    jvm_parent_inner_pid: int | None  # the JVM's parent, as PID inside the pod
    tasks: list[Task]
    lifecycle_rss_kib: int | None  # VmRSS of the supervising lifecycle while the executor ran
    hook: Hook
    hook_code: int
    result: dict[str, object]
    started_at: float
    registered_at: float
    decommissioning_at: float  # the JVM logged `Decommission executor`
    blocked_line: Line  # the JVM's `Blocked from shutdown by 2 running tasks`
    released_at: float
    jvm_exited_at: float
    hook_exited_at: float

    @property
    def start_to_registered(self) -> float:
        return self.registered_at - self.started_at

    @property
    def request_to_jvm_exit(self) -> float:
        return self.jvm_exited_at - self.hook.started_at

    @property
    def jvm_exit_to_hook_return(self) -> float:
        return self.hook_exited_at - self.jvm_exited_at

    def records(self) -> list[dict[str, object]]:
        """lifecycle's JSON log lines from the pod's stderr."""
        return self.pod.started.output.json_records()

    def hook_records(self) -> list[dict[str, object]]:
        return self.hook.started.output.json_records()


def run_drain(processes: Processes, spark_home: Path, driver: Driver, layout: str, executor_id: str, cwd: Path,
              say: Callable[[str], None] | None = None, timeout: float = 90.0, **env: str) -> Drain:
    """Start an executor in a pod of `layout`, let it run a two-task job, and while both tasks run, drain it
    with the preStop command; release the tasks once the JVM reports it is blocked from shutdown by them."""

    def note(text: str) -> None:
        if say is not None:
            say(text)

    job = f"job-{executor_id}"
    driver.submit(job)
    environment = {**executor_env(spark_home, driver, executor_id, f"exec-{executor_id}"),
                   "LIFECYCLE_LOG_FORMAT": "json", **env}
    cwd.mkdir(parents=True, exist_ok=True)
    pod = ExecutorPod(processes, layout, environment, cwd, label=f"executor-{executor_id}")
    out = pod.started.output
    registered = out.wait_for(REGISTERED, timeout=timeout)
    note(f"executor {executor_id} registered with the driver")
    tasks = driver.coordinator.wait_tasks(job, 2, timeout)
    note(f"2 tasks of {job} running on executor {executor_id}")
    jvm = pod.jvm_pid()
    argv, jvm_cwd = cmdline(jvm), os.readlink(f"/proc/{jvm}/cwd")
    parent, inner = parent_pid(jvm), namespace_pid(jvm)
    parent_inner = parent if layout == "plain" else namespace_pid(parent)
    jvm_fd = pod.pidfd(jvm)
    rss = None
    if layout != "tini":
        out.wait_for("running as pid", timeout=timeout)  # lifecycle is in `running`: its control socket listens
        rss = vm_rss_kib(pod.lifecycle_pid)
    mark = out.count()
    hook = Hook(processes, pod)
    note("preStop command started: lifecycle-decommission")
    decommissioning = out.wait_for("CoarseGrainedExecutorBackend: Decommission executor", timeout=timeout,
                                   start=mark)
    blocked = out.wait_for("Blocked from shutdown by 2 running tasks", timeout=timeout, start=mark)
    note("the executor is decommissioning, blocked from shutdown by its 2 running tasks: releasing them")
    released = time.monotonic()
    driver.coordinator.release(job)
    exits = wait_exits({"jvm": jvm_fd, "hook": hook.pidfd}, timeout)
    hook_code = hook.finish(timeout)
    result = driver.result(job, timeout)
    return Drain(layout, executor_id, environment, pod, argv, jvm_cwd, jvm, inner, parent_inner, tasks, rss, hook,
                 hook_code, result, pod.started.started_at, registered.at, decommissioning.at, blocked, released,
                 exits["jvm"], exits["hook"])
