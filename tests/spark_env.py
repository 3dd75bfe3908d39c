"""Real Spark for the end-to-end tests and the Spark demo: pyspark in its own venv, a standalone master,
a client-mode PySpark driver launched by `lifecycle driver`, and a coordinator the driver's tasks report to.

`pip install pyspark==4.3.0` is a whole Spark distribution: SPARK_HOME is the installed `pyspark/` package
directory (bin/spark-submit, bin/spark-class, jars/). It goes into its own venv, `.spark-venv` beside the
project's `.venv`, so the project's venv stays light; it is created once and reused.

Nothing here sleeps or polls: every wait is a bounded select on a pipe, a socket or a pidfd, every
subprocess has a timeout, and every process started here is killed by PID (pidfd) in `stop()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
SPARK_VENV = REPO_ROOT / ".spark-venv"
PYSPARK_VERSION = "4.3.0"
INSTALL_TIMEOUT = 600.0  # seconds for `pip install pyspark` (a 456 MB sdist: ~35 s build on a warm machine)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOOPBACK = "127.0.0.1"
EXECUTOR_CLASS = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"


# ---- the pyspark distribution ---------------------------------------------------------------------------


def spark_python(venv: Path = SPARK_VENV) -> Path:
    """The interpreter of the Spark venv (has pyspark; runs the driver program and the Python workers)."""
    return venv / "bin" / "python"


def _base_python() -> str:
    """A plain interpreter to create the venv with (not a venv's own, which would nest venvs)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.access(base, os.X_OK) else (shutil.which("python3", path=SYSTEM_PATH) or sys.executable)


def installed_pyspark(version: str = PYSPARK_VERSION, venv: Path = SPARK_VENV) -> Path | None:
    """SPARK_HOME when pyspark==`version` is already installed in `venv`, else None."""
    return _installed_home(venv, version)


def _installed_home(venv: Path, version: str) -> Path | None:
    stamp = venv / f".pyspark-{version}"
    if not stamp.is_file():
        return None
    home = Path(stamp.read_text(encoding="utf-8").strip())
    if (home / "bin" / "spark-submit").is_file() and (home / "jars").is_dir():
        return home
    return None


@contextlib.contextmanager
def _install_lock(venv: Path, timeout: float) -> Iterator[None]:
    """One installer at a time (the tests and the demo may start together); bounded by `timeout`."""
    venv.mkdir(parents=True, exist_ok=True)  # `python -m venv` fills an existing directory
    lock = venv / ".install.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Another process installs: block on the lock in a helper that the kernel bounds for us.
            holder = subprocess.run(["flock", "-w", str(int(timeout)), str(lock), "true"], timeout=timeout + 10,
                                    stdin=subprocess.DEVNULL, check=False)
            if holder.returncode != 0:
                raise TimeoutError(f"another pyspark install held {lock} for more than {timeout:g}s") from None
            fcntl.flock(fd, fcntl.LOCK_EX)  # free now (the other installer finished)
        yield
    finally:
        os.close(fd)


def ensure_pyspark(version: str = PYSPARK_VERSION, venv: Path = SPARK_VENV, quiet: bool = False,
                   base_python: str | None = None) -> Path:
    """SPARK_HOME of pyspark==`version`, installed once into `venv` (`base_python -m venv` + pip install).

    Cached: when the venv already has this version the call returns at once, without running pip.
    `base_python` defaults to the interpreter this venv was made from (tests/container passes Debian's).
    """
    home = _installed_home(venv, version)
    if home is not None:
        return home
    with _install_lock(venv, INSTALL_TIMEOUT):
        home = _installed_home(venv, version)  # installed by whoever held the lock
        if home is not None:
            return home
        env = {"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        output = subprocess.DEVNULL if quiet else None
        if not spark_python(venv).exists():
            subprocess.run([base_python or _base_python(), "-m", "venv", str(venv)], check=True, timeout=120, env=env,
                           stdin=subprocess.DEVNULL, stdout=output)
        started = time.monotonic()
        subprocess.run([str(spark_python(venv)), "-m", "pip", "install", "-qq", f"pyspark=={version}"],
                       check=True, timeout=INSTALL_TIMEOUT, env=env, stdin=subprocess.DEVNULL, stdout=output)
        located = subprocess.run(
            [str(spark_python(venv)), "-I", "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
            check=True, timeout=60, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        home = Path(located.stdout.strip())
        if not (home / "bin" / "spark-submit").is_file():
            raise RuntimeError(f"pyspark {version} in {venv} has no bin/spark-submit under {home}")
        for script in (home / "bin").iterdir():  # sdist installs keep the mode; wheels may not
            script.chmod(script.stat().st_mode | 0o111)
        (venv / f".pyspark-{version}").write_text(f"{home}\n", encoding="utf-8")
        if not quiet:
            print(f"spark-env: installed pyspark {version} into {venv} in {time.monotonic() - started:.0f}s",
                  file=sys.stderr)
        return home


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


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(part) for part in handle.read().split()]
    except OSError:  # exited meanwhile
        return []


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, parents before their children."""
    found: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo += children(child)
    return found


def namespace_pid(host_pid: int) -> int | None:
    """The PID in its innermost PID namespace (last NSpid field), or None once it has gone."""
    try:
        with open(f"/proc/{host_pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        return None
    return None


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0")[:-1]]
    except OSError:
        return []


def parent_pid(pid: int) -> int:
    """Field 4 of /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return int(handle.read().rsplit(b")", 1)[1].split()[1])


def vm_rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_exits(pidfds: Mapping[str, int], timeout: float) -> dict[str, float]:
    """Block on pidfds until every process has exited; {name: monotonic time its exit was seen}."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(pidfds):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"still running after {timeout:g}s: {sorted(set(pidfds) - set(seen))}")
        ready, _, _ = select.select([fd for name, fd in pidfds.items() if name not in seen], [], [], left)
        now = time.monotonic()
        for name, fd in pidfds.items():
            if fd in ready and name not in seen:
                seen[name] = now
    return seen


# ---- processes and their output ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    at: float  # time.monotonic() when the line arrived
    stream: str  # "out" or "err"
    text: str


EchoFn = Callable[[str, Line], None]  # (label, line): called for every line as it arrives


class Output:
    """What a process writes on stdout and stderr, as lines with their arrival time.

    Two reader threads block on the pipes (so a chatty JVM never stalls on a full pipe) and wake waiters
    through a condition variable: `wait_for` blocks, bounded, until a matching line has arrived.
    """

    def __init__(self, process: subprocess.Popen[bytes], label: str, echo: EchoFn | None = None) -> None:
        self.label = label
        self.lines: list[Line] = []
        self.cond = threading.Condition()
        self.echo = echo
        self.open = 0
        for name, pipe in (("out", process.stdout), ("err", process.stderr)):
            if pipe is not None:
                self.open += 1
                threading.Thread(target=self._read, args=(name, pipe), daemon=True, name=f"{label}-{name}").start()

    def _read(self, name: str, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                line = Line(time.monotonic(), name, raw.decode("utf-8", "replace").rstrip("\r\n"))
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
                if self.echo is not None:
                    self.echo(self.label, line)
        finally:
            with self.cond:
                self.open -= 1
                self.cond.notify_all()

    def find(self, text: str | re.Pattern[str], stream: str | None = None, start: int = 0) -> Line | None:
        with self.cond:
            for line in self.lines[start:]:
                if (stream is None or line.stream == stream) and _matches(text, line.text):
                    return line
        return None

    def wait_for(self, text: str | re.Pattern[str], stream: str | None = None, timeout: float = 60.0,
                 start: int = 0) -> Line:
        """The first line (from index `start`) containing `text` (or matching the pattern); bounded wait."""
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    index += 1
                    if (stream is None or line.stream == stream) and _matches(text, line.text):
                        return line
                if self.open == 0:
                    raise AssertionError(f"{self.label} closed its output without a line matching {text!r}:\n"
                                         f"{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line matching {text!r} from {self.label} within {timeout:g}s:\n"
                                       f"{self.tail()}")
                self.cond.wait(left)

    def wait_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.open:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.label} kept its output open for more than {timeout:g}s")
                self.cond.wait(left)

    def count(self) -> int:
        with self.cond:
            return len(self.lines)

    def text(self, stream: str | None = None) -> str:
        with self.cond:
            return "\n".join(line.text for line in self.lines if stream is None or line.stream == stream)

    def json_records(self, stream: str = "err") -> list[dict[str, object]]:
        """The lines that are JSON objects (lifecycle's log with LIFECYCLE_LOG_FORMAT=json)."""
        records = []
        for line in self.text(stream).splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    def tail(self, count: int = 60) -> str:
        with self.cond:
            lines = self.lines[-count:]
        return "\n".join(f"  [{line.stream}] {line.text[:400]}" for line in lines)


def _matches(text: str | re.Pattern[str], line: str) -> bool:
    return bool(text.search(line)) if isinstance(text, re.Pattern) else text in line


@dataclass
class Started:
    """A process started through `Processes`, with its output."""

    label: str
    process: subprocess.Popen[bytes]
    output: Output
    started_at: float

    @property
    def pid(self) -> int:
        return self.process.pid


class Processes:
    """Starts processes and kills each one with all its descendants, by pidfd, in `stop()`."""

    def __init__(self, echo: EchoFn | None = None) -> None:
        self.started: list[Started] = []
        self.echo = echo

    def start(self, label: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | str | None = None,
              stdout: int | None = subprocess.PIPE) -> Started:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.PIPE)
        started = Started(label, process, Output(process, label, self.echo), time.monotonic())
        self.started.append(started)
        return started

    def kill(self, started: Started, timeout: float = 30.0) -> None:
        """SIGKILL the process and every descendant (JVMs, Python workers) through pidfds, then reap it."""
        pidfds = []
        for pid in [started.pid, *descendants(started.pid)]:
            try:
                pidfds.append(os.pidfd_open(pid))
            except (ProcessLookupError, OSError):  # exited meanwhile
                continue
        for fd in pidfds:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except (ProcessLookupError, OSError):  # exited meanwhile
                pass
        for fd in pidfds:
            os.close(fd)
        try:
            started.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(TimeoutError):
            started.output.wait_closed(timeout)

    def stop(self) -> None:
        for started in reversed(self.started):
            self.kill(started)
        self.started.clear()


# ---- the standalone master ----------------------------------------------------------------------------------


def spark_env(spark_home: Path, **more: str) -> dict[str, str]:
    """The environment every Spark process here gets: loopback only, the Spark venv's Python."""
    python = str(spark_python())
    return {
        "PATH": SYSTEM_PATH,
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": LOOPBACK,
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        **more,
    }


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


# ---- the coordinator: the tests' side of the driver program and its tasks ----------------------------------


@dataclass
class Task:
    job: str
    index: int
    pid: int
    at: float
    conn: socket.socket


class Coordinator:
    """A TCP server on 127.0.0.1 that the driver program and every task of its jobs connect to.

    The driver says hello (app id, spark.executor.extraJavaOptions) and then takes `job NAME N` and `stop`
    lines and reports `result NAME {...}`. Each task says `task JOB INDEX PID` and then blocks until it is
    sent `go`: a test knows exactly when tasks run, and holds them running as long as it likes.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])
        self.cond = threading.Condition()
        self.hello: dict[str, object] | None = None
        self.driver: socket.socket | None = None
        self.tasks: dict[str, dict[int, Task]] = {}
        self.released: set[str] = set()
        self.results: dict[str, dict[str, object]] = {}
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="coordinator").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self.cond:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="coordinator-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            first = reader.readline().decode()
            kind, _, rest = first.strip().partition(" ")
            if kind == "task":
                job, index, pid = rest.split()
                task = Task(job, int(index), int(pid), time.monotonic(), conn)
                with self.cond:
                    self.tasks.setdefault(job, {})[task.index] = task
                    go = job in self.released
                    self.cond.notify_all()
                if go:
                    self._go(task)
                return
            if kind == "driver":
                with self.cond:
                    self.hello = json.loads(rest)
                    self.driver = conn
                    self.cond.notify_all()
                for raw in reader:
                    kind, _, rest = raw.decode().strip().partition(" ")
                    if kind == "result":
                        job, _, data = rest.partition(" ")
                        with self.cond:
                            self.results[job] = json.loads(data)
                            self.cond.notify_all()
        except (OSError, ValueError):  # a connection that went away or said nothing sensible
            return
        finally:
            with self.cond:
                self.cond.notify_all()

    @staticmethod
    def _go(task: Task) -> None:
        with contextlib.suppress(OSError):  # the task is gone (its executor died): nothing to release
            task.conn.sendall(b"go\n")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what} within {timeout:g}s")
                self.cond.wait(left)

    def wait_hello(self, timeout: float) -> dict[str, object]:
        self._wait(lambda: self.hello is not None, timeout, "the driver program did not connect")
        assert self.hello is not None
        return self.hello

    def send(self, line: str) -> None:
        assert self.driver is not None, "the driver program is not connected"
        self.driver.sendall(f"{line}\n".encode())

    def wait_tasks(self, job: str, count: int, timeout: float) -> list[Task]:
        """Block until `count` tasks of `job` have connected (they are running on an executor)."""
        self._wait(lambda: len(self.tasks.get(job, {})) >= count, timeout, f"{count} tasks of {job} did not start")
        with self.cond:
            return sorted(self.tasks[job].values(), key=lambda task: task.index)

    def release(self, job: str) -> None:
        """Let every task of `job` finish, now and later (a retried task is released at once)."""
        with self.cond:
            self.released.add(job)
            tasks = list(self.tasks.get(job, {}).values())
        for task in tasks:
            self._go(task)

    def wait_result(self, job: str, timeout: float) -> dict[str, object]:
        self._wait(lambda: job in self.results, timeout, f"job {job} did not finish")
        with self.cond:
            return self.results[job]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.cond:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


# ---- the driver program -------------------------------------------------------------------------------------

DRIVER_PROGRAM = '''\
"""A PySpark driver program for lifecycle's end-to-end tests (written by tests/spark_env.py).

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


def lifecycle_bin(name: str = "lifecycle") -> str:
    """The console script installed beside the running interpreter (the project's .venv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
        return found
    return str(path)


def driver_argv(master: str, program: Path, *program_args: str, driver_port: int | None = None) -> list[str]:
    """`lifecycle driver …`: spark-submit in client mode, as upstream's entrypoint runs the driver."""
    confs = {"spark.driver.host": LOOPBACK, "spark.ui.enabled": "false", "spark.decommission.enabled": "true",
             "spark.ui.showConsoleProgress": "false"}
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
                 prefix: Sequence[str] = (), **env: str) -> Driver:
    """The driver program against `master`, through `lifecycle driver` (after `prefix`, e.g. an nsenter);
    returns once it has its app id."""
    coordinator = Coordinator()
    port = free_port()
    program = write_driver_program(cwd)
    argv = [*prefix, *driver_argv(master.url, program, "serve", LOOPBACK, str(coordinator.port), driver_port=port)]
    environment = spark_env(spark_home, SPARK_DRIVER_BIND_ADDRESS=LOOPBACK, LIFECYCLE_TERMINATION_LOG="", **env)
    started = processes.start("driver", argv, environment, cwd)
    try:
        hello = coordinator.wait_hello(timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}:\n{started.output.tail()}") from None
    started.output.wait_for("APP_ID ", "out", timeout=timeout)
    return Driver(started, port, coordinator, str(hello["app_id"]), str(hello["executor_java_options"]),
                  str(hello["spark_version"]))


# ---- the executor: the K8s scheduler's environment, and pods made of namespaces ----------------------------


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


# A pause container's process (shareProcessNamespace): starts its argv as a child, reaps what is orphaned to
# it, reports each exit on stderr, and stays until SIGTERM or SIGKILL, as kubernetes' pause does.
PAUSE = """\
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
if os.fork() == 0:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.execv(sys.argv[1], sys.argv[1:])
while signal.sigwait({signal.SIGCHLD, signal.SIGTERM}) == signal.SIGCHLD:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        print(f"pause: reaped {pid} exit {os.waitstatus_to_exitcode(status)}", file=sys.stderr, flush=True)
"""


def can_use_namespaces() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool, path=SYSTEM_PATH) for tool in ("unshare", "nsenter"))


