"""Leftover descendants once the main child has exited: SIGTERM, LIFECYCLE_ORPHAN_GRACE, SIGKILL, reaped.

tini exits at once and the kernel SIGKILLs whatever is left (krallin/tini#180), with no chance to shut down.
lifecycle SIGTERMs them and waits (each exit wakes the supervisor's poll through a pidfd), then SIGKILLs what
is still there. Three things make that harder than a loop over `ps`:
- a descendant that keeps changing its PID (forks a successor, exits) outruns a list of PIDs: before the
  SIGKILL, every descendant is frozen with SIGSTOP, rescanning until a scan finds none left running, so none
  can fork again before it dies;
- the scan reads /proc, which must be this PID namespace's: a /proc of the parent namespace (or none) would
  give PIDs that mean other processes here. Without one, lifecycle as PID 1 signals every process of its
  namespace (`kill(-1)`: they are all its descendants or entered from outside) and waits until it has no
  child left; not PID 1, it cannot find them and says so;
- thousands of leftovers must not exhaust descriptors: at most WATCHED_PIDFDS pidfds at a time (the others
  wake the poll through SIGCHLD).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from lifecycle import knobs
from lifecycle.log import Log
from lifecycle.peers import proc_is_ours
from lifecycle.process import descendants, open_pidfd, reap, signal_quietly

KILL_WAIT = 2.0  # seconds to wait for SIGKILLed descendants to be reaped before giving up on them
WATCHED_PIDFDS = 256  # pidfds held at once while waiting for leftover descendants
FREEZE_ROUNDS = 100  # rescans while freezing descendants before the SIGKILL (each finds the ones forked since)
Wake = Callable[[list[int], float], None]  # poll these pidfds (and everything else) for at most this many seconds


def direct_children() -> set[int]:
    """Our children as the kernel lists them (one read, not a scan of every process)."""
    found: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as handle:
                found.update(int(pid) for pid in handle.read().split())
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN (ok to proceed: the scan alone decides)
        pass
    return found


def has_children() -> bool:
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # none: and so no descendants, orphans being reparented to us (PID 1/subreaper)
        return False
    return True


class Leftovers:
    """Stops what the main child left behind, waiting through the supervisor's poll (`wake`)."""

    def __init__(self, log: Log, main_pid: int, grace: float, wake: Wake) -> None:
        self.log, self.main_pid, self.grace, self.wake = log, main_pid, grace, wake

    def stop(self) -> None:
        reap(self.main_pid)  # zombies are not "live descendants": collect them before deciding anything
        if not has_children():
            return
        if not proc_is_ours():
            self.stop_without_proc()
            return
        me = os.getpid()
        remaining = self.scan(me)
        if not remaining:
            return
        self.log.info(
            "descendants",
            f"{len(remaining)} descendant process(es) left: SIGTERM, then SIGKILL after "
            f"{self.grace:g}s ({knobs.ORPHAN_GRACE})",
            pids=remaining[:100],
        )
        for pid in remaining:
            signal_quietly(pid, signal.SIGTERM)
        if not self.wait_until_gone(time.monotonic() + self.grace):
            self.kill_all(me)
            self.wait_until_gone(time.monotonic() + KILL_WAIT)

    def scan(self, me: int) -> list[int]:
        """Live descendants. A scan of /proc takes longer than a process that forks a successor and exits lives:
        when it finds none although we still have a child, it looks again (bounded)."""
        for _ in range(FREEZE_ROUNDS):
            remaining = descendants(me)
            reap(self.main_pid)  # scan, then reap: with no live descendant left, no new zombie can appear after it
            if remaining or not has_children():
                return remaining
        return []

    def kill_all(self, me: int) -> None:
        """Freeze every descendant (rescanning for ones forked meanwhile), then SIGKILL them all."""
        stopped: set[int] = set()
        for _ in range(FREEZE_ROUNDS):
            reap(self.main_pid)  # a zombie child is neither running nor stopped: collect it first
            running = [pid for pid in descendants(me) if pid not in stopped]
            if not running and direct_children() <= stopped:
                break
            for pid in running:
                signal_quietly(pid, signal.SIGSTOP)
            stopped.update(running)
        for pid in stopped:
            signal_quietly(pid, signal.SIGKILL)
        self.log.info("descendants", f"SIGKILL to {len(stopped)} descendant process(es) still there")

    def wait_until_gone(self, deadline: float) -> bool:
        """Reap until no descendant is left (True) or the deadline passes (False)."""
        me = os.getpid()
        while True:
            remaining = self.scan(me)
            left = deadline - time.monotonic()
            if not remaining:
                return True
            if left <= 0:
                return False
            pidfds = [fd for fd in (open_pidfd(pid) for pid in remaining[:WATCHED_PIDFDS]) if fd is not None]
            try:
                self.wake(pidfds, left)
            finally:
                for fd in pidfds:
                    os.close(fd)

    def stop_without_proc(self) -> None:
        """No /proc of our PID namespace, so no PIDs to trust. As PID 1: every other process of the namespace
        (kill -1). Otherwise: the process group the child was started in (it is still in use while a member
        lives, so its number cannot have been reused), which holds what the child left unless they moved out."""
        pid1 = os.getpid() == 1
        whom = "every process of the namespace" if pid1 else f"the child's process group ({self.main_pid})"
        self.log.warning(
            "descendants",
            f"descendant processes are left and /proc is not this PID namespace's (or not mounted): SIGTERM to "
            f"{whom}, then SIGKILL after {self.grace:g}s ({knobs.ORPHAN_GRACE})",
        )
        for sig, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, KILL_WAIT)):
            try:
                if pid1:
                    os.kill(-1, sig)
                else:
                    os.killpg(self.main_pid, sig)
            except ProcessLookupError:  # none left there (ok to proceed: the wait says whether any remain)
                pass
            except PermissionError:  # members that became another user (ok to proceed: reported below)
                pass
            if self.wait_for_no_children(time.monotonic() + wait):
                return
        self.log.warning("descendants", "descendant processes outside the child's process group are left running")

    def wait_for_no_children(self, deadline: float) -> bool:
        while True:
            reap(self.main_pid)
            if not has_children():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.wake([], left)
