"""One container as Kubernetes runs it through containerd and runc, driven by hand.

Each container gets an overlay mount (lower: the cached image; upper and work: the test's own directory),
as containerd's snapshotter does, and the config.json of spec.py. `runc run -d` starts it under
tests/helpers/container/shim.py, which stays as its parent (see there), and `runc exec -d --process process.json`
runs the preStop command the same way, with the container's own user, environment, working directory,
capabilities and rlimits, as containerd builds an exec's process. The kubelet's stop is `runc kill ID TERM`,
a grace period, then `runc kill ID KILL`. Nothing sleeps: every wait is a poll on a pidfd or a pipe, bounded.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import select
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from examples.spark.output import Output
from tests.helpers.container.spec import CGROUP_PARENT, SYSTEM_PATH, Assets, Options, container_spec
from tests.helpers.processes import Lines, kill_tree
from tests.helpers.supervised import READY

RUNC = shutil.which("runc", path=SYSTEM_PATH)
RUNC_ROOT = "/run/lifecycle-tests/runc"  # runc --root: this suite's container state, apart from anyone else's
SHIM = Path(__file__).with_name("shim.py")
TIMEOUT = 60.0  # seconds for any one wait; JVM start-up in a 2-core container under load is the slow part
CLEANUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Result:
    """How a container's PID 1, or an exec'd process, ended, as the shim saw it."""

    status: int | None  # 128+N for signal N; None when runc itself failed
    runc_code: int
    started_at: float  # CLOCK_MONOTONIC, comparable across processes
    runc_returned_at: float
    exited_at: float
    exited_wall: float  # time.time(), to compare with lifecycle's log timestamps

    @classmethod
    def load(cls, path: Path) -> Result:
        data = json.loads(path.read_text())
        return cls(
            data["status"], data["runc_code"], data["started_at"], data["runc_returned_at"],
            data["exited_at"], data["exited_wall"],
        )  # fmt: skip


def runc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A runc command against this suite's state directory, bounded."""
    assert RUNC is not None
    done = subprocess.run(
        [RUNC, "--root", RUNC_ROOT, *args], capture_output=True, text=True, timeout=CLEANUP_TIMEOUT, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"runc {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def wait_process(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Block until `process` exits (its pidfd turns readable), at most `timeout` seconds; True once it has."""
    if process.poll() is not None:
        return True
    pidfd = os.pidfd_open(process.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return bool(ready) and process.wait(0) is not None


class Exec:
    """A process started in the container with `runc exec -d` under a shim (the kubelet's preStop exec)."""

    def __init__(self, container: Container, args: Sequence[str], name: str) -> None:
        self.dir = container.dir / name
        self.dir.mkdir()
        process = copy.deepcopy(container.spec["process"])  # containerd: the container's process, new args
        process["args"] = list(args)
        (self.dir / "process.json").write_text(json.dumps(process))
        self.result_path = self.dir / "result.json"
        self.stdout_path, self.stderr_path = self.dir / "stdout", self.dir / "stderr"
        assert RUNC is not None
        command = [
            sys.executable, "-I", str(SHIM), str(self.result_path), str(self.dir / "pid"), "--",
            RUNC, "--root", RUNC_ROOT, "exec", "-d", "--pid-file", str(self.dir / "pid"),
            "--process", str(self.dir / "process.json"), container.id,
        ]  # fmt: skip
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)

    def wait(self, timeout: float = TIMEOUT) -> Result:
        assert wait_process(self.process, timeout), f"exec still running after {timeout}s: {self.stderr()}"
        return Result.load(self.result_path)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            kill_tree(self.process.pid)  # the shim, and what it holds: runc, or the exec'd process it adopted
            wait_process(self.process, CLEANUP_TIMEOUT)


class Container:
    """One container: overlay root, config.json, PID 1 under a shim; close() tears everything down."""

    def __init__(self, assets: Assets, options: Options, directory: Path, cid: str) -> None:
        self.assets, self.options, self.dir, self.id = assets, options, directory, cid
        self.upper, self.rootfs = directory / "upper", directory / "bundle" / "rootfs"
        self.termination_log = directory / "termination-log"
        self.stderr_path = directory / "stderr"
        self.result_path = directory / "result.json"
        self.execs: list[Exec] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.mounted = False
        self.spec: dict[str, Any] = {}
        self._stdout: IO[bytes] | None = None
        self.out: Lines | None = None
        self.err: Output | None = None  # with Options.capture_stderr: every stderr line, waited for with wait_for

    def start(self) -> None:
        """Lay out the bundle, mount the overlay and `runc run -d` under the shim; returns at once."""
        for path in (self.upper, self.dir / "work", self.rootfs):
            path.mkdir(parents=True)
        for image_path in self.options.whiteouts:  # as containerd applies a layer that deletes a file
            target = self.upper / image_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))  # a 0:0 character device: overlayfs' whiteout
        for image_path, (content, mode) in self.options.replaced.items():
            target = self.upper / image_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(mode)
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={self.assets.image},upperdir={self.upper},workdir={self.dir / 'work'}", str(self.rootfs)],
            check=True, timeout=CLEANUP_TIMEOUT, capture_output=True,
        )  # fmt: skip
        self.mounted = True
        if self.options.termination_log:
            self.termination_log.touch()
            self.termination_log.chmod(0o666)  # the kubelet creates it 0666
        self.spec = container_spec(self.assets, self.options, self.rootfs, self.id, self.termination_log)
        (self.dir / "bundle" / "config.json").write_text(json.dumps(self.spec, indent=1))
        assert RUNC is not None
        command = [
            sys.executable, "-I", str(SHIM), str(self.result_path), str(self.dir / "pid"), "--",
            RUNC, "--root", RUNC_ROOT, "run", "-d", "--pid-file", str(self.dir / "pid"),
            "--bundle", str(self.dir / "bundle"), self.id,
        ]  # fmt: skip
        read_fd, write_fd = os.pipe()
        try:
            if self.options.capture_stderr:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=write_fd,
                                                stderr=subprocess.PIPE)  # fmt: skip
                self.err = Output(self.process, self.id)
            else:
                with open(self.stderr_path, "wb") as stderr:
                    self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=stderr)
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

    def init_pid(self) -> int:
        """PID 1 of the container as the host sees it (`runc state`: known from `runc create` on)."""
        return int(json.loads(runc("state", self.id).stdout)["pid"])

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
        """What the container wrote to its top layer: {path: 'dir' | 'file' | other}, mount points included."""
        found = {}
        for path in sorted(self.upper.rglob("*")):
            kind = "dir" if path.is_dir() else "file" if path.is_file() else "other"
            found["/" + str(path.relative_to(self.upper))] = kind
        return found

    def oom_kills(self) -> int:
        """The kernel's OOM kills in the container's memory cgroup (v1 memory.oom_control; v2 memory.events)."""
        for path, key in ((f"/sys/fs/cgroup/memory{CGROUP_PARENT}/{self.id}/memory.oom_control", "oom_kill"),
                          (f"/sys/fs/cgroup{CGROUP_PARENT}/{self.id}/memory.events", "oom_kill")):  # fmt: skip
            if os.path.exists(path):
                for line in Path(path).read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        raise AssertionError(f"no memory cgroup found for {self.id}")

    # ---- acting ------------------------------------------------------------------------------------
    def exec(self, args: Sequence[str]) -> Exec:
        started = Exec(self, args, f"exec-{len(self.execs)}")
        self.execs.append(started)
        return started

    def kill(self, sig: str) -> None:
        """`runc kill ID SIG`: the signal to the container's PID 1, as the kubelet's stop sends it."""
        runc("kill", self.id, sig)

    def wait(self, timeout: float = TIMEOUT) -> Result:
        """Block until PID 1 has exited and the shim has reaped it, bounded."""
        assert self.process is not None
        assert wait_process(self.process, timeout), f"container still running after {timeout}s:\n{self.stderr()}"
        return Result.load(self.result_path)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float) -> tuple[Result, bool]:
        """The kubelet's stop: SIGTERM to PID 1, at most `grace` seconds, then SIGKILL. (result, SIGKILL sent)."""
        self.kill("TERM")
        assert self.process is not None
        if wait_process(self.process, grace):
            return self.wait(0), False
        runc("kill", self.id, "KILL", check=False)  # it may have exited since the grace ran out
        return self.wait(), True

    def close(self) -> None:
        """Tear down whatever is left, in order, whatever happened: processes, container, overlay, pipes."""
        for started in self.execs:
            started.close()
        if self.process is not None:
            if self.running():
                runc("kill", self.id, "KILL", check=False)
                if not wait_process(self.process, CLEANUP_TIMEOUT):
                    kill_tree(self.process.pid)
                    wait_process(self.process, CLEANUP_TIMEOUT)
            runc("delete", "-f", self.id, check=False)
        if self.mounted:
            if subprocess.run(["umount", str(self.rootfs)], check=False, timeout=CLEANUP_TIMEOUT).returncode != 0:
                subprocess.run(["umount", "-l", str(self.rootfs)], check=False, timeout=CLEANUP_TIMEOUT)
            self.mounted = False
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        if self.err is not None and self.process is not None and self.process.stderr is not None:
            with contextlib.suppress(TimeoutError):  # a writer outlived the container: its reader is a daemon
                self.err.wait_closed(CLEANUP_TIMEOUT)
            self.process.stderr.close()
