"""A standalone Spark cluster whose daemons are started by lifecycle: `lifecycle master` and `lifecycle worker
MASTER_URL`, each worker as PID 1 of its own PID and mount namespaces (a pod's container, as in
examples/spark/executor.py), or as a plain child; the master's JSON status; the preStop command on a worker.

Also the operator's way (apache/spark-kubernetes-operator, SparkClusterResourceSpec.java) restated for the
benchmark: the daemon started by `spark-daemon.sh start` (what start-master.sh and start-worker.sh call; the
pyspark distribution ships spark-daemon.sh but not the two start scripts) and then polled once a second.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from examples.pods import pod_command
from examples.proc import cmdline, descendants, namespace_pid
from examples.spark.driver import Master, free_port
from examples.spark.install import LOOPBACK, SYSTEM_PATH, lifecycle_bin, spark_env
from examples.spark.output import Processes, Started

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"  # what a standalone Worker launches
MASTER_ALIVE = "New state: ALIVE"
REGISTERED = "Successfully registered with master"
# The application properties that make a worker's drain keep its work: decommission on (the executors get it
# from the driver), blocks migrated, and a migration round every 2 s instead of 30 s (an executor leaves only
# after a round that started after its last task: ~5 s instead of ~61 s).
DECOMMISSION_CONF = {
    "spark.decommission.enabled": "true",
    "spark.storage.decommission.enabled": "true",
    "spark.storage.decommission.rddBlocks.enabled": "true",
    "spark.storage.decommission.shuffleBlocks.enabled": "true",
    "spark.storage.decommission.replicationReattemptInterval": "2s",
    "spark.executor.memory": "512m",
    "spark.executor.cores": "2",
}


@dataclass
class StandaloneMaster(Master):
    """A master started by `lifecycle master` (or `spark-daemon.sh`, for the benchmark's comparison)."""

    ui_port: int = 0

    def status(self) -> dict[str, object]:
        """The master's JSON view (`/json/`: the trailing slash matters)."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json/", timeout=10) as response:
            data: dict[str, object] = json.loads(response.read())
            return data

    def worker_states(self) -> dict[str, str]:
        """{worker id: state} from the JSON view (ALIVE, DECOMMISSIONED, DEAD …)."""
        workers = self.status().get("workers", [])
        assert isinstance(workers, list)
        return {str(w["id"]): str(w["state"]) for w in workers}


def master_env(spark_home: Path, port: int, ui_port: int, **more: str) -> dict[str, str]:
    """The master container's environment: SPARK_MASTER_* as start-master.sh reads them, loopback only."""
    return spark_env(spark_home, SPARK_MASTER_HOST=LOOPBACK, SPARK_MASTER_PORT=str(port),
                     SPARK_MASTER_WEBUI_PORT=str(ui_port), SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
                     LIFECYCLE_TERMINATION_LOG="", **more)  # fmt: skip


def start_lifecycle_master(processes: Processes, spark_home: Path, cwd: Path, timeout: float = 90.0,
                           **more: str) -> StandaloneMaster:
    """`lifecycle master` on 127.0.0.1 (free ports, REST server off); returns once the master is ALIVE."""
    port, ui_port = free_port(), free_port()
    env = master_env(spark_home, port, ui_port, **more)
    cwd.mkdir(parents=True, exist_ok=True)
    started = processes.start("master", [lifecycle_bin(), "master"], env, cwd)
    started.output.wait_for(MASTER_ALIVE, timeout=timeout)
    return StandaloneMaster(f"spark://{LOOPBACK}:{port}", started, ui_port)


def worker_env(spark_home: Path, workdir: Path, cores: int = 2, memory: str = "1g",
               **more: str) -> dict[str, str]:
    """A worker container's environment: SPARK_WORKER_* as start-worker.sh and the Worker read them, decommission
    on (the Worker handles SIGPWR only with spark.decommission.enabled=true), lifecycle's log as JSON."""
    env = spark_env(spark_home, SPARK_WORKER_WEBUI_PORT=str(free_port()), SPARK_WORKER_CORES=str(cores),
                    SPARK_WORKER_MEMORY=memory, SPARK_WORKER_DIR=str(workdir / "work"),
                    SPARK_WORKER_OPTS="-Dspark.decommission.enabled=true", LIFECYCLE_LOG_FORMAT="json",
                    LIFECYCLE_TERMINATION_LOG="")  # fmt: skip
    del env["PYSPARK_DRIVER_PYTHON"]
    env.update(more)
    return env


class WorkerPod:
    """`lifecycle worker MASTER_URL`, as PID 1 of new PID and mount namespaces (`pod`: unshare --pid --fork
    --mount-proc, what the kubelet's container gives it), or as a plain child (`plain`)."""

    def __init__(self, processes: Processes, master: Master, env: Mapping[str, str], cwd: Path,
                 layout: str = "pod", label: str = "worker") -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.layout = layout
        entry, environment = [lifecycle_bin(), "worker", master.url], dict(env)
        if layout == "pod":
            entry, environment = pod_command(entry, environment)
        elif layout != "plain":
            raise ValueError(layout)
        self.processes = processes
        self.ui_port = int(env["SPARK_WORKER_WEBUI_PORT"])
        self.started: Started = processes.start(label, entry, environment, cwd)

    def wait_registered(self, master: StandaloneMaster, timeout: float) -> str:
        """Block until the Worker has registered with the master; its worker id (the master's JSON view lists
        it by the web UI address, whose port is this worker's SPARK_WORKER_WEBUI_PORT)."""
        self.started.output.wait_for(REGISTERED, timeout=timeout)
        workers = master.status().get("workers", [])
        assert isinstance(workers, list)
        ours = [w for w in workers if str(w["webuiaddress"]).endswith(f":{self.ui_port}")]
        assert len(ours) == 1, workers
        return str(ours[0]["id"])

    def host_pids(self) -> dict[int, int]:
        """{PID inside the pod: PID on the host} (the plain layout: the host's own)."""
        pids = [self.started.pid, *descendants(self.started.pid)]
        if self.layout == "plain":
            return {pid: pid for pid in pids}
        return {inner: pid for pid in pids if (inner := namespace_pid(pid)) is not None}

    @property
    def init_pid(self) -> int:
        """Host PID of the pod's PID 1 (lifecycle), or of lifecycle in the plain layout."""
        return self.started.pid if self.layout == "plain" else self.host_pids()[1]

    def jvms(self, main_class: str) -> list[int]:
        """Host PIDs of this pod's java processes whose argv holds `main_class` as an element."""
        return sorted(pid for pid in self.host_pids().values()
                      if main_class in cmdline(pid)[1:] and os.path.basename(cmdline(pid)[0]) == "java")

    def worker_jvm(self) -> int:
        (pid,) = self.jvms(WORKER_CLASS)
        return pid

    def executors(self) -> list[int]:
        return self.jvms(EXECUTOR_CLASS)

    def exit_code(self, timeout: float = 60.0) -> int:
        code = self.started.process.wait(timeout=timeout)
        self.started.output.wait_closed(timeout)
        return code

    def records(self) -> list[dict[str, object]]:
        return self.started.output.json_records()


class WorkerHook:
    """The preStop command as the kubelet runs it in the worker's container (nsenter -t PID1 -p -m)."""

    def __init__(self, processes: Processes, pod: WorkerPod, **env: str) -> None:
        command = [lifecycle_bin("lifecycle-decommission")]
        if pod.layout == "pod":
            nsenter = shutil.which("nsenter", path=SYSTEM_PATH)
            assert nsenter is not None
            command = [nsenter, "-t", str(pod.init_pid), "-p", "-m", *command]
        environment = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "LIFECYCLE_LOG_FORMAT": "json", **env}
        self.started = processes.start("worker-hook", command, environment)
        self.pidfd = os.pidfd_open(self.started.pid)

    def finish(self, timeout: float = 60.0) -> int:
        code = self.started.process.wait(timeout=timeout)
        self.started.output.wait_closed(timeout)
        os.close(self.pidfd)
        return code


# ---- the operator's way, for the benchmark: spark-daemon.sh, then a once-a-second status poll ---------------


def daemon_argv(spark_home: Path, main_class: str, *args: str) -> list[str]:
    """What start-master.sh / start-worker.sh run (restated: the pyspark distribution lacks them):
    `spark-daemon.sh start CLASS 1 ARGS…`, which daemonizes the JVM (nohup, a log file, a pid file) and returns."""
    return [str(spark_home / "sbin" / "spark-daemon.sh"), "start", main_class, "1", *args]


def daemon_dirs(env: Mapping[str, str], workdir: Path) -> dict[str, str]:
    """spark-daemon.sh's log and pid directories (its defaults are under SPARK_HOME and /tmp)."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    return {**env, "SPARK_LOG_DIR": str(workdir / "logs"), "SPARK_PID_DIR": str(workdir),
            "SPARK_IDENT_STRING": workdir.name}  # fmt: skip
