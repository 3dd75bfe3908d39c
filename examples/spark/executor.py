"""The executor: the K8s scheduler's environment for it, its container as a pod made of namespaces (or a plain
child), and the preStop command as the kubelet runs it there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from examples.pods import EXECUTOR_CLASS, pod_command
from examples.proc import cmdline, descendants, namespace_pid
from examples.spark.driver import Driver
from examples.spark.install import LOOPBACK, SYSTEM_PATH, lifecycle_bin, spark_env
from examples.spark.output import Processes


def executor_env(spark_home: Path, driver: Driver, executor_id: str, pod_name: str, memory: str = "512m",
                 cores: int = 2, **more: str) -> dict[str, str]:
    """The executor container's environment as Spark's K8s scheduler sets it (upstream-behaviour §4.1, §4.2).

    SPARK_JAVA_OPT_<n> are inserted highest index first (a pod spec's order is arbitrary: Scala's toMap), so
    only a numeric sort of the names gives the options back in order.
    """
    env = spark_env(spark_home)
    del env["PYSPARK_DRIVER_PYTHON"]
    env.update({
        "SPARK_DRIVER_URL": driver.url,
        "SPARK_EXECUTOR_CORES": str(cores),
        "SPARK_EXECUTOR_MEMORY": memory,
        "SPARK_APPLICATION_ID": driver.app_id,
        "SPARK_EXECUTOR_ID": executor_id,
        "SPARK_RESOURCE_PROFILE_ID": "0",
        "SPARK_EXECUTOR_POD_IP": LOOPBACK,
        "SPARK_EXECUTOR_POD_NAME": pod_name,
    })
    options = driver.java_options()
    for index in reversed(range(len(options))):
        env[f"SPARK_JAVA_OPT_{index}"] = options[index]
    env.update(more)
    return env


def can_use_namespaces() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool, path=SYSTEM_PATH) for tool in ("unshare", "nsenter"))


class ExecutorPod:
    """An executor container: `lifecycle executor` as PID 1 of new PID and mount namespaces (`lifecycle`),
    or under a pause process and `tini -s` with lifecycle exec'ing the JVM (`tini`: upstream's layout, with
    shareProcessNamespace), or, without root, `lifecycle executor` as a plain child (`plain`; `prefix`, an
    nsenter that does not fork, puts it and the preStop command in another mount namespace).
    The network namespace is shared: loopback reaches the driver."""

    def __init__(self, processes: Processes, layout: str, env: Mapping[str, str], cwd: Path,
                 label: str = "executor", prefix: Sequence[str] = ()) -> None:
        assert not prefix or layout == "plain", "a prefix only goes before a plain lifecycle"
        self.layout = layout
        self.prefix = list(prefix)
        entry = [lifecycle_bin(), "executor"]
        if layout == "tini":
            tini = shutil.which("tini", path=SYSTEM_PATH)
            assert tini is not None, "tini is not installed"
            entry = [tini, "-s", "--", *entry]
            env = {**env, "LIFECYCLE_RUN_MODE": "exec"}
        elif layout not in ("lifecycle", "plain"):
            raise ValueError(layout)
        if layout != "plain":
            entry, env = pod_command(entry, env, shared=layout == "tini")
        self.processes = processes
        self.started = processes.start(label, [*prefix, *entry], env, cwd)
        self.pidfds: list[int] = []

    def host_pids(self) -> dict[int, int]:
        """{PID inside the pod: PID on the host} for every process of the pod."""
        if self.layout == "plain":
            pids = [self.started.pid, *descendants(self.started.pid)]
            return {pid: pid for pid in pids}
        found = {}
        for pid in descendants(self.started.pid):
            inner = namespace_pid(pid)
            if inner is not None:
                found[inner] = pid
        return found

    @property
    def init_pid(self) -> int:
        """Host PID of the pod's PID 1 (what `nsenter -t` joins), or of lifecycle in the plain layout."""
        if self.layout == "plain":
            return self.started.pid
        return self.host_pids()[1]

    @property
    def lifecycle_pid(self) -> int:
        """Host PID of the supervising lifecycle (layouts `lifecycle` and `plain`)."""
        assert self.layout != "tini"
        return self.init_pid

    def jvm_pid(self) -> int:
        """Host PID of the executor JVM: the one process with an argv element equal to the main class."""
        found = [pid for pid in self.host_pids().values() if EXECUTOR_CLASS in cmdline(pid)[1:]
                 and os.path.basename(cmdline(pid)[0]) == "java"]
        assert len(found) == 1, f"expected one executor JVM, found {found}"
        return found[0]

    def pidfd(self, host_pid: int) -> int:
        fd = os.pidfd_open(host_pid)
        self.pidfds.append(fd)
        return fd

    def exit_code(self, timeout: float = 60.0) -> int:
        """The pod's exit status: PID 1's (unshare passes it on) or lifecycle's (plain)."""
        code = self.started.process.wait(timeout=timeout)
        self.started.output.wait_closed(timeout)
        return code

    def close(self) -> None:
        for fd in self.pidfds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pidfds.clear()


class Hook:
    """The preStop command as the kubelet runs it: no arguments, inside the container's PID and mount
    namespaces (`nsenter -t <PID 1> -p -m lifecycle-decommission`); plainly in the `plain` layout."""

    def __init__(self, processes: Processes, pod: ExecutorPod, **env: str) -> None:
        command = [*pod.prefix, lifecycle_bin("lifecycle-decommission")]
        if pod.layout != "plain":
            nsenter = shutil.which("nsenter", path=SYSTEM_PATH)
            assert nsenter is not None
            command = [nsenter, "-t", str(pod.init_pid), "-p", "-m", *command]
        environment = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "LIFECYCLE_LOG_FORMAT": "json", **env}
        self.started = processes.start("hook", command, environment)
        self.pidfd = os.pidfd_open(self.started.pid)

    @property
    def started_at(self) -> float:
        return self.started.started_at

    def finish(self, timeout: float = 60.0) -> int:
        code = self.started.process.wait(timeout=timeout)
        self.started.output.wait_closed(timeout)
        os.close(self.pidfd)
        return code
