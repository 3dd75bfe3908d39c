"""Writes that never block: lifecycle's stderr, whoever reads it (or stops reading it).

PID 1 must keep forwarding signals and serving the preStop command when the reader of its stderr stalls (a
log pipe that cannot keep up, a full log disk). So lifecycle never makes a blocking write to it: what cannot
be written now is kept in a bounded buffer and written when the descriptor is writable again (the
supervisor polls for that); what does not fit is dropped and counted, and a line saying how much was dropped
is written once writing works again.

How a write is kept from blocking depends on what fd 2 is (`Output.open`):
- a regular file or a device that is not a terminal: written directly (such writes do not wait for a reader);
- a socket (journald's stdout stream): `send(MSG_DONTWAIT)`, non-blocking per call;
- a pipe, FIFO or terminal: a private open file description, `/proc/self/fd/2` reopened with O_NONBLOCK, so
  the flag never reaches the child's descriptors (it shares ours); when that is refused (a non-root user
  cannot reopen a pipe that root created, as a container runtime's log pipes are) and the child shares none
  of our descriptions, O_NONBLOCK on fd 2 itself; failing both, writes of at most PIPE_BUF bytes only when
  poll() says the descriptor is writable (a write of that size then fits unless another writer fills the pipe
  in between: the one residual case, for a pipe shared with the child that lifecycle may not reopen).

Stdlib only (os, select): the preStop command and the lean supervisor use it.
"""

from __future__ import annotations

import errno
import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LIMIT = 1 << 20  # bytes kept while the reader stalls; beyond this, output is dropped and counted
PIPE_BUF = 4096  # a pipe write of at most this many bytes is atomic, and fits when poll() says POLLOUT
S_IFMT, S_IFREG, S_IFCHR, S_IFSOCK = 0o170000, 0o100000, 0o020000, 0o140000  # without importing stat
MSG_DONTWAIT = 0x40  # send(2) flag, Linux
GONE = (errno.EPIPE, errno.EBADF, errno.ECONNRESET, errno.ENOTCONN, errno.EINVAL)  # a reader that never comes back

DIRECT, SOCKET, PRIVATE, NONBLOCKING, GATED, CLOSED = "direct", "socket", "private", "nonblocking", "gated", "closed"


