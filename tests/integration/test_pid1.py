"""PID 1 supervision, tini's and dumb-init's matrices and then some (runtime-notes §1.2, §1.5).

Each behaviour runs two ways (the `pid_mode` fixture): as PID 1 of a new PID namespace (`unshare --pid --fork
--mount-proc lifecycle …`, so the kernel's rules for init apply: SIG_DFL signals are dropped, orphans come to
it, and when it exits everything left is SIGKILLed), and as a plain child of the test, where lifecycle makes
itself a child subreaper. The child is usually tests/helpers/print_signals.py, which prints `ready (pid: N)`
and then one line per signal; tests block on those lines (bounded by select) and never sleep.

The harness (`Supervised`, `Runs`, `env_for`) is tests/helpers/supervised.py.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.proc import children
from tests.helpers.processes import reaped, signal_bits, stat_fields, status_field, wait_exited
from tests.helpers.supervised import (
    PRINT_SIGNALS,
    SYSTEM_PATH,
    Runs,
    env_for,
    left_behind,
    needs_unshare,
    no_traceback,
)

pytestmark = pytest.mark.integration

TINI = shutil.which("tini", path=SYSTEM_PATH)
ORPHAN = re.compile(r"orphan \(pid: (\d+)\)")

# What lifecycle must forward, restated from tini/dumb-init rather than imported (STYLE rule 16): every
# signal 1-31 except the uncatchable, SIGCHLD (reaping), the three lifecycle raises on itself (PIPE, TTIN,
# TTOU) and the synchronous faults; plus the real-time signals, which dumb-init's 1-31 table cannot express.
NOT_FORWARDED = {
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGTTIN, signal.SIGTTOU,
    signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV, signal.SIGSYS,
}  # fmt: skip
FORWARDED = sorted({*range(1, 32)} - {int(s) for s in NOT_FORWARDED} | {*range(signal.SIGRTMIN, signal.SIGRTMAX + 1)})


# ---- exit codes ------------------------------------------------------------------------------------


# Runs lifecycle once per exit code, four at a time. Each run forks from a process that has imported
# lifecycle.launch.cli already and calls the console script's entry point, `main(argv)`: the run is the real one (argv,
# settings, spawn, exec into the lean supervisor, exit status), minus ~0.25 CPU-s of interpreter and pydantic
# start-up that would make 256 runs cost over a minute on two cores.
EXIT_CODE_DRIVER = """
import ctypes, json, os
from lifecycle.launch.cli import main
import lifecycle.launch.handover, lifecycle.launch.identity, lifecycle.launch.plan  # lazy in cli
import lifecycle.launch.resolve, lifecycle.launch.settings

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
    no_traceback(outcome.stderr)


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
    no_traceback(outcome.stderr)


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
    no_traceback(outcome.stderr)


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
    no_traceback(outcome.stderr)


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
    no_traceback(outcome.stderr)
    assert "error" not in outcome.stderr
    assert "exit code: 42" in termination_log.read_text()
