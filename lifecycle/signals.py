"""Signals as data: which ones lifecycle forwards, which it leaves alone and why; enqueue-only handlers.

Handlers never run transitions: they put the signal number on a SimpleQueue (reentrant C `put`,
bpo-14976) and the wakeup fd wakes the main loop, which triggers events (`queued=True`).
"""

from __future__ import annotations

import os
import queue
import signal
from collections.abc import Iterable
from types import FrameType

# Synchronous signals are about lifecycle's own faults, not requests: tini does not forward them either.
SYNCHRONOUS = frozenset(
    {
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGABRT,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGSEGV,
        signal.SIGSYS,
    }
)
NOT_FORWARDED = {
    signal.SIGKILL: "cannot be caught",
    signal.SIGSTOP: "cannot be caught",
    signal.SIGCHLD: "tells lifecycle a child changed state; reaping, not forwarding",
    signal.SIGPIPE: "raised by lifecycle's own writes to a closed stderr; the child is not at fault",
    signal.SIGTTIN: "raised by lifecycle's own terminal reads from the background (tini ignores it)",
    signal.SIGTTOU: "raised by lifecycle's own terminal writes from the background (tini ignores it)",
    **{sig: "synchronous: lifecycle's own fault" for sig in SYNCHRONOUS},
}
IGNORED_BY_LIFECYCLE = (signal.SIGPIPE, signal.SIGTTIN, signal.SIGTTOU)
# Python sets these to SIG_IGN at start-up; a child must get them back at SIG_DFL (subprocess does the same).
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def forwardable() -> list[int]:
    """Every catchable signal lifecycle forwards to its child, real-time ones included, in number order."""
    return sorted(int(s) for s in signal.valid_signals() if s not in NOT_FORWARDED)


def blockable() -> set[int]:
    """What start-up blocks so nothing sent before the handlers exist is lost (all but the synchronous)."""
    return (
        {int(s) for s in signal.valid_signals()}
        - {int(s) for s in SYNCHRONOUS}
        - {int(signal.SIGKILL), int(signal.SIGSTOP)}
    )


def block_all() -> set[int]:
    """Block the blockable signals; returns the previous mask (the one the child must get back)."""
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, blockable())}


def inherited_ignored() -> set[int]:
    """Signals this process was started with ignored (nohup and the like): the child gets them ignored too."""
    ignored = set()
    for sig in forwardable():
        if sig not in PYTHON_IGNORED and signal.getsignal(sig) is signal.SIG_IGN:
            ignored.add(sig)
    return ignored


def reset_for_child(ignored: Iterable[int], mask: Iterable[int]) -> None:
    """In a forked child before exec: dispositions and mask as a fresh process expects (tini restores both)."""
    keep = set(ignored)
    for sig in [*forwardable(), signal.SIGCHLD, *IGNORED_BY_LIFECYCLE]:
        signal.signal(sig, signal.SIG_IGN if sig in keep else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set(mask))


class SignalInbox:
    """Handlers that only enqueue, and a wakeup fd the main loop polls."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous: dict[int, object] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.queue.put(signum)

    def install(self, signals: Iterable[int]) -> None:
        # Every forwarded signal needs a handler: the kernel drops SIG_DFL signals sent to PID 1.
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for sig in signals:
            self.previous[sig] = signal.signal(sig, self._handler)
        for sig in IGNORED_BY_LIFECYCLE:
            self.previous.setdefault(sig, signal.signal(sig, signal.SIG_IGN))

    def drain(self) -> list[int]:
        """Signals received since the last call, in arrival order; clears the wakeup fd."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:  # emptied (ok to proceed)
            pass
        received = []
        while True:
            try:
                received.append(self.queue.get_nowait())
            except queue.Empty:
                return received

    def restore(self) -> None:
        """Put back the handlers that were there before install (before exec and at exit)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(-1)
        self.previous.clear()