class Output:
    """A descriptor written without ever blocking, with a bounded buffer for what must wait."""

    def __init__(self, fd: int = 2, mode: str = DIRECT, limit: int = LIMIT) -> None:
        self.fd, self.mode, self.limit = fd, mode, limit
        self.buffer = bytearray()
        self.dropped_bytes = 0
        self.dropped_writes = 0
        self.notice: Callable[[int, int], bytes] | None = None  # the "dropped N bytes" line, when writing resumes
        self.mid_line = False  # the last bytes queued did not end a line (a child's partial line, relayed)

    @classmethod
    def open(cls, fd: int = 2, reopen: bool = False, exclusive: bool = False, limit: int = LIMIT) -> Output:
        """An Output for fd, in the mode that keeps writes from blocking (see the module docstring).

        reopen: a pipe or terminal gets a private non-blocking description (one more descriptor, held for
        the life of the Output: the lean supervisor's one Output). Without it (the start-up stage, the preStop
        command, where lifecycle is fd 2's only writer) writes are gated by poll().
        exclusive: no child process shares fd's open file description (the child's stderr is a capture
        pipe and its stdout is another description), so O_NONBLOCK may be set on it as a last resort.
        """
        try:
            kind = os.fstat(fd).st_mode & S_IFMT
        except OSError:  # closed: nothing to write to (cli opens /dev/null on 0-2 first, so this is rare)
            return cls(fd, CLOSED, limit)
        if kind == S_IFREG or (kind == S_IFCHR and not os.isatty(fd)):
            return cls(fd, DIRECT, limit)
        if kind == S_IFSOCK:
            return cls(fd, SOCKET, limit)
        if not os.get_blocking(fd):
            return cls(fd, NONBLOCKING, limit)
        if not reopen:
            return cls(fd, GATED, limit)
        try:
            private = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:  # EACCES: a pipe another uid created; ENXIO; no /proc (ok: the next ways)
            pass
        else:
            return cls(private, PRIVATE, limit)
        if exclusive:
            os.set_blocking(fd, False)
            return cls(fd, NONBLOCKING, limit)
        return cls(fd, GATED, limit)

    # ---- writing -----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue data and write what the descriptor takes now; never blocks, never raises."""
        if self.mode == CLOSED or not data:
            return
        self.mid_line = not data.endswith(b"\n")
        if len(self.buffer) + len(data) > self.limit:
            self.dropped_bytes += len(data)
            self.dropped_writes += 1
            self.flush()
            return
        self.buffer += data
        self.flush()

    def flush(self) -> None:
        """Write as much of the buffer as the descriptor takes without blocking."""
        while self.mode != CLOSED:
            if self.dropped_bytes and self.notice is not None and len(self.buffer) < self.limit // 2:
                # Writing works again (the buffer drained): say what was lost, once, in order.
                notice = self.notice(self.dropped_bytes, self.dropped_writes)
                if self.buffer and not self.buffer.endswith(b"\n"):
                    notice = b"\n" + notice
                self.buffer += notice
                self.dropped_bytes = self.dropped_writes = 0
            if not self.buffer:
                return
            written = self._write_some(bytes(self.buffer[: self._chunk()]))
            if written <= 0:
                return
            del self.buffer[:written]

    def _chunk(self) -> int:
        if self.mode == GATED:
            try:
                ready = select.poll()
                ready.register(self.fd, select.POLLOUT)
                if not ready.poll(0):
                    return 0
            except (OSError, ValueError):  # closed meanwhile (ok to proceed: nothing written)
                return 0
            return PIPE_BUF
        return 65536

    def _write_some(self, data: bytes) -> int:
        """Bytes written (0: would block now; -1: the descriptor failed and the buffer was dropped)."""
        if not data:
            return 0
        try:
            if self.mode == SOCKET:
                return send_nowait(self.fd, data)
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:  # EPIPE (reader gone), ENOSPC (log disk full), EBADF: drop what is queued
            self.dropped_bytes += len(self.buffer)
            self.dropped_writes += 1
            self.buffer.clear()
            if exc.errno in GONE:  # nobody will ever read it: stop trying (and stop polling it)
                self.mode = CLOSED
            return -1

    # ---- for the event loop ------------------------------------------------------------------------
    def waiting(self) -> bool:
        """Bytes wait for the descriptor to become writable: poll it for POLLOUT (never for a file, which is
        always writable: a failing one, a full disk, is retried at the next write instead of spinning)."""
        return bool(self.buffer) and self.mode in (SOCKET, PRIVATE, NONBLOCKING, GATED)

    def pending(self) -> bool:
        """Bytes wait for the descriptor to become writable (poll it for POLLOUT)."""
        if self.mode == CLOSED:
            return False
        return bool(self.buffer) or bool(self.dropped_bytes and self.notice is not None)

    def drain(self, timeout: float) -> bool:
        """Wait up to timeout seconds for everything queued to be written (at exit); True when it was."""
        import time

        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        self.flush()
        while self.pending():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                poller.poll(int(min(left, 0.1) * 1000))
            except OSError:  # the descriptor went away (ok: nothing more can be written)
                return False
            before = len(self.buffer)
            self.flush()
            if self.mode == DIRECT and len(self.buffer) == before:
                return False
        return True


def send_nowait(fd: int, data: bytes) -> int:
    """send(MSG_DONTWAIT) on a socket descriptor we do not own (no dup kept: nothing to leak)."""
    import _socket

    sock = _socket.socket(fileno=fd)
    try:
        return int(sock.send(data, MSG_DONTWAIT))
    finally:
        sock.detach()


def shares_description(fd: int, others: tuple[int, ...]) -> bool:
    """Whether fd and one of `others` are one open file description (2>&1, a terminal on both).

    Status flags live on the description: set O_NONBLOCK on fd and see whether another fd shows it. The
    flag is taken off again at once, before any child exists that could see it.
    """
    others = tuple(other for other in others if other != fd)
    if not others:
        return False
    try:
        before = [os.get_blocking(other) for other in others]
        os.set_blocking(fd, False)
        after = [os.get_blocking(other) for other in others]
        os.set_blocking(fd, True)
    except OSError:  # one of them is closed: cannot share (ok to proceed)
        return False
    return before != after
