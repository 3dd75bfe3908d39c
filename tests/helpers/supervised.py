"""Supervised runs: lifecycle as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc lifecycle …`), or
as a plain child of the test, where it makes itself a child subreaper; what it printed, how it ended.

The child is usually tests/helpers/print_signals.py (PRINT_SIGNALS), which prints `ready (pid: N)` and then one
line per signal; tests block on those lines (bounded by select) and never sleep. `Runs` (the `runs` fixture)
kills every run by PID when the test ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from examples.proc import children
from tests.helpers.processes import TIMEOUT, Lines, stat_fields, status_field

REPO_ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = str(Path(sys.executable).with_name("lifecycle"))
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
UNSHARE = shutil.which("unshare", path=SYSTEM_PATH)
PRINT_SIGNALS = (sys.executable, "-m", "tests.helpers.print_signals")
READY = re.compile(r"ready \(pid: (\d+)\)")
CAN_UNSHARE = os.geteuid() == 0 and UNSHARE is not None
needs_unshare = pytest.mark.skipif(not CAN_UNSHARE, reason="needs root and unshare(1) for a new PID namespace")


def env_for(**variables: str) -> dict[str, str]:
    """A minimal environment for lifecycle and its Python helpers, plus `variables`."""
    return {
        "PATH": SYSTEM_PATH,
        "PYTHONPATH": str(REPO_ROOT),
        "LIFECYCLE_TERMINATION_LOG": "",  # hermetic: never write the host's /dev/termination-log
        **variables,
    }


def error_lines(outcome: Outcome) -> list[str]:
    """lifecycle's error lines, from `error: ` on (text format: `lifecycle: [  0.123s] error: …`)."""
    return [line.split("] ", 1)[1] for line in outcome.stderr.splitlines() if "] error: " in line]


def no_traceback(text: str) -> None:
    """No Python traceback in `text` (lifecycle's stderr, a pod's output): every failure is one line."""
    assert "Traceback" not in text, text


# tini's subreaper proxy (test/run_inner_tests.py), as a script: lifecycle runs as its child, so whatever
# lifecycle leaves behind when it exits, alive or a zombie it never reaped, is reparented here rather than to the
# host's init (which may reap it first and hide the leak). The proxy prints `left behind: {pid: state}` after
# lifecycle exits, then kills and reaps those and exits with lifecycle's code.
SUBREAPER_PROXY = """
import ctypes, json, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
_, status = os.waitpid(pid, 0)
left = {}
for task in os.listdir("/proc/self/task"):
    for child in open(f"/proc/self/task/{task}/children").read().split():
        stat = open(f"/proc/{child}/stat").read()
        left[child] = stat[stat.rfind(")") + 2]
print("left behind: " + json.dumps(left), flush=True)
for child in left:
    os.kill(int(child), signal.SIGKILL)
for child in left:
    os.waitpid(int(child), 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
LEFT_BEHIND = re.compile(r"left behind: (\{.*\})")


def left_behind(outcome: Outcome) -> dict[str, str]:
    """What SUBREAPER_PROXY adopted when lifecycle exited: {pid: state}, empty when lifecycle left nothing."""
    match = LEFT_BEHIND.fullmatch(outcome.lines[-1])
    assert match, outcome.lines
    found: dict[str, str] = json.loads(match.group(1))
    return found


@dataclass
class Outcome:
    """How a run ended: exit code, every stdout line, lifecycle's stderr."""

    code: int
    lines: list[str]
    stderr: str


