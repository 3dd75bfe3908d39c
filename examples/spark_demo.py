"""The main job with real Spark: a standalone master, a driver with a job, an executor through lifecycle, two
tasks running, the preStop decommission command, the drain, the exit; the states with timings, the job's
result and a one-line summary.

    .venv/bin/python -m examples.spark_demo            # first run installs pyspark 4.3.0 into .spark-venv

Everything runs on 127.0.0.1 and is stopped (by PID) at the end. As root the executor's container is a PID
namespace of its own with lifecycle as PID 1 (`unshare --pid --fork --mount-proc lifecycle executor`) and the
preStop command runs inside it as the kubelet runs it (`nsenter -t <PID 1> -p -m lifecycle-decommission`);
otherwise lifecycle runs as a plain child (a child subreaper) and so does the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from examples.spark import install
from examples.spark.driver import start_driver, start_master
from examples.spark.executor import can_use_namespaces
from examples.spark.output import Line, Processes
from examples.spark.scenario import Drain, run_drain, transitions

T0 = time.monotonic()
PRINT = threading.Lock()
EXECUTOR_LINES = (
    "Successfully registered with driver",
    "Executor: Running task",
    "Decommission executor",
    "Blocked from shutdown by",
    "Executor: Finished task",
    "Executor self-exiting",
    "pause: reaped",
)


def say(text: str, at: float | None = None) -> None:
    with PRINT:
        print(f"  [{(time.monotonic() if at is None else at) - T0:7.3f}s] {text}", flush=True)


class Echo:
    """Shows the interesting lines of every process as they arrive (all of them with --verbose)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def __call__(self, label: str, line: Line) -> None:
        text = line.text
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict) and "logger" in record:
                if record.get("event") in ("transition", "decommission", "terminated", "drained", "attached",
                                           "error", "warning", "running") or record.get("level") != "info":
                    say(f"{record['logger']} ({label}): {record['message']}", line.at)
                return
        if self.verbose or (label.startswith("executor") and any(key in text for key in EXECUTOR_LINES)) or (
            label == "driver" and line.stream == "out"
        ):
            say(f"{label}: {text.split(' INFO ', 1)[-1][:160]}", line.at)


def show_argv(argv: list[str], option_count: int) -> str:
    """The executor JVM's argv with the java options elided and SPARK_HOME shortened."""
    options = argv[1 : 1 + option_count]
    rest = " ".join(argv[1 + option_count :])
    home = str(install.spark_python().parents[1])
    return (f"{argv[0]} {options[0]} {options[1]} … {options[-2]} {options[-1]} ({option_count} options, in the "
            f"order of SPARK_JAVA_OPT_0..{option_count - 1}) {rest.replace(home, '<spark-venv>')}")


