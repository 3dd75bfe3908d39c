"""A standalone Worker's drain: the executor JVMs that Worker launched, each waited for on a pidfd in the
supervisor's own poll, until none is left.

After the decommission signal the Worker tells the master, which has the application's driver decommission the
Worker's executors over RPC (the executors get no signal). Each executor leaves once its tasks have ended and a
block-migration round has run; the Worker itself never exits (README, "Standalone clusters"). The executors are
the Worker's children (ExecutorRunner starts `java … CoarseGrainedExecutorBackend`): found exactly, by parent pid
and main class (process.main_class: never a substring of the command line), with psutil, imported here on the
decommission request only (off the steady state: ~15 ms, ~1.9 MiB). An executor's exit status goes to the Worker,
its parent; here it is seen as its pidfd becoming readable.

A Worker may still be starting an executor it was told to launch before the signal; so when the last known one
has exited, the children are listed once more, and only an empty list ends the drain.
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING

from lifecycle.process import STATUS_GONE, main_class

if TYPE_CHECKING:
    from lifecycle.log import Log

EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"  # what a standalone Worker launches
BLIND_RESCAN = 1.0  # seconds between listings, only for an executor no pidfd could be opened on (EMFILE, seccomp)


def worker_executors(worker: int) -> list[int]:
    """The live executor JVMs that are children of `worker` (main class exactly EXECUTOR_CLASS), sorted."""
    import psutil

    try:
        children = psutil.Process(worker).children()
    except psutil.Error:  # the Worker has gone: its executors are its leftovers now (terminated handles them)
        return []
    found = []
    for child in children:
        try:
            if child.status() not in STATUS_GONE and main_class(child.cmdline()) == EXECUTOR_CLASS:
                found.append(child.pid)
        except psutil.Error:  # exited while listed (ok to proceed: nothing to wait for)
            continue
    return sorted(found)


class Drain:
    """The executors of one Worker being drained: {pidfd: pid} registered in the supervisor's poll."""

    def __init__(self, log: Log, worker: int, poller: select.poll) -> None:
        self.log, self.worker, self.poller = log, worker, poller
        self.started = time.monotonic()
        self.waiting: dict[int, int] = {}  # pidfd -> executor pid
        self.blind: set[int] = set()  # executors without a pidfd: looked at every BLIND_RESCAN
        self.seen: set[int] = set()
        self.exited = 0

    def scan(self) -> list[int]:
        """List the Worker's executors; start waiting on each new one. The new pids."""
        new = [pid for pid in worker_executors(self.worker) if pid not in self.seen]
        for pid in new:
            self.seen.add(pid)
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:  # exited since it was listed
                self.exited += 1
                continue
            except OSError as exc:  # EMFILE, ENOSYS, EPERM (seccomp): wait for it by listing again
                self.log.warning("drain", f"cannot open a pidfd on executor pid {pid} ({exc.strerror}): looking "
                                 f"for it every {BLIND_RESCAN:g}s instead")  # fmt: skip
                self.blind.add(pid)
                continue
            self.waiting[pidfd] = pid
            self.poller.register(pidfd, select.POLLIN)
        return new

    def __contains__(self, fd: int) -> bool:
        return fd in self.waiting

    def left(self) -> int:
        return len(self.waiting) + len(self.blind)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def reaped(self, pidfd: int) -> int:
        """The executor on `pidfd` has exited: stop waiting on it; its pid."""
        pid = self.waiting.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        self.exited += 1
        return pid

    def look_again(self) -> list[int]:
        """Executors without a pidfd that have gone since the last look."""
        if not self.blind:
            return []
        live = set(worker_executors(self.worker))
        gone = sorted(self.blind - live)
        self.blind -= set(gone)
        self.exited += len(gone)
        return gone

    def wake_in(self) -> float | None:
        """Seconds until the next look for executors without a pidfd; None when there is none."""
        return BLIND_RESCAN if self.blind else None

    def close(self) -> None:
        for pidfd in self.waiting:
            self.poller.unregister(pidfd)
            os.close(pidfd)
        self.waiting.clear()
        self.blind.clear()
