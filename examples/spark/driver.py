"""The cluster side: a standalone master with no workers, and a client-mode PySpark driver program launched by
`lifecycle driver` (spark-submit, as upstream's entrypoint runs the driver) that serves jobs for the caller.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from examples.spark.coordinator import Coordinator
from examples.spark.install import LOOPBACK, lifecycle_bin, spark_env
from examples.spark.output import Processes, Started

# ---- small pieces -----------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (Spark binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def split_command_string(text: str) -> list[str]:
    """Spark's Utils.splitCommandString (upstream-behaviour §4.2): how the K8s scheduler splits
    spark.executor.extraJavaOptions into SPARK_JAVA_OPT_<n>. Whitespace separates words, single quotes are
    literal, a backslash escapes the next character inside double quotes, a quoted empty string is a word."""
    words: list[str] = []
    word: list[str] = []
    in_word = in_single = in_double = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_double:
            if char == '"':
                in_double = False
            elif char == "\\":
                if i < len(text) - 1:
                    word.append(text[i + 1])
                    i += 1
            else:
                word.append(char)
        elif in_single:
            if char == "'":
                in_single = False
            else:
                word.append(char)
        elif char == '"':
            in_word = in_double = True
        elif char == "'":
            in_word = in_single = True
        elif not char.isspace():
            word.append(char)
            in_word = True
        elif in_word:
            words.append("".join(word))
            word.clear()
            in_word = False
        i += 1
    if in_word or in_double or in_single:
        words.append("".join(word))
    return words


# ---- the standalone master ----------------------------------------------------------------------------------


@dataclass
class Master:
    url: str
    started: Started


def start_master(processes: Processes, spark_home: Path, cwd: Path, timeout: float = 90.0) -> Master:
    """A standalone master with no workers on 127.0.0.1 (REST server off); returns once it is ALIVE."""
    port, ui_port = free_port(), free_port()
    argv = [str(spark_home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
            "--host", LOOPBACK, "--port", str(port), "--webui-port", str(ui_port)]
    env = spark_env(spark_home, SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false")
    started = processes.start("master", argv, env, cwd)
    started.output.wait_for("New state: ALIVE", timeout=timeout)
    return Master(f"spark://{LOOPBACK}:{port}", started)


# ---- the driver program -------------------------------------------------------------------------------------

DRIVER_PROGRAM = '''\
"""A PySpark driver program for lifecycle's end-to-end tests (written by examples/spark/driver.py).

  driver.py oneshot            one job (sum of squares of 0..999 over 2 tasks); prints APP_ID and RESULT
  driver.py serve HOST PORT    connects to the coordinator, says hello, then runs `job NAME N` requests:
                               N tasks that each report to the coordinator and block until it says `go`
"""
import json
import os
import socket
import sys
import threading

from pyspark import SparkConf, SparkContext

EXPECTED = sum(x * x for x in range(1000))


def blocking_task(job, host, port):
    def run(index, values):
        import os
        import socket

        values = list(values)
        with socket.create_connection((host, port), timeout=60) as conn:
            conn.sendall(f"task {job} {index} {os.getpid()}\\n".encode())
            conn.settimeout(600)
            reply = conn.makefile("rb").readline().strip()
        if reply != b"go":
            raise RuntimeError(f"task {index} of job {job}: the coordinator said {reply!r}, not go")
        yield index, sum(x * x for x in values), len(values)

    return run


def main():
    sc = SparkContext(conf=SparkConf().setAppName("lifecycle-e2e"))
    print(f"APP_ID {sc.applicationId}", flush=True)
    conf = sc.getConf()
    print(f"DEPLOY_MODE {conf.get('spark.submit.deployMode')} MASTER {sc.master} "
          f"BIND_ADDRESS {conf.get('spark.driver.bindAddress')}", flush=True)
    if sys.argv[1] == "oneshot":
        total = sc.parallelize(range(1000), 2).map(lambda x: x * x).sum()
        print(f"RESULT oneshot {total} expected={EXPECTED}", flush=True)
        sc.stop()
        return 0 if total == EXPECTED else 1
    host, port = sys.argv[2], int(sys.argv[3])
    control = socket.create_connection((host, port), timeout=60)
    control.settimeout(None)
    lock = threading.Lock()
    hello = {"pid": os.getpid(), "app_id": sc.applicationId, "spark_version": sc.version,
             "executor_java_options": sc.getConf().get("spark.executor.extraJavaOptions", "")}
    control.sendall(f"driver {json.dumps(hello)}\\n".encode())

    def run_job(job, partitions):
        sc.setJobGroup(job, f"lifecycle e2e job {job}")
        try:
            rows = (sc.parallelize(range(1000), partitions)
                    .mapPartitionsWithIndex(blocking_task(job, host, port)).collect())
            total = sum(row[1] for row in rows)
            result = {"ok": True, "total": total, "expected": EXPECTED, "partitions": sorted(r[0] for r in rows)}
            print(f"RESULT {job} {total} expected={EXPECTED} tasks={len(rows)}", flush=True)
        except Exception as exc:  # reported to the test, which fails with it
            result = {"ok": False, "error": str(exc)[:2000]}
            print(f"RESULT {job} failed: {str(exc)[:300]}", flush=True)
        with lock:
            control.sendall(f"result {job} {json.dumps(result)}\\n".encode())

    for raw in control.makefile("rb"):
        words = raw.decode().split()
        if words[:1] == ["job"]:
            threading.Thread(target=run_job, args=(words[1], int(words[2])), daemon=True).start()
        elif words[:1] == ["cancel"]:
            sc.cancelJobGroup(words[1])
        elif words[:1] == ["stop"]:
            break
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

EXPECTED_TOTAL = sum(x * x for x in range(1000))


def write_driver_program(directory: Path) -> Path:
    path = directory / "lifecycle_e2e_driver.py"
    path.write_text(DRIVER_PROGRAM, encoding="utf-8")
    return path


def driver_argv(master: str, program: Path, *program_args: str, driver_port: int | None = None,
                conf: Mapping[str, str] | None = None) -> list[str]:
    """`lifecycle driver …`: spark-submit in client mode, as upstream's entrypoint runs the driver."""
    confs = {"spark.driver.host": LOOPBACK, "spark.ui.enabled": "false", "spark.decommission.enabled": "true",
             "spark.ui.showConsoleProgress": "false", **(conf or {})}
    if driver_port is not None:
        confs["spark.driver.port"] = str(driver_port)
    argv = [lifecycle_bin(), "driver", "--master", master, "--name", "lifecycle-e2e"]
    for key, value in confs.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(program), *program_args]


