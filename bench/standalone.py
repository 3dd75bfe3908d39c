"""A standalone cluster's worker scale-down and its daemons' start-up, under lifecycle and the operator's way.

Scale-down, in one run against one `lifecycle master` and one client-mode application (decommission and block
migration on; `--interval` sets spark.storage.decommission.replicationReattemptInterval, default 2s):
  drain  a worker (`lifecycle worker`, PID 1 of its pod) runs both tasks of a job; the preStop command is run
         and the tasks are let finish at once: request → every executor of the worker gone → the Worker JVM
         gone → lifecycle's exit (its code) → the hook's exit (its code); the job's result; tasks re-run (0).
  kill   the operator's behaviour today (terminationGracePeriodSeconds: 0): every process of the worker's pod
         is SIGKILLed while both tasks run. The tasks are lost; a replacement worker joins and they run again
         from the start: kill → replacement registered → both tasks re-running → the job's result.

Start-up, `--startups N` times each (medians): start → the master's `New state: ALIVE`, start → the worker's
`Successfully registered with master`, under `lifecycle master` / `lifecycle worker URL` (the log on its stderr)
and under `spark-daemon.sh start CLASS 1 …` (what start-master.sh and start-worker.sh run; the pyspark
distribution lacks those two, and spark-daemon.sh writes the log to a file, followed with `tail -F`). The
script's own return (it sleeps 2 s to check the JVM survived) is shown too.

Run as root (PID namespaces): python -m bench standalone [--runs 1] [--startups 3] [--interval 2s]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from examples.proc import kill_by_pidfd, wait_exits
from examples.spark.driver import Driver, free_port, start_driver
from examples.spark.install import LOOPBACK, SYSTEM_PATH, ensure_pyspark, lifecycle_bin
from examples.spark.output import Processes
from examples.spark.standalone import (
    DECOMMISSION_CONF,
    MASTER_ALIVE,
    MASTER_CLASS,
    REGISTERED,
    WORKER_CLASS,
    StandaloneMaster,
    WorkerHook,
    WorkerPod,
    daemon_argv,
    daemon_dirs,
    master_env,
    start_lifecycle_master,
    worker_env,
)

TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "180"))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def drain_row(processes: Processes, spark_home: Path, master: StandaloneMaster, driver: Driver, work: Path,
              run: int) -> dict[str, str]:  # fmt: skip
    """One worker drained by the preStop command while both tasks of a job run on its executor."""
    pod = WorkerPod(processes, master, worker_env(spark_home, work / f"d{run}"), work / f"d{run}", label=f"d{run}")
    pod.wait_registered(master, TIMEOUT)
    job = f"drain-{run}"
    driver.submit(job)
    driver.coordinator.wait_tasks(job, 2, TIMEOUT)
    (executor,) = pod.executors()
    fds = {"executor": os.pidfd_open(executor), "worker": os.pidfd_open(pod.worker_jvm())}
    hook = WorkerHook(processes, pod)
    requested = hook.started.started_at
    driver.coordinator.release(job)  # the tasks finish at once: what is measured is the drain itself
    fds["hook"] = hook.pidfd
    exits = wait_exits(fds, TIMEOUT)
    os.close(fds["executor"])
    os.close(fds["worker"])
    hook_code, code = hook.finish(TIMEOUT), pod.exit_code(TIMEOUT)
    ended = pod.started.output.wait_for('"event": "terminated"', timeout=TIMEOUT).at
    result = driver.result(job, TIMEOUT)
    return {"way": "lifecycle: preStop drain", "executors gone": ms(exits["executor"] - requested),
            "worker JVM gone": ms(exits["worker"] - requested), "lifecycle exit": f"{ms(ended - requested)} ({code})",
            "hook exit": f"{ms(exits['hook'] - requested)} ({hook_code})",
            "tasks re-run": str(driver.coordinator.attempts[job] - 2),
            "job": "ok" if result.get("ok") else f"failed: {result}"}  # fmt: skip


def kill_row(processes: Processes, spark_home: Path, master: StandaloneMaster, driver: Driver, work: Path,
             run: int) -> dict[str, str]:  # fmt: skip
    """One worker's pod SIGKILLed at once (grace 0) while both tasks run; a replacement worker takes the job."""
    pod = WorkerPod(processes, master, worker_env(spark_home, work / f"k{run}"), work / f"k{run}", label=f"k{run}")
    pod.wait_registered(master, TIMEOUT)
    job = f"kill-{run}"
    driver.submit(job)
    driver.coordinator.wait_tasks(job, 2, TIMEOUT)
    killed = time.monotonic()
    kill_by_pidfd(pod.host_pids().values())
    pod.exit_code(TIMEOUT)
    spare = WorkerPod(processes, master, worker_env(spark_home, work / f"r{run}"), work / f"r{run}",
                      label=f"r{run}")  # fmt: skip
    spare.wait_registered(master, TIMEOUT)
    registered = time.monotonic()
    driver.coordinator.wait_attempts(job, 4, TIMEOUT)  # both tasks again, from the start, on the replacement
    rerun = time.monotonic()
    driver.coordinator.release(job)
    result = driver.result(job, TIMEOUT)
    done = time.monotonic()
    spare_fd = os.pidfd_open(spare.init_pid)
    os.kill(spare.init_pid, 15)  # the kubelet's stop of the spare (its executor is idle)
    wait_exits({"spare": spare_fd}, TIMEOUT)
    os.close(spare_fd)
    return {"way": "operator today: SIGKILL at once", "executors gone": "0 (killed)", "worker JVM gone": "0 (killed)",
            "lifecycle exit": "-", "hook exit": "-",
            "tasks re-run": str(driver.coordinator.attempts[job] - 2),
            "job": f"ok after {ms(done - killed)} (replacement registered {ms(registered - killed)}, tasks "
                   f"re-running {ms(rerun - killed)})" if result.get("ok") else f"failed: {result}"}  # fmt: skip