class Pod:
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
        lifecycle = lifecycle_bin()
        if layout == "lifecycle":
            entry = [lifecycle, "executor"]
        elif layout == "tini":
            tini = shutil.which("tini", path=SYSTEM_PATH)
            assert tini is not None, "tini is not installed"
            entry = [sys.executable, "-I", "-c", PAUSE, tini, "-s", "--", lifecycle, "executor"]
            env = {**env, "LIFECYCLE_RUN_MODE": "exec"}
        elif layout == "plain":
            entry = [lifecycle, "executor"]
        else:
            raise ValueError(layout)
        if layout != "plain":
            unshare = shutil.which("unshare", path=SYSTEM_PATH)
            assert unshare is not None
            entry = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", *entry]
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

    def __init__(self, processes: Processes, pod: Pod, **env: str) -> None:
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


# ---- whole scenarios, shared by the end-to-end tests and examples/spark_demo.py ----------------------------

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
    pod: Pod
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
    pod = Pod(processes, layout, environment, cwd, label=f"executor-{executor_id}")
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


def expected_executor_argv(spark_home: Path, driver: Driver, env: Mapping[str, str], cwd: str) -> list[str]:
    """The executor argv upstream's entrypoint.sh builds for `env` (upstream-behaviour §1.2), java from PATH."""
    java = shutil.which("java", path=env.get("PATH", SYSTEM_PATH))
    assert java is not None
    classpath = ":".join([f"{spark_home}/conf", env.get("SPARK_CLASSPATH", ""), f"{spark_home}/jars/*", cwd,
                          env.get("SPARK_DIST_CLASSPATH", "")])
    return [os.path.realpath(java), *driver.java_options(),
            f"-Xms{env['SPARK_EXECUTOR_MEMORY']}", f"-Xmx{env['SPARK_EXECUTOR_MEMORY']}", "-cp", classpath,
            EXECUTOR_CLASS,
            "--driver-url", env["SPARK_DRIVER_URL"], "--executor-id", env["SPARK_EXECUTOR_ID"],
            "--cores", env["SPARK_EXECUTOR_CORES"], "--app-id", env["SPARK_APPLICATION_ID"],
            "--hostname", env["SPARK_EXECUTOR_POD_IP"], "--resourceProfileId", env["SPARK_RESOURCE_PROFILE_ID"],
            "--podName", env["SPARK_EXECUTOR_POD_NAME"]]  # fmt: skip