@dataclass
class Driver:
    """The client-mode driver (through `lifecycle driver`), serving jobs for the tests."""

    started: Started
    port: int
    coordinator: Coordinator
    app_id: str
    executor_java_options: str
    spark_version: str
    jobs: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """SPARK_DRIVER_URL as the K8s scheduler builds it (upstream-behaviour §4.1)."""
        return f"spark://CoarseGrainedScheduler@{LOOPBACK}:{self.port}"

    def java_options(self) -> list[str]:
        """SPARK_JAVA_OPT_0..N as the K8s scheduler builds them (§4.2): the split
        spark.executor.extraJavaOptions, then -D for every executor start-up conf (here spark.driver.port)."""
        return [*split_command_string(self.executor_java_options), f"-Dspark.driver.port={self.port}"]

    def submit(self, job: str, partitions: int = 2) -> None:
        self.jobs.append(job)
        self.coordinator.send(f"job {job} {partitions}")

    def result(self, job: str, timeout: float) -> dict[str, object]:
        return self.coordinator.wait_result(job, timeout)

    def cancel_unfinished(self) -> None:
        """Cancel and release every job without a result (a failed test must not leave tasks behind)."""
        for job in self.jobs:
            if job not in self.coordinator.results:
                self.coordinator.release(job)
                with contextlib.suppress(OSError, AssertionError):
                    self.coordinator.send(f"cancel {job}")

    def stop(self, timeout: float = 60.0) -> int:
        """Ask the program to stop its SparkContext and exit; lifecycle's exit status."""
        self.cancel_unfinished()
        self.coordinator.send("stop")
        return self.started.process.wait(timeout=timeout)


def start_driver(processes: Processes, spark_home: Path, master: Master, cwd: Path, timeout: float = 120.0,
                 prefix: Sequence[str] = (), conf: Mapping[str, str] | None = None, **env: str) -> Driver:
    """The driver program against `master`, through `lifecycle driver` (after `prefix`, e.g. an nsenter), with
    more Spark properties in `conf`; returns once it has its app id."""
    coordinator = Coordinator()
    port = free_port()
    program = write_driver_program(cwd)
    argv = [*prefix, *driver_argv(master.url, program, "serve", LOOPBACK, str(coordinator.port), driver_port=port,
                                  conf=conf)]
    environment = spark_env(spark_home, SPARK_DRIVER_BIND_ADDRESS=LOOPBACK, LIFECYCLE_TERMINATION_LOG="", **env)
    started = processes.start("driver", argv, environment, cwd)
    try:
        hello = coordinator.wait_hello(timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}:\n{started.output.tail()}") from None
    started.output.wait_for("APP_ID ", "out", timeout=timeout)
    return Driver(started, port, coordinator, str(hello["app_id"]), str(hello["executor_java_options"]),
                  str(hello["spark_version"]))
