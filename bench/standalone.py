"""A standalone cluster's worker scale-down and its daemons' start-up, under lifecycle and the operator's way.

Scale-down, in one run against one `lifecycle master`, one client-mode application (decommission and block
migration on; `--interval` sets spark.storage.decommission.replicationReattemptInterval, default 2s) and one
worker that stays (its executor is where the other's blocks go and its tasks are re-run). Each row adds a
worker (`lifecycle worker`, PID 1 of its pod) and runs a job of 4 tasks, 2 on each executor, then:
  drain  the preStop command is run; once the executor is draining with both tasks still running (`Blocked
         from shutdown by 2 running tasks` in its log) the tasks are let finish: request → the driver
         decommissions the executor → its tasks end → the executor gone → the Worker JVM gone → lifecycle's exit
         (code) → the hook's exit (code); tasks re-run (0); the job's result.
  kill   the operator's behaviour today (terminationGracePeriodSeconds: 0): every process of the worker's pod
         is SIGKILLed while its 2 tasks run; they run again from the start on the staying executor.

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
import re
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

DECOMMISSIONED = re.compile(r"Executor updated: .* is now DECOMMISSIONED|[Dd]ecommission(ing)? executor")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "180"))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def join(processes: Processes, spark_home: Path, master: StandaloneMaster, driver: Driver, work: Path,
         name: str) -> WorkerPod:  # fmt: skip
    """A worker pod whose executor for the application has registered with the driver."""
    mark = driver.started.output.count()
    pod = WorkerPod(processes, master, worker_env(spark_home, work / name), work / name, label=name)
    pod.wait_registered(master, TIMEOUT)
    driver.started.output.wait_for("Registered executor", timeout=TIMEOUT, start=mark)
    return pod


def drain_row(processes: Processes, spark_home: Path, master: StandaloneMaster, driver: Driver, work: Path,
              run: int) -> dict[str, str]:  # fmt: skip
    """A job of 4 tasks over the staying worker's executor and this worker's (2 each); the preStop command drains
    this one while its 2 tasks run; they finish once its executor is draining."""
    pod = join(processes, spark_home, master, driver, work, f"d{run}")
    job = f"drain-{run}"
    driver.submit(job, 4)
    driver.coordinator.wait_tasks(job, 4, TIMEOUT)
    (executor,) = pod.executors()
    fds = {"executor": os.pidfd_open(executor), "worker": os.pidfd_open(pod.worker_jvm())}
    (log,) = (work / f"d{run}" / "work" / driver.app_id).glob("*/stderr")  # the executor's log, in the work dir
    tail = shutil.which("tail", path=SYSTEM_PATH)
    assert tail is not None
    follower = processes.start("executor-log", [tail, "-F", "-n", "+1", "-s", "0.05", str(log)], {})
    mark = driver.started.output.count()
    hook = WorkerHook(processes, pod)
    requested = hook.started.started_at
    seen = driver.started.output.wait_for(DECOMMISSIONED, timeout=TIMEOUT, start=mark)
    # The tasks finish once the executor is draining with both still running (`Blocked from shutdown by 2
    # running tasks`): an executor leaves only after a block-migration round that started after its last task
    # ended (the staying executor is the peer blocks go to), and --interval decides when the next round starts.
    follower.output.wait_for("Blocked from shutdown by 2 running tasks", timeout=TIMEOUT)
    driver.coordinator.release(job)
    released = time.monotonic()
    fds["hook"] = hook.pidfd
    exits = wait_exits(fds, TIMEOUT)
    processes.kill(follower)
    os.close(fds["executor"])
    os.close(fds["worker"])
    hook_code, code = hook.finish(TIMEOUT), pod.exit_code(TIMEOUT)
    ended = pod.started.output.wait_for('"event": "terminated"', timeout=TIMEOUT).at
    result = driver.result(job, TIMEOUT)
    return {"way": "lifecycle: preStop drain", "driver decommissions the executor": ms(seen.at - requested),
            "its 2 tasks end": ms(released - requested), "executor gone": ms(exits["executor"] - requested),
            "Worker JVM gone": ms(exits["worker"] - requested), "lifecycle exit": f"{ms(ended - requested)} ({code})",
            "hook exit": f"{ms(exits['hook'] - requested)} ({hook_code})",
            "tasks re-run": str(driver.coordinator.attempts[job] - 4),
            "job": "ok" if result.get("ok") else f"failed: {result}"}  # fmt: skip


def kill_row(processes: Processes, spark_home: Path, master: StandaloneMaster, driver: Driver, work: Path,
             run: int) -> dict[str, str]:  # fmt: skip
    """The same job; this worker's pod is SIGKILLed at once (grace 0) while its 2 tasks run: they run again
    from the start on the staying worker's executor."""
    pod = join(processes, spark_home, master, driver, work, f"k{run}")
    job = f"kill-{run}"
    driver.submit(job, 4)
    driver.coordinator.wait_tasks(job, 4, TIMEOUT)
    killed = time.monotonic()
    kill_by_pidfd(pod.host_pids().values())
    driver.coordinator.release(job)  # the staying executor's 2 tasks end; the lost 2 are released as they re-run
    pod.exit_code(TIMEOUT)
    driver.coordinator.wait_attempts(job, 6, TIMEOUT)  # both lost tasks again, from the start
    rerun = time.monotonic()
    result = driver.result(job, TIMEOUT)
    done = time.monotonic()
    return {"way": "operator today: SIGKILL at once", "driver decommissions the executor": "-",
            "its 2 tasks end": "killed", "executor gone": "0", "Worker JVM gone": "0", "lifecycle exit": "-",
            "hook exit": "-", "tasks re-run": str(driver.coordinator.attempts[job] - 4),
            "job": f"ok {ms(done - killed)} after the kill (the lost tasks restarted at {ms(rerun - killed)})"
            if result.get("ok") else f"failed: {result}"}  # fmt: skip


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
            join(processes, spark_home, master, driver, work, "stays")  # the worker that the scale-down keeps
            rows = []
            for run in range(options.runs):
                rows.append(drain_row(processes, spark_home, master, driver, work, run))
                rows.append(kill_row(processes, spark_home, master, driver, work, run))
            say(f"scale-down of one of two workers, 2 tasks running on each (ms from the preStop request or the kill; "
                f"migration interval "
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
