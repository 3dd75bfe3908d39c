"""PID 1 supervision, tini's and dumb-init's matrices and then some (runtime-notes §1.2, §1.5).

Each behaviour runs two ways (the `pid_mode` fixture): as PID 1 of a new PID namespace (`unshare --pid --fork
--mount-proc lifecycle …`, so the kernel's rules for init apply: SIG_DFL signals are dropped, orphans come to
it, and when it exits everything left is SIGKILLed), and as a plain child of the test, where lifecycle makes
itself a child subreaper. The child is usually tests/helpers/print_signals.py, which prints `ready (pid: N)`
and then one line per signal; tests block on those lines (bounded by select) and never sleep.

The harness here (`Supervised`, `Runs`, `env_for`) is imported by test_decommission_jvm.py and
test_supervisor_states.py.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = str(Path(sys.executable).with_name("lifecycle"))
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
UNSHARE = shutil.which("unshare", path=SYSTEM_PATH)
TINI = shutil.which("tini", path=SYSTEM_PATH)
TIMEOUT = 20.0  # seconds for any one wait; every step takes well under one
PRINT_SIGNALS = (sys.executable, "-m", "tests.helpers.print_signals")
READY = re.compile(r"ready \(pid: (\d+)\)")
ORPHAN = re.compile(r"orphan \(pid: (\d+)\)")
CAN_UNSHARE = os.geteuid() == 0 and UNSHARE is not None
needs_unshare = pytest.mark.skipif(not CAN_UNSHARE, reason="needs root and unshare(1) for a new PID namespace")

# What lifecycle must forward, restated from tini/dumb-init rather than imported (STYLE rule 16): every
# signal 1-31 except the uncatchable, SIGCHLD (reaping), the three lifecycle raises on itself (PIPE, TTIN,
# TTOU) and the synchronous faults; plus the real-time signals, which dumb-init's 1-31 table cannot express.
NOT_FORWARDED = {
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGTTIN, signal.SIGTTOU,
    signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV, signal.SIGSYS,
}  # fmt: skip
FORWARDED = sorted({*range(1, 32)} - {int(s) for s in NOT_FORWARDED} | {*range(signal.SIGRTMIN, signal.SIGRTMAX + 1)})


def env_for(**variables: str) -> dict[str, str]:
    """A minimal environment for lifecycle and its Python helpers, plus `variables`."""
    return {
        "PATH": SYSTEM_PATH,
        "PYTHONPATH": str(REPO_ROOT),
        "LIFECYCLE_TERMINATION_LOG": "",  # hermetic: never write the host's /dev/termination-log
        **variables,
    }


def children(pid: int) -> list[int]:
    """The direct children of `pid` (host PIDs), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # already gone
        return []
    for task in tasks:
        try:
            found.extend(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except FileNotFoundError:  # the thread exited meanwhile
            continue
    return sorted(found)


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from the state field on: [state, ppid, pgrp, session, …]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def signal_bits(signals: Sequence[int]) -> int:
    """The /proc/<pid>/status bitmask (SigBlk, SigIgn) for a set of signals."""
    return sum(1 << (sig - 1) for sig in signals)


def reaped(pidfd: int) -> bool:
    """True once the process behind `pidfd` has been waited for (a zombie still takes signal 0)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return True
    return False


def wait_exited(pidfds: Sequence[int], timeout: float = TIMEOUT) -> None:
    """Block until every process behind `pidfds` has exited (each pidfd turns readable), bounded."""
    pending = set(pidfds)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending:
        left = deadline - time.monotonic()
        events = poller.poll(max(0.0, left) * 1000)
        if not events and left <= 0:
            raise AssertionError(f"{len(pending)} of {len(pidfds)} processes still running after {timeout}s")
        for fd, _ in events:
            poller.unregister(fd)
            pending.discard(fd)


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


def no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.stderr, outcome.stderr


# ---- exit codes ------------------------------------------------------------------------------------


# Runs lifecycle once per exit code, four at a time. Each run forks from a process that has imported
# lifecycle.cli already and calls the console script's entry point, `main(argv)`: the run is the real one (argv,
# settings, spawn, exec into the lean supervisor, exit status), minus ~0.25 CPU-s of interpreter and pydantic
# start-up that would make 256 runs cost over a minute on two cores.
EXIT_CODE_DRIVER = """
import ctypes, json, os
from lifecycle.cli import main
import lifecycle.handover, lifecycle.identity, lifecycle.plan, lifecycle.resolve, lifecycle.settings  # lazy in cli

def start(code):
    others = ",".join(f"{other}:{(other + 1) % 256}" for other in range(256) if other != code)
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            os.environ["LIFECYCLE_EXIT_REMAP"] = others
            status = main(["sh", "-c", f"exit {code}"])  # supervise mode execs away: no return
        finally:
            os._exit(status)
    return pid

pending, running, results = list(range(256)), {}, {}
while pending or running:
    while pending and len(running) < 4:
        code = pending.pop(0)
        running[start(code)] = code
    pid, status = os.waitpid(-1, 0)
    results[running.pop(pid)] = os.waitstatus_to_exitcode(status)
print(json.dumps(results), flush=True)
"""


def test_every_exit_code_passes_through_even_when_the_other_codes_are_remapped(runs: Runs) -> None:
    """lifecycle should exit N when the child exits N, for all 256 codes, whatever the remap says of other codes."""
    driver = runs.start(
        [], env_for(LIFECYCLE_LOG_LEVEL="error"), pid1=False, wrapper=(sys.executable, "-c", EXIT_CODE_DRIVER)
    )
    outcome = driver.finish(timeout=120)
    assert outcome.code == 0, outcome.stderr
    results = {int(code): status for code, status in json.loads(outcome.lines[-1]).items()}
    assert results == {code: code for code in range(256)}
    no_traceback(outcome)


@needs_unshare
@pytest.mark.pid1
@pytest.mark.parametrize("code", [0, 1, 2, 42, 126, 127, 128, 129, 143, 254, 255])
def test_exit_code_passes_through_as_pid1(runs: Runs, code: int) -> None:
    """lifecycle as PID 1 should exit with the child's own exit code."""
    assert runs.run(["sh", "-c", f"exit {code}"], pid1=True).code == code


@pytest.mark.parametrize(("make", "code"), [("missing", 127), ("not-executable", 126)])
def test_exec_failure_exits_126_or_127_with_one_line(
    runs: Runs, tmp_path: Path, pid1: bool, make: str, code: int
) -> None:
    """lifecycle should exit 127 for a command that does not exist and 126 for one it cannot execute."""
    command = tmp_path / "command"
    if make == "not-executable":
        command.write_text("#!/bin/sh\nexit 0\n")
        command.chmod(0o644)
    outcome = runs.run([str(command)], pid1=pid1)
    assert outcome.code == code
    errors = [line for line in outcome.stderr.splitlines() if "error:" in line]
    reason = os.strerror(errno.ENOENT if code == 127 else errno.EACCES)
    assert len(errors) == 1 and errors[0].endswith(f"error: cannot execute {command}: {reason}"), outcome.stderr
    no_traceback(outcome)


# ---- death by signal -------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_signal_the_child_does_not_handle_gives_128_plus_n(runs: Runs, pid1: bool, sig: signal.Signals) -> None:
    """lifecycle should forward a signal it receives and exit 128+N when the child dies of it."""
    run = runs.start([*PRINT_SIGNALS, "--default", str(int(sig))], pid1=pid1)
    run.ready()
    run.send(sig)
    outcome = run.finish()
    assert outcome.code == 128 + sig
    assert f"killed by {sig.name}" in outcome.stderr
    no_traceback(outcome)


def test_pwr_is_forwarded_and_gives_158_when_another_signal_triggers_decommissioning(runs: Runs, pid1: bool) -> None:
    """With LIFECYCLE_DECOMMISSION_TRIGGER=USR2, SIGPWR should be forwarded like any other and kill the child: 158."""
    env = env_for(LIFECYCLE_DECOMMISSION_TRIGGER="USR2")
    run = runs.start([*PRINT_SIGNALS, "--default", "PWR"], env, pid1=pid1)
    run.ready()
    run.send(signal.SIGPWR)
    outcome = run.finish()
    assert outcome.code == 128 + signal.SIGPWR
    assert "decommission" not in outcome.stderr


def test_exit_remap_turns_a_sigtermed_child_into_0(runs: Runs, pid1: bool) -> None:
    """LIFECYCLE_EXIT_REMAP=143:0 should make a child killed by SIGTERM count as success (tini -e 143)."""
    run = runs.start([*PRINT_SIGNALS, "--default", "TERM"], env_for(LIFECYCLE_EXIT_REMAP="143:0"), pid1=pid1)
    run.ready()
    run.send(signal.SIGTERM)
    outcome = run.finish()
    assert outcome.code == 0
    assert "exit code 143 remapped to 0" in outcome.stderr


# ---- forwarding ------------------------------------------------------------------------------------


def test_every_forwardable_signal_reaches_the_child(runs: Runs, pid1: bool) -> None:
    """Each of signals 1-31 that a supervisor can forward, and every real-time one, should reach the child once."""
    trigger = signal.SIGRTMAX  # so that SIGPWR is forwarded too; the trigger itself is the one left out
    run = runs.start(PRINT_SIGNALS, env_for(LIFECYCLE_DECOMMISSION_TRIGGER=str(int(trigger))), pid1=pid1)
    child = run.host_pid(run.ready())
    for sig in [s for s in FORWARDED if s != trigger]:
        run.send(sig)
        run.expect(str(sig), timeout=5)
    for sig in (signal.SIGPIPE, signal.SIGTTIN, signal.SIGTTOU):  # lifecycle's own business: not forwarded
        run.send(sig)
    run.send(signal.SIGUSR1)  # a sentinel: once it arrives, anything sent before it has been handled
    run.expect("10")
    os.kill(child, signal.SIGKILL)  # the one way to end a child that handles everything else
    outcome = run.finish()
    assert outcome.code == 128 + signal.SIGKILL
    numbers = [int(line) for line in outcome.lines if line.isdigit()]
    assert numbers == [*(s for s in FORWARDED if s != trigger), signal.SIGUSR1]
    no_traceback(outcome)


@pytest.mark.parametrize("group", [True, False], ids=["group", "single"])
def test_signal_group_decides_whether_the_grandchild_hears_signals(runs: Runs, pid1: bool, group: bool) -> None:
    """With LIFECYCLE_SIGNAL_GROUP=1 a signal should reach the child's whole process group; without, only the child."""
    env = env_for(LIFECYCLE_SIGNAL_GROUP="1" if group else "0")
    run = runs.start([*PRINT_SIGNALS, "--grandchild", "--exit-on", "TERM:0"], env, pid1=pid1)
    run.ready()
    run.send(signal.SIGUSR1)
    run.expect("10")
    if group and "grandchild 10" not in run.out.seen:  # its handler runs on its own schedule: wait for it
        run.expect("grandchild 10", timeout=5)
    run.send(signal.SIGTERM)  # the child exits 0; a grandchild still there gets SIGTERM as a leftover
    outcome = run.finish()
    assert outcome.code == 0
    assert ("grandchild 10" in outcome.lines) is group
    assert "grandchild 15" in outcome.lines  # forwarded to the group, or sent as a leftover descendant


# ---- signal state ----------------------------------------------------------------------------------


def ignore_hup_block_usr1() -> None:
    """In the started process: SIGHUP ignored (as under nohup) and SIGUSR1 blocked."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


@pytest.mark.parametrize("inherited", [False, True], ids=["clean", "hup-ignored-usr1-blocked"])
def test_child_gets_the_signal_state_lifecycle_was_started_with(runs: Runs, pid1: bool, inherited: bool) -> None:
    """The child's SigBlk and SigIgn should be those lifecycle started with, though lifecycle blocks everything."""
    # cat, not Python: the interpreter ignores SIGPIPE and SIGXFSZ itself before any code runs.
    outcome = runs.run(["cat", "/proc/self/status"], pid1=pid1, preexec_fn=ignore_hup_block_usr1 if inherited else None)
    assert outcome.code == 0
    state = dict(line.split(":\t", 1) for line in outcome.lines if line.startswith(("SigBlk", "SigIgn")))
    expected_blocked = signal_bits([signal.SIGUSR1]) if inherited else 0
    expected_ignored = signal_bits([signal.SIGHUP]) if inherited else 0
    assert int(state["SigBlk"], 16) == expected_blocked
    assert int(state["SigIgn"], 16) == expected_ignored


def test_running_child_has_nothing_blocked(runs: Runs, pid1: bool) -> None:
    """While it runs, the child's SigBlk should be empty and it should ignore only what Python itself ignores."""
    run = runs.start([*PRINT_SIGNALS, "--report-state"], pid1=pid1)
    child = run.host_pid(run.ready())
    reported = dict(line.split(":\t", 1) for line in run.out.seen if line.startswith("Sig"))
    python_ignores = signal_bits([signal.SIGPIPE, signal.SIGXFSZ])  # CPython's start-up, not lifecycle's
    assert int(reported["SigBlk"], 16) == 0
    assert int(reported["SigIgn"], 16) == python_ignores
    assert int(status_field(child, "SigBlk"), 16) == 0
    os.kill(child, signal.SIGKILL)
    assert run.finish().code == 128 + signal.SIGKILL


# ---- reaping and descendants -----------------------------------------------------------------------


def test_orphans_are_adopted_and_reaped_leaving_no_zombie(runs: Runs, pid1: bool) -> None:
    """100 orphans should be reparented to lifecycle (PID 1, or the subreaper) and reaped as they exit: no zombie."""
    run = runs.start([*PRINT_SIGNALS, "--orphans", "100", "--release-on", "USR1", "--exit-on", "TERM:0"], pid1=pid1)
    child = run.host_pid(run.ready())
    orphans = [pid for pid in children(run.pid) if pid != child]
    runs.extra.extend(orphans)
    assert len(orphans) == 100
    assert {int(stat_fields(pid)[1]) for pid in orphans} == {run.pid}  # PPid: lifecycle, not the host's init
    pidfds = [os.pidfd_open(pid) for pid in orphans]
    try:
        run.send(signal.SIGUSR1)  # the child closes the pipe the orphans block on: they all exit
        run.expect("10")
        wait_exited(pidfds)
        for _ in range(2):  # two round trips through lifecycle's loop: a reap pass ran after the last exit
            run.send(signal.SIGUSR2)
            run.expect("12")
        assert run.zombies() == []
        assert all(reaped(fd) for fd in pidfds)
    finally:
        for fd in pidfds:
            os.close(fd)
    run.send(signal.SIGTERM)
    assert run.finish().code == 0


@pytest.mark.parametrize("captured", [False, True], ids=["stderr-direct", "stderr-captured"])
def test_lifecycle_waits_for_a_descendant_shutting_down_after_the_child_exits(
    runs: Runs, pid1: bool, tmp_path: Path, captured: bool
) -> None:
    """After the main child exits, a leftover descendant should get SIGTERM, be waited for, and be heard on stderr.

    tini exits at once (krallin/tini#180): as PID 1 that has the kernel SIGKILL the descendant mid-shutdown.
    With a termination log (`captured`), the child's stderr reaches lifecycle's through lifecycle's own pipe,
    which the descendant inherited: what it writes while shutting down must still come out.
    """
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = env_for(LIFECYCLE_TERMINATION_LOG=str(termination_log) if captured else "")
    run = runs.start([*PRINT_SIGNALS, "--linger", "--exit-on", "USR2:7"], env, pid1=pid1, stdin=subprocess.PIPE)
    orphan = int(run.expect(ORPHAN).group(1))
    run.ready()
    runs.extra.append(run.host_pid(orphan))
    run.send(signal.SIGUSR2)  # the main child exits 7; the orphan is still running
    run.expect("12")
    run.expect(f"lingering (pid: {orphan})")  # lifecycle sent it SIGTERM
    assert run.running()  # and is still waiting: the orphan has not finished its shutdown
    assert run.process.stdin is not None
    run.process.stdin.write(b"done\n")
    run.process.stdin.flush()
    outcome = run.finish()
    assert outcome.code == 7
    assert outcome.lines[-1] == f"finished (pid: {orphan})"
    assert "1 descendant process(es) left: SIGTERM" in outcome.stderr
    assert f"orphan finished its shutdown (pid: {orphan})" in outcome.stderr, "the descendant's stderr was lost"


@pytest.mark.pid1
@needs_unshare
@pytest.mark.skipif(TINI is None, reason="tini is not installed")
def test_tini_as_pid1_does_not_wait_for_that_descendant(runs: Runs) -> None:
    """The contrast: tini as PID 1 should exit with the child, so the lingering descendant is never asked to stop."""
    assert TINI is not None
    run = runs.start(
        [*PRINT_SIGNALS, "--linger", "--exit-on", "USR2:7"],
        pid1=True,
        stdin=subprocess.PIPE,
        wrapper=(TINI, "-s", "--"),
    )
    orphan = int(run.expect(ORPHAN).group(1))
    run.ready()
    run.send(signal.SIGUSR2)
    outcome = run.finish()
    assert outcome.code == 7
    assert f"lingering (pid: {orphan})" not in outcome.lines  # killed by the kernel, never given SIGTERM


def left_behind(outcome: Outcome) -> dict[str, str]:
    """What SUBREAPER_PROXY adopted when lifecycle exited: {pid: state}, empty when lifecycle left nothing."""
    match = LEFT_BEHIND.fullmatch(outcome.lines[-1])
    assert match, outcome.lines
    found: dict[str, str] = json.loads(match.group(1))
    return found


def test_descendant_ignoring_sigterm_is_killed_after_orphan_grace(runs: Runs, pid1: bool) -> None:
    """A leftover descendant that ignores SIGTERM should be SIGKILLed after LIFECYCLE_ORPHAN_GRACE."""
    env = env_for(LIFECYCLE_ORPHAN_GRACE="300ms")
    run = runs.start([*PRINT_SIGNALS, "--stubborn", "--exit-on", "USR2:9"], env, pid1=pid1)
    orphan = run.host_pid(int(run.expect(ORPHAN).group(1)))
    runs.extra.append(orphan)
    run.ready()
    pidfd = os.pidfd_open(orphan)
    try:
        started = time.monotonic()
        run.send(signal.SIGUSR2)
        outcome = run.finish()
        elapsed = time.monotonic() - started
        assert outcome.code == 9
        assert "SIGKILL after 0.3s (LIFECYCLE_ORPHAN_GRACE)" in outcome.stderr
        assert 0.3 <= elapsed < 0.3 + 5.0
        wait_exited([pidfd], timeout=0)  # already dead: killed by lifecycle, or by the kernel with PID 1
    finally:
        os.close(pidfd)


def test_descendant_killed_after_orphan_grace_is_reaped_before_lifecycle_exits(runs: Runs) -> None:
    """As a subreaper, lifecycle should reap the descendant it SIGKILLed, not leave the zombie to its parent.

    The window is between lifecycle's reap pass and its /proc scan, so the run is repeated: a leak shows in
    one run of two to four, depending on load.
    """
    env = env_for(LIFECYCLE_ORPHAN_GRACE="0")  # straight to SIGKILL
    for attempt in range(10):
        run = runs.start([*PRINT_SIGNALS, "--stubborn", "--exit-on", "USR2:9"], env, pid1=False, proxy=True)
        runs.extra.append(int(run.expect(ORPHAN).group(1)))
        run.ready()
        run.send(signal.SIGUSR2)
        outcome = run.finish()
        assert outcome.code == 9
        assert left_behind(outcome) == {}, f"run {attempt + 1}: lifecycle exited without reaping what it killed"


def test_orphans_left_by_the_child_are_gone_when_lifecycle_exits(runs: Runs) -> None:
    """As a subreaper, lifecycle should leave nothing behind: the child's 100 orphans are stopped and reaped first."""
    run = runs.start([*PRINT_SIGNALS, "--orphans", "100", "--exit-on", "USR2:3"], pid1=False, proxy=True)
    child = run.ready()
    orphans = [pid for pid in children(run.pid) if pid != child]
    runs.extra.extend(orphans)
    assert len(orphans) == 100
    run.send(signal.SIGUSR2)  # the child exits; its orphans exit as their pipe closes, or on SIGTERM
    outcome = run.finish()
    assert outcome.code == 3
    assert left_behind(outcome) == {}, "lifecycle exited leaving orphans (zombies) to its parent"


# ---- robustness ------------------------------------------------------------------------------------


def test_signal_storm_changes_nothing(runs: Runs, pid1: bool, tmp_path: Path) -> None:
    """10,000 SIGUSR1s while the child runs should be handled quietly: the child then exits 42, as does lifecycle."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")  # a usable termination log: the child's stderr goes through lifecycle too
    env = env_for(LIFECYCLE_TERMINATION_LOG=str(termination_log))
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "USR2:42"], env, pid1=pid1)
    run.ready()
    lifecycle = run.pid
    for _ in range(10_000):
        os.kill(lifecycle, signal.SIGUSR1)
    run.send(signal.SIGUSR2)
    outcome = run.finish()
    assert outcome.code == 42
    assert set(outcome.lines[1:-1]) <= {"10"}  # some SIGUSR1s coalesce in the kernel; none is mangled
    assert outcome.lines[-1] == "12"
    no_traceback(outcome)
    assert "error" not in outcome.stderr
    assert "exit code: 42" in termination_log.read_text()
