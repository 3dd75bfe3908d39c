"""Print every signal received, one number per line, until told to exit (dumb-init's testing/print_signals.py).

Run as `python -m tests.helpers.print_signals [OPTIONS]` (cwd or PYTHONPATH at the repository root). It
installs a handler for every catchable signal except SIGCHLD (its own children's exits are not news), prints
`ready (pid: N)` and then waits in `signal.pause()` forever; each handler writes the signal number (`10`) on
stdout with one `os.write`, so lines never interleave and nothing is buffered. Options:

  --default SIGS          leave these signals at SIG_DFL (the child "does not handle" them: TERM dies, 143)
  --ignore SIGS           set these signals to SIG_IGN (a JVM that ignores TERM)
  --exit-on SIG:CODE      on SIG, print its number, then exit with CODE (repeatable)
  --report-state          before `ready`, print this process's `SigBlk:` and `SigIgn:` lines from /proc/self/status
  --grandchild            fork one grandchild in the same process group; it prints `grandchild N` for signal N
  --orphans N             double-fork N orphans that block reading a pipe only this process holds open; when
                          this process exits (or on --release-on) they read end-of-file and exit at once
  --release-on SIG        on SIG, print its number, then close that pipe so the orphans exit
  --linger                double-fork one orphan that on SIGTERM prints `lingering (pid: N)`, waits for a line
                          on stdin, writes `orphan finished its shutdown (pid: N)` on stderr, prints
                          `finished (pid: N)` and exits 0 (a slow graceful shutdown)
  --stubborn [N]          double-fork one (or N) orphans that ignore SIGTERM and block until SIGKILLed

SIGS is a comma list of names or numbers (TERM,USR1 or 15,10). Orphans get /dev/null for stdout and stderr
(so the test's end of file does not wait for them) except the lingering one, whose lines are the point. The
line `orphan (pid: N)` is printed for each --linger/--stubborn orphan before `ready`. No sleeping anywhere:
every wait is a blocking read or `signal.pause()`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
NOT_PRINTED = {signal.SIGCHLD}

prefix = ""  # "grandchild " in the forked grandchild
exit_codes: dict[int, int] = {}
release_on: set[int] = set()
release_fd: int | None = None


def say(text: str) -> None:
    """One line, one write(2): atomic on a pipe and safe to call from a handler that interrupts another."""
    os.write(1, (text + "\n").encode())


def parse_signal(text: str) -> int:
    text = text.strip().upper()
    if text.isdigit():
        return int(text)
    return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])


def parse_signals(text: str) -> set[int]:
    return {parse_signal(item) for item in text.split(",") if item.strip()}


def parse_exit(text: str) -> tuple[int, int]:
    sig, _, code = text.partition(":")
    return parse_signal(sig), int(code)


def catchable() -> list[int]:
    return sorted(int(s) for s in signal.valid_signals() if s not in UNCATCHABLE and s not in NOT_PRINTED)


def on_signal(signum: int, frame: FrameType | None) -> None:
    global release_fd
    say(f"{prefix}{signum}")
    if signum in release_on and release_fd is not None:
        os.close(release_fd)
        release_fd = None
    if signum in exit_codes:
        os._exit(exit_codes[signum])


def signal_state() -> list[str]:
    with open("/proc/self/status") as handle:
        return [line.strip() for line in handle if line.startswith(("SigBlk:", "SigIgn:"))]


def detach() -> bool:
    """Double fork: True in the orphan (its parent has exited, so it is reparented), False in the caller."""
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            return True
        os._exit(0)
    os.waitpid(middle, 0)  # once the middle process is reaped, the orphan has been reparented
    return False


def to_dev_null() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def spawn_orphans(count: int) -> int:
    """N orphans blocked on a pipe; returns its write end (closing it lets them exit)."""
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(write_fd)
        to_dev_null()
        for _ in range(count):
            if os.fork() == 0:
                os.read(read_fd, 1)  # blocks until every write end is closed
                os._exit(0)
        os._exit(0)
    os.close(read_fd)
    os.waitpid(middle, 0)
    return write_fd


def spawn_lingerer() -> None:
    """An orphan whose SIGTERM handler takes as long as the test wants (one line on stdin)."""
    ready_read, ready_write = os.pipe()
    if detach():
        os.close(ready_read)

        def linger(signum: int, frame: FrameType | None) -> None:
            say(f"lingering (pid: {os.getpid()})")
            sys.stdin.readline()
            os.write(2, f"orphan finished its shutdown (pid: {os.getpid()})\n".encode())
            say(f"finished (pid: {os.getpid()})")
            os._exit(0)

        signal.signal(signal.SIGTERM, linger)
        say(f"orphan (pid: {os.getpid()})")
        os.close(ready_write)
        while True:
            signal.pause()
    os.close(ready_write)
    os.read(ready_read, 1)  # end of file once the orphan's handler is in place
    os.close(ready_read)


def spawn_stubborn() -> None:
    """An orphan that ignores SIGTERM: only SIGKILL ends it."""
    ready_read, ready_write = os.pipe()
    if detach():
        os.close(ready_read)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say(f"orphan (pid: {os.getpid()})")
        to_dev_null()
        os.close(ready_write)
        while True:
            signal.pause()
    os.close(ready_write)
    os.read(ready_read, 1)
    os.close(ready_read)


def spawn_grandchild() -> None:
    """A forked copy in the same process group, with the same handlers, that prefixes its lines."""
    global prefix, release_fd
    ready_read, ready_write = os.pipe()
    if os.fork() == 0:
        prefix = "grandchild "
        if release_fd is not None:
            os.close(release_fd)
            release_fd = None
        # Only now is a signal safe: CPython drops signals that arrive while it tidies up after fork.
        os.close(ready_read)
        os.close(ready_write)
        while True:
            signal.pause()
    os.close(ready_write)
    os.read(ready_read, 1)
    os.close(ready_read)


def main(argv: Sequence[str] | None = None) -> int:
    global release_fd
    parser = argparse.ArgumentParser(prog="print_signals")
    parser.add_argument("--default", type=parse_signals, default=set())
    parser.add_argument("--ignore", type=parse_signals, default=set())
    parser.add_argument("--exit-on", type=parse_exit, action="append", default=[])
    parser.add_argument("--report-state", action="store_true")
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("--orphans", type=int, default=0)
    parser.add_argument("--release-on", type=parse_signals, default=set())
    parser.add_argument("--linger", action="store_true")
    parser.add_argument("--stubborn", type=int, nargs="?", const=1, default=0)
    args = parser.parse_args(argv)

    state = signal_state()  # first, before this program changes anything
    if args.orphans:
        release_fd = spawn_orphans(args.orphans)
    if args.linger:
        spawn_lingerer()
    for _ in range(args.stubborn):
        spawn_stubborn()
    exit_codes.update(dict(args.exit_on))
    release_on.update(args.release_on)
    for sig in catchable():
        if sig in args.default:
            signal.signal(sig, signal.SIG_DFL)
        elif sig in args.ignore:
            signal.signal(sig, signal.SIG_IGN)
        else:
            signal.signal(sig, on_signal)
    if args.grandchild:
        spawn_grandchild()
    if args.report_state:
        for line in state:
            say(line)
    say(f"ready (pid: {os.getpid()})")
    while True:
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(main())