def report(drain: Drain, states: list[tuple[float, str, str, str]]) -> None:
    print("\n== states (lifecycle's JSON transition log, time since lifecycle started)")
    for elapsed, source, dest, trigger in states:
        print(f"  [{elapsed:7.3f}s] {source} -> {dest} ({trigger})")
    hook_states = transitions(drain.hook_records(), "lifecycle-decommission")
    if hook_states:
        print("  the preStop command's own machine: " + " -> ".join([hook_states[0][0]] + [d for _, d in hook_states]))
    print("\n== phases")
    print(f"  executor start -> registered with the driver   {drain.start_to_registered:8.3f} s")
    print(f"  decommission request -> JVM exit (drain)       {drain.request_to_jvm_exit:8.3f} s")
    print(f"  JVM exit -> preStop command returned           {drain.jvm_exit_to_hook_return * 1000:8.1f} ms")
    if drain.lifecycle_rss_kib is not None:
        print(f"  lifecycle's RSS while the executor ran         {drain.lifecycle_rss_kib / 1024:8.1f} MiB (VmRSS)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.spark_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", choices=("auto", "lifecycle", "plain"), default="auto",
                        help="lifecycle as PID 1 of a PID namespace (root), or a plain child (default: auto)")
    parser.add_argument("--verbose", action="store_true", help="show every line Spark logs")
    args = parser.parse_args(argv)
    layout = args.layout
    if layout == "auto":
        layout = "lifecycle" if can_use_namespaces() else "plain"

    print("== lifecycle with real Spark: master, driver, an executor through lifecycle, a job, a decommission")
    if install.installed_pyspark() is None:
        say(f"installing pyspark {install.PYSPARK_VERSION} (a whole Spark distribution) into "
            f"{install.SPARK_VENV}: once, about a minute")
    spark_home = install.ensure_pyspark()
    say(f"pyspark {install.PYSPARK_VERSION}: SPARK_HOME={spark_home}")
    processes = Processes(echo=Echo(args.verbose))
    with tempfile.TemporaryDirectory(prefix="lifecycle-spark-demo-") as tmp:
        work = Path(tmp)
        try:
            master = start_master(processes, spark_home, work)
            say(f"standalone master ALIVE at {master.url} (no workers: the executor registers by itself)")
            # Without namespaces the driver's lifecycle shares the executor's mount namespace and so its control
            # socket name: in supervise mode it would take the preStop command's request (and decommission the
            # driver). exec mode leaves the name to the executor's lifecycle.
            driver = start_driver(processes, spark_home, master, work,
                                  LIFECYCLE_RUN_MODE="exec" if layout == "plain" else "supervise")
            say(f"driver up (lifecycle driver -> spark-submit, client mode): {driver.app_id}, "
                f"{driver.url}")
            say("job-1 submitted: 2 tasks; each reports when it runs and then blocks until released")
            termination_log = work / "termination-log"
            termination_log.touch()
            where = ("as PID 1 of its own PID namespace (unshare --pid --fork --mount-proc lifecycle executor)"
                     if layout == "lifecycle" else "as a plain child (lifecycle executor)")
            say(f"executor 1 starting {where}, with the K8s scheduler's environment "
                f"({len(driver.java_options())} SPARK_JAVA_OPT_<n>)")
            drain = run_drain(processes, spark_home, driver, layout, "1", work / "executor-1", say=say,
                              LIFECYCLE_TERMINATION_LOG=str(termination_log))
            argv_text = show_argv(drain.argv, len(driver.java_options()))
            pod_code = drain.pod.exit_code()
            records = drain.records()
            states = [(float(str(r["elapsed_ms"])) / 1000, str(r["source"]), str(r["dest"]), str(r["trigger"]))
                      for r in records if r.get("event") == "transition" and r.get("source") != r.get("dest")]
            driver_code = driver.stop()
            say(f"driver stopped (sc.stop()): exit {driver_code}")
        finally:
            processes.stop()
            if "driver" in locals():
                driver.coordinator.close()

        print(f"\n== the executor JVM's argv (/proc/<pid>/cmdline)\n  {argv_text}")
        report(drain, states)
        result = drain.result
        print(f"\n== the job's result: {result.get('total')} (expected {result.get('expected')}), "
              f"partitions {result.get('partitions')}")
        print("== termination message:\n    " + termination_log.read_text().strip().replace("\n", "\n    "))

    path = [states[0][1], *(dest for _, _, dest, _ in states)] if states else []
    ok = (drain.hook_code == 0 and pod_code == 0 and result.get("ok") is True
          and result.get("total") == result.get("expected") and path[-3:] == ["running", "decommissioning",
                                                                                "terminated"])
    rss = f"{drain.lifecycle_rss_kib / 1024:.1f} MiB" if drain.lifecycle_rss_kib else "n/a"
    print(f"\n{'OK' if ok else 'FAILED'}: a real Spark {driver.spark_version} executor under lifecycle "
          f"({'PID 1' if layout == 'lifecycle' else 'plain child'}) registered in {drain.start_to_registered:.2f}s, "
          f"ran 2 tasks, drained by lifecycle-decommission in {drain.request_to_jvm_exit:.2f}s "
          f"(command exit {drain.hook_code}, {drain.jvm_exit_to_hook_return * 1000:.0f} ms after the JVM's exit), "
          f"lifecycle exit {pod_code}, RSS {rss}, job result {result.get('total')}; states: "
          f"{' -> '.join(path)}; total {time.monotonic() - T0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
