"""Starting one pre-launch or post-exit script (scripts.Runner runs it): fork and exec with the start state a fresh
process expects, its output one pipe back to lifecycle. Stdlib only: the start-up stage and the lean supervisor use
it."""

from __future__ import annotations

import os
import select
import signal

from lifecycle.errors import EXIT_NOT_FOUND
from lifecycle.signals import reset_for_child

MAX_FD = 1 << 20  # close_range(2) above the kept descriptors, whatever RLIMIT_NOFILE says
# How long the exec's report is waited for. An exec takes well under a millisecond; one that takes longer is stuck
# in the kernel (the script on a stalled network filesystem): then the script counts as started, its deadline and
# the poll that serves signals take over, and a failure of the exec shows as its exit status (127).
EXEC_REPORT_MS = 2000


class StartError(OSError):
    """The OS refused a pipe or the fork for a script (EMFILE, EAGAIN, ENOMEM): it was never started."""


def spawn_script(path: str, env: dict[str, str], mask: set[int], keep: int | None = None) -> tuple[int, int]:
    """Start the script: (pid, the read end of its output pipe, non-blocking). StartError when the OS refuses a pipe
    or the fork (nothing is left open then); OSError when it cannot be executed
    (ENOENT, EACCES, ENOEXEC for a file without a #! line), reported through a close-on-exec pipe as subprocess
    does. fork and exec, as launch/spawn.py starts the child: posix_spawn(3) would be lighter, but glibc's leaves
    its two internal real-time signals (32, 33) ignored in the child, and an ignored signal stays ignored across
    exec. The caller has every signal blocked or only enqueued (no handler of ours runs in the child)."""
    opened: list[int] = []
    try:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        opened += [read_fd, write_fd]
        stdin_fd, closed = os.pipe2(os.O_CLOEXEC)  # stdin: a pipe whose writer is closed reads end of file at once
        os.close(closed)
        opened.append(stdin_fd)
        errors_fd, report_fd = os.pipe2(os.O_CLOEXEC)
        opened += [errors_fd, report_fd]
        pid = os.fork()
    except OSError as exc:  # EMFILE, EAGAIN, ENOMEM: nothing started, and nothing of ours left open
        for fd in opened:
            os.close(fd)
        raise StartError(exc.errno, exc.strerror) from None
    if pid == 0:  # the child: only async-signal-safe work, then exec
        try:
            os.setpgid(0, 0)  # its own process group: a deadline's signal reaches what it started too
            os.dup2(stdin_fd, 0)
            os.dup2(write_fd, 1)
            os.dup2(write_fd, 2)
            low = 3
            for fd in sorted({report_fd, *([keep] if keep is not None else [])}):
                os.closerange(low, fd)
                low = fd + 1
            os.closerange(low, MAX_FD)
            reset_for_child((), mask)
            os.execve(path, [path], env)
        except OSError as exc:
            report(report_fd, str(exc.errno or 0).encode())
        except BaseException:
            report(report_fd, b"0")
        finally:
            os._exit(EXIT_NOT_FOUND)
    for fd in (write_fd, stdin_fd, report_fd):
        os.close(fd)
    poller = select.poll()
    poller.register(errors_fd, select.POLLIN)
    try:
        ready = poller.poll(EXEC_REPORT_MS)  # end of file at the child's exec, or its errno
    except InterruptedError:  # a signal: its handler only enqueued it (ok to proceed, as a slow exec)
        ready = []
    data = os.read(errors_fd, 64) if ready else b""  # readable: never blocks
    os.close(errors_fd)
    if data:
        os.close(read_fd)
        os.waitpid(pid, 0)
        code = int(data)
        raise OSError(code, os.strerror(code) if code else "exec failed", path)
    os.set_blocking(read_fd, False)
    return pid, read_fd


def report(fd: int, errno_text: bytes) -> None:
    """In the child whose exec failed: its errno to lifecycle, if lifecycle still listens (after EXEC_REPORT_MS it
    does not, and the write's EPIPE must not become a death by SIGPIPE: the exit status 127 says it instead)."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        os.write(fd, errno_text)
    except OSError:  # EPIPE: lifecycle stopped listening (ok to proceed: _exit follows)
        pass
