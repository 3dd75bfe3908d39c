"""The main job (scripts/demo.sh): an executor's plan, then a whole lifecycle with a decommission.

1. `lifecycle --dry-run executor` with the scheduler's environment from examples/executor.env.
2. `lifecycle executor` for real, supervising a stand-in executor JVM (examples/stub-executor, compiled
   now with javac) that drains on SIGPWR; the demo sends SIGPWR to lifecycle as the preStop hook would,
   and prints the states lifecycle went through, with timings, and a one-line summary.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE = [sys.executable, "-m", "lifecycle"]


def example_env() -> dict[str, str]:
    env = {}
    for line in (ROOT / "examples" / "executor.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def read_line(stream: object, deadline: float) -> str:
    """One line from a pipe, waiting at most until `deadline` (select, no sleeps)."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([fd], [], [], left)[0]:
        raise TimeoutError("no output from the executor in time")
    return stream.readline()  # type: ignore[attr-defined,no-any-return]


def main() -> int:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **example_env()}
    print("== 1. the executor's launch plan, as Spark's scheduler would start it (lifecycle --dry-run executor)")
    with tempfile.TemporaryDirectory(prefix="lifecycle-demo-") as tmp:
        work = Path(tmp) / "work-dir"
        spark_home = Path(tmp) / "spark"
        for path in (work, spark_home / "jars", Path(tmp) / "classes"):
            path.mkdir(parents=True)
        env["SPARK_HOME"] = str(spark_home)
        subprocess.run([*LIFECYCLE, "--dry-run", "executor"], env={**env, "PYTHONPATH": str(ROOT)},
                       cwd=work, check=True, timeout=60)

        print("\n== 2. a whole lifecycle: lifecycle executor -> running -> SIGPWR -> decommissioning -> terminated")
        source = ROOT / "examples" / "stub-executor" / "KubernetesExecutorBackend.java"
        subprocess.run(["javac", "-nowarn", "-XDignore.symbol.file", "-d", str(Path(tmp) / "classes"), str(source)],
                       check=True, timeout=120, capture_output=True)
        env.update(SPARK_CLASSPATH=str(Path(tmp) / "classes"), SPARK_JAVA_OPT_12="-Ddrain.ms=1500",
                   LIFECYCLE_LOG_FORMAT="json", LIFECYCLE_TERMINATION_LOG=str(Path(tmp) / "termination-log"),
                   PYTHONPATH=str(ROOT))
        (Path(tmp) / "termination-log").touch()
        started = time.monotonic()
        proc = subprocess.Popen([*LIFECYCLE, "executor"], env=env, cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(proc.stdout, started + 60)
            ready = time.monotonic()
            print(f"  [{ready - started:6.3f}s] executor JVM says: {line.strip()[:100]}…")
            print(f"  [{ready - started:6.3f}s] sending SIGPWR to lifecycle (pid {proc.pid}), as the preStop hook does")
            requested = time.monotonic()
            os.kill(proc.pid, signal.SIGPWR)
            for line in proc.stdout:  # type: ignore[union-attr]
                print(f"  [{time.monotonic() - started:6.3f}s] executor JVM says: {line.strip()}")
            code = proc.wait(timeout=60)
            ended = time.monotonic()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        print("\n  lifecycle's transition log (LIFECYCLE_LOG_FORMAT=json):")
        states = []
        for raw in proc.stderr.read().splitlines():  # type: ignore[union-attr]
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if record.get("event") == "transition" and record["source"] != record["dest"]:
                states.append(record["dest"])
                print(f"  [{record['elapsed_ms'] / 1000:6.3f}s] {record['source']} -> {record['dest']}"
                      f" ({record['trigger']})")
        print("\n  termination message (/dev/termination-log):")
        print("    " + (Path(tmp) / "termination-log").read_text().strip().replace("\n", "\n    "))
    ok = code == 0 and states[-3:] == ["running", "decommissioning", "terminated"]
    print(f"\n{'OK' if ok else 'FAILED'}: executor started in {ready - started:.2f}s, drained and exited {code} "
          f"{ended - requested:.2f}s after SIGPWR; states: initializing -> {' -> '.join(states)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
