"""One container as Kubernetes runs it (conmon and runc, the shape of CRI-O), driven with podman's own commands.

`podman run` (attached) starts PID 1 from the built image with the pod spec's settings as podman flags
(`run_argv`: read-only root, the arbitrary uid with gid 0, no capabilities, no_new_privs, a memory limit, emptyDirs
as tmpfs, the kubelet's termination-log bind mount); `podman exec` runs the preStop command as the kubelet has
CRI-O run it (the container's user, environment and working directory); `podman stop -t GRACE` is the kubelet's
stop (the stop signal, the grace period, SIGKILL); `podman kill -s`, `podman inspect` (exit code, the
upper layer) and `podman rm -f` do the rest. Every podman command runs with examples/image's containers.conf.

Why attached and not `-d` + `podman logs -f`: the attached client's stdout and stderr are conmon's pipes from the
container's PID 1, line by line as they are written, with no log-file round trip, and the client exits when PID 1
has exited and podman has recorded it, which makes it the one event to wait for (a thread blocked in wait(2)
notes the time). `--sig-proxy=false`: signals reach PID 1 only through `podman kill` and `podman stop`, as from
the kubelet. The container log (k8s-file, as CRI-O writes it) is kept as well.

What podman adds that Kubernetes does not, undone here: its own /etc/passwd line for `--user <uid>`
(`--passwd=false`: it would hide what lifecycle does for an uid without an entry), tmpfs at /tmp, /var/tmp and
/run under `--read-only` (`--read-only-tmpfs=false`: only the pod's emptyDirs are writable), and the TERM and
`container` variables (`--unsetenv`). Nothing sleeps: every wait is on an event or a bounded subprocess.
No runc-level plumbing is left: every case the tests need is expressed with podman flags or a derived image.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from examples.image.build import podman_env
from examples.spark.output import Output
from tests.helpers.processes import Lines, kill_tree
from tests.helpers.supervised import READY

TIMEOUT = 60.0  # seconds for any one wait; JVM start-up in a 2-core container under load is the slow part
COMMAND_TIMEOUT = 30.0  # seconds for one podman command (inspect, kill, rm, a stop beyond its grace)
CLEANUP_TIMEOUT = 15.0
PREFIX = "lifecycle-test-"  # every container this suite starts: lifecycle-test-<pid of the pytest process>-…
UID, GID = 1000770000, 0  # OpenShift's arbitrary uid, group root (restricted SCC)
SPARK_HOME = "/opt/spark"  # the image's
JAVA_HOME = "/opt/java/openjdk"  # the image's (eclipse-temurin's path; a symlink to Debian's JRE)
WORK_DIR = f"{SPARK_HOME}/work-dir"  # the image's WORKDIR
CLASSES = "/opt/executor-classes"  # test classes (SPARK_CLASSPATH), bind-mounted read-only
LIFECYCLE = "/usr/local/bin/lifecycle"  # the ENTRYPOINT: a link to the venv's console script
LIFECYCLE_VENV = "/opt/lifecycle/venv"
HOOK = "/usr/local/bin/lifecycle-decommission"
DECOM_SCRIPT = "/opt/decom.sh"  # spark.kubernetes.decommission.script's default: the image's shim
TERMINATION_LOG = "/dev/termination-log"
MIB = 1 << 20
TMPFS = "rw,exec,nosuid,nodev,mode=1777"  # an emptyDir (medium: Memory): not noexec (the JVM maps native libs)
# What podman itself writes into every container's upper layer before PID 1 starts (not the container's doing).
PODMAN_WRITES = {"/etc/mtab": "symlink", "/run/.containerenv": "file"}
# Where the kubelet's stop ran out of grace: podman's warning, `… resorting to SIGKILL`.
SIGKILL_SENT = "resorting to SIGKILL"


def podman(*args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One podman command, bounded (subprocess.run kills it at the bound), with the project's containers.conf."""
    done = subprocess.run(["podman", *args], env=podman_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


NAMES = itertools.count()  # container names unique within the session


def new_name(kind: str = "c") -> str:
    """A unique container name, `lifecycle-test-<pid of this process>-<kind><n>-<random>` (see sweep)."""
    return f"{PREFIX}{os.getpid()}-{kind}{next(NAMES)}-{secrets.token_hex(3)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def sweep(session_pid: int | None = None) -> list[str]:
    """Remove this suite's containers: all of session `session_pid`'s, or (None) those of sessions now gone."""
    names = podman("ps", "-a", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}").stdout.split()
    doomed = []
    for name in names:
        owner = name.removeprefix(PREFIX).split("-", 1)[0]
        if not owner.isdigit():
            continue
        if (session_pid is not None and int(owner) == session_pid) or (
            session_pid is None and not pid_alive(int(owner))
        ):
            doomed.append(name)
    if doomed:
        podman("rm", "-f", "-t", "0", *doomed, timeout=CLEANUP_TIMEOUT * 4, check=False)
    return doomed


def host_oom_kills() -> int:
    """The kernel's count of OOM kills on this host since boot (/proc/vmstat oom_kill)."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    raise AssertionError("no oom_kill in /proc/vmstat")


def wall(timestamp: str) -> float:
    """`podman inspect`'s StartedAt or FinishedAt (RFC 3339 in nanoseconds, `2026-12-06T09:46:54.563997565Z`, or
    with an offset) as time.time()."""
    whole, _, rest = timestamp.partition(".")
    digits = rest.rstrip("Z").split("+")[0].split("-")[0]
    offset = rest[len(digits) :] if rest else whole[19:]
    offset = "+00:00" if offset in ("Z", "") else offset
    parsed = datetime.fromisoformat(whole[:19] + offset).timestamp()
    return parsed + (float("0." + digits) if digits else 0.0)


@dataclass(frozen=True)
class Result:
    """How a container's PID 1, or an exec'd process, ended."""

    status: int  # 128+N for signal N, as conmon (and the kubelet) report it; an exec's: `podman exec`'s code
    started_at: float  # time.monotonic() just before the podman command
    exited_at: float  # time.monotonic() when the podman client exited (seen by a thread blocked in wait(2))
    exited_wall: float  # time.time(): for a container, conmon's FinishedAt; for an exec, the client's exit


class Watched:
    """A podman client process and a thread blocked in wait(2) on it, noting when it exited.

    Its working directory is the container's test directory: conmon inherits it, and on an OOM kill in the
    container's memory cgroup (cgroup v1) conmon creates the file `oom` there, as CRI-O (which starts conmon in
    the bundle directory) reads it. podman 4.3.1 does not look for it there, so its OOMKilled stays false.
    """

    def __init__(self, argv: Sequence[str], stdout: int | IO[bytes], stderr: int | IO[bytes], cwd: Path) -> None:
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(list(argv), env=podman_env(), cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=stdout, stderr=stderr)  # fmt: skip
        self.exited = threading.Event()
        self.exited_at = self.exited_wall = 0.0
        threading.Thread(target=self._reap, daemon=True, name=f"podman-{self.process.pid}").start()

    def _reap(self) -> None:
        self.process.wait()
        self.exited_at, self.exited_wall = time.monotonic(), time.time()
        self.exited.set()

    def wait(self, timeout: float) -> bool:
        return self.exited.wait(timeout)

    def close(self) -> None:
        """Kill what is left of the client by PID (its container-side process goes with `podman rm -f`)."""
        if not self.exited.is_set():
            kill_tree(self.process.pid)
            self.exited.wait(CLEANUP_TIMEOUT)


@dataclass
class Options:
    """One container's pod spec, as podman flags: PID 1's arguments and env, its limits, what it mounts."""

    args: Sequence[str]  # after the image's ENTRYPOINT (lifecycle), as the pod spec's `args`: `executor`, a command
    env: Mapping[str, str]
    classes: Path | None = None  # compiled executor classes, mounted at CLASSES (SPARK_CLASSPATH)
    memory: int = 512 * MIB
    termination_log: bool = True  # the kubelet's bind mount at /dev/termination-log
    tmp_tmpfs: bool = True  # an emptyDir at /tmp
    cwd: str | None = None  # the container's workingDir (default: the image's WORKDIR, an emptyDir here)
    image: str | None = None  # another image (a derived one) instead of the session's lifecycle image
    binds: Mapping[Path, str] = field(default_factory=dict)  # more host paths, read-only: {host: in container}
    volumes: Mapping[Path, str] = field(default_factory=dict)  # writable volumes (host directories): {host: inside}
    host_network: bool = False  # hostNetwork: the host's network and UTS namespaces
    stop_signal: str | None = None  # the container's stopSignal (Kubernetes 1.37), else the image's (SIGTERM)
    entrypoint: str | None = None  # the pod spec's `command` (replaces the image's ENTRYPOINT)
    capture_stderr: bool = False  # stderr through a pipe read line by line (Container.err), not into a file


def run_argv(image: str, options: Options, name: str, termination_log: Path) -> list[str]:
    """`podman run` for one container of an OpenShift-restricted executor pod."""
    argv = [
        "podman", "run", "--name", name, "--sig-proxy=false", "--log-driver", "k8s-file",
        "--read-only", "--read-only-tmpfs=false", "--passwd=false",
        "--user", f"{UID}:{GID}", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
        "--memory", str(options.memory), "--memory-swap", str(options.memory),  # no swap, as a node without it
        "--unsetenv", "TERM", "--unsetenv", "container",
        "--tmpfs", f"{WORK_DIR}:{TMPFS}",
    ]  # fmt: skip
    if options.tmp_tmpfs:
        argv += ["--tmpfs", f"/tmp:{TMPFS}"]
    if options.host_network:
        argv += ["--network", "host", "--uts", "host"]  # the CRI joins both for hostNetwork: true
    else:
        argv += ["--network", "none"]  # a namespace of its own with loopback only
    if options.termination_log:
        argv += ["-v", f"{termination_log}:{TERMINATION_LOG}"]
    if options.classes is not None:
        argv += ["-v", f"{options.classes}:{CLASSES}:ro"]
    for host, inside in options.binds.items():
        argv += ["-v", f"{host}:{inside}:ro"]
    for host, inside in options.volumes.items():
        argv += ["-v", f"{host}:{inside}:rw"]
    if options.cwd is not None:
        argv += ["--workdir", options.cwd]
    if options.stop_signal is not None:
        argv += ["--stop-signal", options.stop_signal]
    if options.entrypoint is not None:
        argv += ["--entrypoint", options.entrypoint]
    for key, value in options.env.items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, image, *options.args]


class Exec:
    """A process started in the container with `podman exec` (the kubelet's preStop exec)."""

    def __init__(self, container: Container, args: Sequence[str], name: str) -> None:
        self.stdout_path, self.stderr_path = container.dir / f"{name}.stdout", container.dir / f"{name}.stderr"
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.client = Watched(["podman", "exec", container.name, *args], stdout, stderr, container.dir)

    def wait(self, timeout: float = TIMEOUT) -> Result:
        assert self.client.wait(timeout), f"exec still running after {timeout}s: {self.stderr()}"
        code = self.client.process.returncode
        return Result(code, self.client.started_at, self.client.exited_at, self.client.exited_wall)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        self.client.close()


class Container:
    """One container: `podman run` attached; close() removes it whatever happened."""

    def __init__(self, image: str, options: Options, directory: Path, name: str) -> None:
        self.image, self.options, self.dir, self.name = image, options, directory, name
        self.termination_log = directory / "termination-log"
        self.stderr_path = directory / "stderr"
        self.execs: list[Exec] = []
        self.client: Watched | None = None
        self._stdout: IO[bytes] | None = None
        self.out: Lines | None = None
        self.err: Output | None = None  # with Options.capture_stderr: every stderr line, waited for with wait_for
        self.state: dict[str, Any] | None = None  # `podman inspect` once it has exited
        self.oom_kills_before = 0

    def start(self) -> None:
        """`podman run` attached; returns at once (PID 1 starts while the caller reads its output)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.oom_kills_before = host_oom_kills()
        if self.options.termination_log:
            self.termination_log.touch()
            self.termination_log.chmod(0o666)  # the kubelet creates it 0666
        image = self.options.image or self.image
        argv = run_argv(image, self.options, self.name, self.termination_log)
        (self.dir / "argv.json").write_text(json.dumps(argv, indent=1))
        read_fd, write_fd = os.pipe()
        try:
            if self.options.capture_stderr:
                self.client = Watched(argv, write_fd, subprocess.PIPE, self.dir)
                self.err = Output(self.client.process, self.name)
            else:
                with open(self.stderr_path, "wb") as stderr:
                    self.client = Watched(argv, write_fd, stderr, self.dir)
        finally:
            os.close(write_fd)
        self._stdout = os.fdopen(read_fd, "rb", buffering=0)
        self.out = Lines(read_fd)

    # ---- observing ---------------------------------------------------------------------------------
    def expect(self, wanted: str, timeout: float = TIMEOUT) -> None:
        assert self.out is not None
        self.out.expect(wanted, timeout)

    def ready(self, timeout: float = TIMEOUT) -> int:
        """Block until the JVM prints `ready (pid: N)`; N as the container sees it."""
        assert self.out is not None
        return int(self.out.expect(READY, timeout).group(1))

    def stdout_lines(self, timeout: float = TIMEOUT) -> list[str]:
        """Every stdout line up to the end (all writers gone: the container has exited)."""
        assert self.out is not None
        return self.out.rest(timeout)

    def stderr(self) -> str:
        if self.err is not None:
            return self.err.text("err")
        return self.stderr_path.read_text(errors="replace")

    def inspect(self) -> dict[str, Any]:
        found = json.loads(podman("container", "inspect", self.name).stdout)
        assert isinstance(found, list) and found, f"podman inspect {self.name}: {found!r}"
        record = found[0]
        assert isinstance(record, dict)
        return record

    def init_pid(self) -> int:
        """PID 1 of the container as the host sees it (`podman inspect`: State.Pid)."""
        pid = int(self.inspect()["State"]["Pid"])
        assert pid > 0, f"{self.name} is not running"
        return pid

    def log(self) -> list[dict[str, Any]]:
        """lifecycle's own JSON log lines (LIFECYCLE_LOG_FORMAT=json) from the container's stderr."""
        records = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:  # a JVM line that merely starts with a brace
                    continue
                if isinstance(record, dict) and record.get("logger") == "lifecycle":
                    records.append(record)
        return records

    def transitions(self) -> list[tuple[str, str]]:
        return [(r["source"], r["dest"]) for r in self.log() if r["event"] == "transition"]

    def termination_message(self) -> str:
        return self.termination_log.read_text(errors="replace")

    def upper_entries(self) -> dict[str, str]:
        """What the container wrote to its top layer (the overlay's upper directory, from `podman inspect`):
        {path: 'dir' | 'file' | other}, mount points included, podman's own files (PODMAN_WRITES) left out."""
        upper = Path(self.inspect()["GraphDriver"]["Data"]["UpperDir"])
        podmans = {str(parent) for own in PODMAN_WRITES for parent in Path(own).parents}  # /etc, /run
        found = {}
        for path in sorted(upper.rglob("*")):
            kind = "symlink" if path.is_symlink() else "dir" if path.is_dir() else "file" if path.is_file() else "other"
            name = "/" + str(path.relative_to(upper))
            if PODMAN_WRITES.get(name) != kind and not (kind == "dir" and name in podmans):
                found[name] = kind
        return found

    def oom_killed(self) -> bool:
        """conmon saw an OOM kill in the container's memory cgroup: its `oom` file in its working directory (see
        Watched), or `podman inspect`'s State.OOMKilled (which podman 4.3.1 with conmon 2.1.6 leaves false)."""
        state = self.state if self.state is not None else self.inspect()
        return (self.dir / "oom").exists() or bool(state["State"]["OOMKilled"])

    def oom_kills(self) -> int:
        """The kernel's OOM kills since the container started (/proc/vmstat oom_kill). Host-wide: the container's
        memory cgroup, where the count is the container's own, is removed with the container when PID 1 exits."""
        return host_oom_kills() - self.oom_kills_before

    # ---- acting ------------------------------------------------------------------------------------
    def exec(self, args: Sequence[str]) -> Exec:
        started = Exec(self, args, f"exec-{len(self.execs)}")
        self.execs.append(started)
        return started

    def kill(self, sig: str) -> None:
        """`podman kill -s SIG`: the signal to the container's PID 1."""
        podman("kill", "-s", sig, self.name)

    def wait(self, timeout: float = TIMEOUT) -> Result:
        """Block until PID 1 has exited and podman has recorded it (the attached client exits), bounded; its
        status is the container's ExitCode in `podman inspect`, as the kubelet reads it from the runtime."""
        assert self.client is not None
        assert self.client.wait(timeout), f"container still running after {timeout}s:\n{self.stderr()}"
        if self.state is None:
            self.state = self.inspect()
        state = self.state["State"]
        assert state["Status"] == "exited", f"{self.name}: podman run exited but the container is {state}"
        assert self.client.process.returncode == state["ExitCode"], (self.client.process.returncode, state)
        return Result(int(state["ExitCode"]), self.client.started_at, self.client.exited_at,
                      wall(str(state["FinishedAt"])))  # fmt: skip

    def running(self) -> bool:
        return self.client is not None and not self.client.exited.is_set()

    def stop(self, grace: int) -> tuple[Result, bool]:
        """The kubelet's stop, `podman stop -t GRACE`: the stop signal, at most GRACE seconds, then SIGKILL.
        (result, SIGKILL sent: podman's own warning says so)."""
        done = podman("stop", "-t", str(grace), self.name, timeout=grace + COMMAND_TIMEOUT)
        return self.wait(), SIGKILL_SENT in done.stderr

    def close(self) -> None:
        """Remove the container, whatever happened (`podman rm -f`), and every client process by PID."""
        for started in self.execs:
            started.close()
        if self.client is not None:
            podman("rm", "-f", "-t", "0", self.name, timeout=CLEANUP_TIMEOUT * 2, check=False)
            if not self.client.wait(CLEANUP_TIMEOUT):
                self.client.close()
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        if self.err is not None and self.client is not None and self.client.process.stderr is not None:
            with contextlib.suppress(TimeoutError):  # a writer outlived the container: its reader is a daemon
                self.err.wait_closed(CLEANUP_TIMEOUT)
            self.client.process.stderr.close()
