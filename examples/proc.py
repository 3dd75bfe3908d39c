"""Processes on this machine, as /proc shows them and pidfds hold them, and their output read as lines.

Shared by the pods (examples/pods.py), the Spark scenario (examples/spark/), the benchmarks (bench/) and the
tests (tests/helpers/). Every reader of /proc copes with a process that exits meanwhile; every wait is a
bounded select, never a sleep.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping

TIMEOUT = 30.0  # seconds for any one wait unless the caller says otherwise


# ---- /proc -----------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of `pid`, from every one of its threads (/proc/<pid>/task/*/children): a JVM forks
    from its task threads, and a thread's children are listed only under that thread. [] once it has gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # already gone
        return []
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(part) for part in handle.read().split())
        except OSError:  # the thread exited meanwhile
            continue
    return sorted(found)


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
    """/proc/<pid>/cmdline as a list ([] once it has gone)."""
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


# ---- pidfds ----------------------------------------------------------------------------------------------


def wait_exits(pidfds: Mapping[str, int], timeout: float = TIMEOUT) -> dict[str, float]:
    """Block until every process behind `pidfds` has exited (its pidfd turns readable), looking at least once;
    {name: time.monotonic() when its exit was seen}. TimeoutError names those still running at the bound."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(pidfds):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd for name, fd in pidfds.items() if name not in seen], [], [], max(0.0, left))
        now = time.monotonic()
        for name, fd in pidfds.items():
            if fd in ready and name not in seen:
                seen[name] = now
        if len(seen) < len(pidfds) and left <= 0:
            raise TimeoutError(f"still running after {timeout:g}s: {sorted(set(pidfds) - set(seen))}")
    return seen


def kill_by_pidfd(pids: Iterable[int]) -> None:
    """SIGKILL each process through a pidfd, so a PID recycled meanwhile is never hit."""
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # exited meanwhile
            continue
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:  # exited meanwhile
            pass
        finally:
            os.close(pidfd)


# ---- output ----------------------------------------------------------------------------------------------


class Streams:
    """A process's stdout and stderr, read as lines (with the time each arrived) without ever blocking unbounded.

    `pump` selects on both pipes itself; a caller that selects on more (pidfds) passes what was ready to `read`.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.names = {process.stdout.fileno(): "out", process.stderr.fileno(): "err"}  # the pipes still open
        self.partial = {"out": b"", "err": b""}
        self.lines: dict[str, list[tuple[float, str]]] = {"out": [], "err": []}
        for fd in self.names:
            os.set_blocking(fd, False)

    def read(self, ready: Iterable[int], now: float) -> None:
        """Read the pipes among `ready` (select said so), their complete lines stamped `now`."""
        for fd in [fd for fd in ready if fd in self.names]:
            name = self.names[fd]
            data = os.read(fd, 65536)
            if not data:
                del self.names[fd]
                data = b"\n" if self.partial[name] else b""
            *complete, self.partial[name] = (self.partial[name] + data).split(b"\n")
            self.lines[name] += [(now, line.decode("utf-8", "replace")) for line in complete]

    def pump(self, deadline: float) -> bool:
        """Read what arrives before the deadline; False when the deadline has passed or both streams ended."""
        left = deadline - time.monotonic()
        if left <= 0 or not self.names:
            return False
        ready, _, _ = select.select(list(self.names), [], [], left)
        self.read(ready, time.monotonic())
        return True

    def wait_for(self, text: str, stream: str = "out", count: int = 1, timeout: float = TIMEOUT) -> list[str]:
        """Block until `count` lines of the stream contain `text`; those lines."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for _, line in self.lines[stream] if text in line]
            if len(found) >= count:
                return found
            if not self.pump(deadline):
                raise AssertionError(f"{count} x {text!r} not on std{stream} within {timeout}s:\n{self.dump()}")

    def to_eof(self, timeout: float = TIMEOUT) -> None:
        """Block until both streams have ended (every writer has exited)."""
        deadline = time.monotonic() + timeout
        while self.names:
            if not self.pump(deadline):
                raise AssertionError(f"output still open after {timeout}s:\n{self.dump()}")

    def text(self, stream: str) -> str:
        return "\n".join(line for _, line in self.lines[stream])

    def dump(self) -> str:
        return f"--- stdout\n{self.text('out')}\n--- stderr\n{self.text('err')}"