def timed_lifecycle(processes: Processes, argv: list[str], env: dict[str, str], cwd: Path, line: str) -> float:
    started = processes.start("startup", argv, env, cwd)
    seen = started.output.wait_for(line, timeout=TIMEOUT).at - started.started_at
    processes.kill(started)
    return seen


def timed_daemon(processes: Processes, spark_home: Path, main_class: str, args: list[str], env: dict[str, str],
                 cwd: Path, line: str) -> tuple[float, float]:  # fmt: skip
    """(start → the line in spark-daemon.sh's log file, start → the script's return); the JVM killed after."""
    env = daemon_dirs(env, cwd)
    log = Path(env["SPARK_LOG_DIR"]) / f"spark-{env['SPARK_IDENT_STRING']}-{main_class}-1-{socket.gethostname()}.out"
    tail = shutil.which("tail", path=SYSTEM_PATH)
    assert tail is not None
    follower = processes.start("tail", [tail, "-F", "-n", "+1", "-s", "0.05", str(log)], env)
    script = processes.start("daemon", daemon_argv(spark_home, main_class, *args), env, cwd)
    script.process.wait(timeout=TIMEOUT)
    returned = time.monotonic() - script.started_at
    seen = follower.output.wait_for(line, timeout=TIMEOUT).at - script.started_at
    pid_file = Path(env["SPARK_PID_DIR"]) / f"spark-{env['SPARK_IDENT_STRING']}-{main_class}-1.pid"
    kill_by_pidfd([int(pid_file.read_text())])  # daemonized: not our descendant
    processes.kill(follower)
    pid_file.unlink()
    log.unlink()
    return seen, returned


def startups(processes: Processes, spark_home: Path, master: StandaloneMaster, work: Path,
             runs: int) -> list[dict[str, str]]:  # fmt: skip
    """Medians of start → ready for the master and the worker, each way, interleaved."""
    times: dict[str, list[float]] = {}
    for run in range(runs):
        cwd = work / f"s{run}"
        cwd.mkdir()
        port, ui = free_port(), free_port()
        menv = master_env(spark_home, port, ui, LIFECYCLE_LOG_LEVEL="warning")
        times.setdefault("lifecycle master", []).append(
            timed_lifecycle(processes, [lifecycle_bin(), "master"], menv, cwd, MASTER_ALIVE))
        seen, returned = timed_daemon(processes, spark_home, MASTER_CLASS, ["--host", LOOPBACK, "--port", str(port),
                                      "--webui-port", str(ui)], menv, cwd, MASTER_ALIVE)  # fmt: skip
        times.setdefault("spark-daemon.sh master (start-master.sh)", []).append(seen)
        times.setdefault("spark-daemon.sh master returned", []).append(returned)
        wenv = worker_env(spark_home, cwd, LIFECYCLE_LOG_LEVEL="warning", LIFECYCLE_LOG_FORMAT="text")
        times.setdefault("lifecycle worker", []).append(
            timed_lifecycle(processes, [lifecycle_bin(), "worker", master.url], wenv, cwd, REGISTERED))
        seen, returned = timed_daemon(processes, spark_home, WORKER_CLASS, ["--webui-port",
                                      wenv["SPARK_WORKER_WEBUI_PORT"], master.url], wenv, cwd, REGISTERED)  # fmt: skip
        times.setdefault("spark-daemon.sh worker (start-worker.sh)", []).append(seen)
        times.setdefault("spark-daemon.sh worker returned", []).append(returned)
    return [{"way": way, "median ms": ms(statistics.median(values)), "min ms": ms(min(values)),
             "max ms": ms(max(values))} for way, values in times.items()]  # fmt: skip


def table(rows: list[dict[str, str]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join([*lines, *("| " + " | ".join(row[k] for k in keys) + " |" for row in rows)])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench standalone", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="scale-downs of each kind (default 1)")
    parser.add_argument("--startups", type=int, default=3, help="start-ups of each daemon each way (default 3)")
    parser.add_argument("--interval", default="2s", help="spark.storage.decommission.replicationReattemptInterval")
    options = parser.parse_args(argv)
    spark_home = ensure_pyspark()
    processes = Processes()
    say: Callable[[str], None] = lambda text: print(text, flush=True)  # noqa: E731
    try:
        with tempfile.TemporaryDirectory(prefix="bench-standalone-") as tmp:
            work = Path(tmp)
            master = start_lifecycle_master(processes, spark_home, work / "master", timeout=TIMEOUT)
            conf = {**DECOMMISSION_CONF, "spark.storage.decommission.replicationReattemptInterval": options.interval}
            (work / "driver").mkdir()
            driver = start_driver(processes, spark_home, master, work / "driver", timeout=TIMEOUT, conf=conf)
            rows = []
            for run in range(options.runs):
                rows.append(drain_row(processes, spark_home, master, driver, work, run))
                rows.append(kill_row(processes, spark_home, master, driver, work, run))
            say(f"scale-down of a worker running 2 tasks (ms from the request or the kill; migration interval "
                f"{options.interval}; load {os.getloadavg()[0]:.1f}):\n")
            say(table(rows) + "\n")
            driver.cancel_unfinished()
            driver.coordinator.close()
            if options.startups:
                say(f"start-up to ready (master: `{MASTER_ALIVE}`, worker: `{REGISTERED}`), {options.startups} runs:\n")
                say(table(startups(processes, spark_home, master, work, options.startups)) + "\n")
    finally:
        processes.stop()
    return 0