@dataclass
class Supervised:
    """One lifecycle run, as PID 1 of a new PID namespace (pid1=True) or as a plain child of the test."""

    argv: Sequence[str]
    env: dict[str, str]
    pid1: bool
    stdin: int | IO[Any] = subprocess.DEVNULL
    cwd: Path = REPO_ROOT
    preexec_fn: Callable[[], None] | None = None
    wrapper: Sequence[str] = (LIFECYCLE,)
    proxy: bool = False  # run lifecycle under SUBREAPER_PROXY, which reports what lifecycle leaves behind
    process: subprocess.Popen[bytes] = field(init=False)
    out: Lines = field(init=False)
    _stderr: IO[bytes] = field(init=False)
    _pid: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # A file, not a pipe, so lifecycle never blocks on its log; closed in kill().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        prefix = [UNSHARE, "--pid", "--fork", "--mount-proc", "--kill-child"] if self.pid1 else []
        if self.proxy:
            prefix = [*prefix, sys.executable, "-I", "-c", SUBREAPER_PROXY]
        self.process = subprocess.Popen(
            [*prefix, *self.wrapper, *self.argv],
            env=self.env,
            cwd=self.cwd,
            stdin=self.stdin,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            preexec_fn=self.preexec_fn,  # only to give lifecycle an inherited signal state
        )
        assert self.process.stdout is not None
        self.out = Lines(self.process.stdout.fileno())

    @property
    def pid(self) -> int:
        """lifecycle's PID as the test sees it (under unshare or the proxy: their only child)."""
        if self._pid is None:
            if not self.pid1 and not self.proxy:
                self._pid = self.process.pid
            else:
                found = children(self.process.pid)
                assert len(found) == 1, f"the wrapper should have exactly one child, has {found}"
                self._pid = found[0]
        return self._pid

    def ready(self, timeout: float = TIMEOUT) -> int:
        """Block until the child prints `ready (pid: N)`; N as the child sees it."""
        return int(self.out.expect(READY, timeout).group(1))

    def expect(self, wanted: str | re.Pattern[str], timeout: float = TIMEOUT) -> re.Match[str]:
        return self.out.expect(wanted, timeout)

    def send(self, sig: int) -> None:
        """Send `sig` to lifecycle itself (PID 1 of its namespace, from outside it, when pid1)."""
        os.kill(self.pid, sig)

    def host_pid(self, pid: int) -> int:
        """The test's PID for a process lifecycle's namespace calls `pid` (NSpid's last field)."""
        if not self.pid1:
            return pid
        stack = [self.pid]
        while stack:
            candidate = stack.pop()
            try:
                if int(status_field(candidate, "NSpid").split()[-1]) == pid:
                    return candidate
            except FileNotFoundError:  # exited meanwhile
                continue
            stack.extend(children(candidate))
        raise AssertionError(f"no process with namespace PID {pid} under lifecycle (pid {self.pid})")

    def zombies(self) -> list[int]:
        """Zombies lifecycle is responsible for: in its PID namespace (pid1), else among its children."""
        if self.pid1:
            namespace = os.readlink(f"/proc/{self.pid}/ns/pid")
            members = []
            for name in os.listdir("/proc"):
                if name.isdigit():
                    try:
                        if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                            members.append(int(name))
                    except OSError:  # exited while listing
                        continue
        else:
            members = children(self.pid)
        found = []
        for pid in members:
            try:
                if stat_fields(pid)[0] == "Z":
                    found.append(pid)
            except FileNotFoundError:  # reaped while listing
                continue
        return found

    def running(self) -> bool:
        """Whether lifecycle is still there (one look, not a wait)."""
        return self.process.poll() is None

    def finish(self, timeout: float = TIMEOUT) -> Outcome:
        """Read stdout to its end and wait for the exit, both bounded."""
        lines = self.out.rest(timeout)
        code = self.process.wait(timeout)
        self._stderr.seek(0)
        return Outcome(code, lines, self._stderr.read().decode("utf-8", "replace"))

    def kill(self) -> None:
        """SIGKILL lifecycle's whole tree by PID (as PID 1 that ends its namespace), then the wrapper."""
        family: list[int] = []
        if self.running():
            try:
                family = [self.pid]
            except AssertionError:  # unshare has not forked yet
                family = []
        stack = list(family)
        while stack:
            stack.extend(found := children(stack.pop()))
            family.extend(found)
        for pid in [self.process.pid, *family]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # already gone
                pass
        self.process.wait(TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


class Runs:
    """Starts Supervised runs and kills every one of them (and any extra PID recorded) at the end."""

    def __init__(self) -> None:
        self.started: list[Supervised] = []
        self.extra: list[int] = []

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, *, pid1: bool, **options: Any
    ) -> Supervised:
        run = Supervised(argv, env if env is not None else env_for(), pid1, **options)
        self.started.append(run)
        return run

    def run(self, argv: Sequence[str], env: dict[str, str] | None = None, *, pid1: bool, **options: Any) -> Outcome:
        """Start, and wait for the end."""
        return self.start(argv, env, pid1=pid1, **options).finish()

    def close(self) -> None:
        for run in self.started:
            run.kill()
        for pid in self.extra:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # already gone
                pass
