"""Processes as the tests see them: clean-up by PID, bounded waits, /proc's state and signal masks, output as lines.

What the pods, the Spark scenario and the benchmarks share with the tests (children, descendants, pidfd waits
and kills, Streams) is in examples/proc.py; this is what only the tests need.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import AnyStr

import psutil

from examples.proc import wait_exits

TIMEOUT = 20.0  # seconds for any one wait; every step takes well under one

# ---- clean-up and bounded waits ---------------------------------------------------------------------------


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant it still has, by PID."""
    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:  # already gone: nothing to kill
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:  # exited meanwhile
            pass


def communicate_bounded(process: subprocess.Popen[AnyStr], timeout: float) -> tuple[AnyStr, AnyStr]:
    """communicate() with a bound; whatever is left of the process tree is killed by PID either way."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.communicate()
        raise
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()


def wait_exited(pidfds: Sequence[int], timeout: float = TIMEOUT) -> None:
    """Block until every process behind `pidfds` has exited (each pidfd turns readable), bounded."""
    wait_exits({f"pidfd {fd}": fd for fd in pidfds}, timeout)


def is_alive(pidfd: int) -> bool:
    """A pidfd becomes readable when its process exits; a zero-timeout poll says whether it has."""
    return not select.select([pidfd], [], [], 0)[0]


def reaped(pidfd: int) -> bool:
    """True once the process behind `pidfd` has been waited for (a zombie still takes signal 0)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return True
    return False


# ---- /proc: state and signal masks ------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from the state field on: [state, ppid, pgrp, session, …]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()


def status_field(pid: int, name: str) -> str:
    """One field of /proc/<pid>/status (NSpid, SigBlk, …), as text."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def signal_bits(signals: Sequence[int]) -> int:
    """The /proc/<pid>/status bitmask (SigBlk, SigIgn) for a set of signals."""
    return sum(1 << (sig - 1) for sig in signals)


def signal_set(pid: int, name: str) -> set[int]:
    """The signals in a /proc/<pid>/status mask (SigBlk, ShdPnd, …)."""
    mask = int(status_field(pid, name).split()[0], 16)
    return {sig for sig in range(1, 65) if mask >> (sig - 1) & 1}


# ---- output -----------------------------------------------------------------------------------------------


class Lines:
    """Lines from a pipe, read as they arrive with a bounded select: no sleeping, no polling."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.seen: list[str] = []
        self.eof = False

    def next(self, deadline: float) -> str | None:
        """The next line, or None at end of file; AssertionError at the deadline."""
        while b"\n" not in self.buffer and not self.eof:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready:
                raise AssertionError(f"no line within the time allowed; lines so far: {self.seen}")
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True
        if not self.buffer:
            return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        text = line.decode("utf-8", "replace")
        self.seen.append(text)
        return text

    def expect(self, wanted: str | re.Pattern[str], timeout: float = TIMEOUT) -> re.Match[str]:
        """Read until a line matches `wanted` in full (text or pattern); earlier lines stay in `seen`."""
        pattern = wanted if isinstance(wanted, re.Pattern) else re.compile(re.escape(wanted))
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(deadline)
            if line is None:
                raise AssertionError(f"end of output before {pattern.pattern!r}; lines: {self.seen}")
            match = pattern.fullmatch(line)
            if match:
                return match

    def rest(self, timeout: float = TIMEOUT) -> list[str]:
        """Every remaining line up to end of file."""
        deadline = time.monotonic() + timeout
        while self.next(deadline) is not None:
            pass
        return self.seen
