"""A controlling terminal (`kubectl run -it`, `docker run -it`): the child must own the foreground.

lifecycle puts its child in a process group of its own (as tini does), so without handing the terminal's
foreground to that group the child would be stopped by SIGTTIN on its first read, and Ctrl-C would reach
lifecycle's group instead of the child's (tini's and dumb-init's tty tests). Each test runs lifecycle as
the session leader of a new pseudo-terminal (pty.fork), talks to it through the master side with bounded
select()s, and kills whatever is left by PID.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from collections.abc import Iterator

import pytest

from tests.helpers.processes import kill_tree
from tests.helpers.supervised import LIFECYCLE, env_for

pytestmark = pytest.mark.integration
TIMEOUT = 20.0


class Terminal:
    """lifecycle COMMAND on a new pty; `read_until` collects output, `write` types into it."""

    def __init__(self, *command: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: session leader with the pty as its controlling terminal
            try:
                os.execve(LIFECYCLE, [LIFECYCLE, *command], env_for(LIFECYCLE_LOG_LEVEL="warning"))
            finally:
                os._exit(127)
        self.pid, self.fd, self.output = pid, fd, b""

    def read_until(self, text: bytes) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.output:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready:
                raise AssertionError(f"no {text!r} within {TIMEOUT}s; output so far: {self.output!r}")
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: every process holding the slave side is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {text!r}; output: {self.output!r}")
            self.output += chunk
        return self.output

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exit_code(self) -> int:
        """lifecycle's exit code, waited for through a pidfd (bounded)."""
        pidfd = os.pidfd_open(self.pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], TIMEOUT)
            assert ready, f"lifecycle still running after {TIMEOUT}s; output: {self.output!r}"
        finally:
            os.close(pidfd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        kill_tree(self.pid)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # already reaped by exit_code()
            pass
        os.close(self.fd)


@pytest.fixture
def terminal() -> Iterator[type[Terminal]]:
    opened: list[Terminal] = []

    class Tracked(Terminal):
        def __init__(self, *command: str) -> None:
            super().__init__(*command)
            opened.append(self)

    try:
        yield Tracked
    finally:
        for term in opened:
            term.close()


def test_child_reads_the_terminal_without_being_stopped(terminal: type[Terminal]) -> None:
    """The child should be the terminal's foreground group: its read gets the typed line (no SIGTTIN stop)."""
    term = terminal("/bin/sh", "-c", "echo ready; read line; echo \"got:$line\"; exit 7")
    term.read_until(b"ready")
    term.write(b"hello\n")
    term.read_until(b"got:hello")
    assert term.exit_code() == 7


def test_ctrl_c_reaches_the_child_and_lifecycle_exits_130(terminal: type[Terminal]) -> None:
    """Ctrl-C on the terminal should end the child by SIGINT (its group is the foreground; were lifecycle's
    the foreground instead, lifecycle would forward it), and lifecycle should exit 128+2."""
    term = terminal("/bin/sh", "-c", "echo ready; exec sleep 600")  # sleep keeps SIGINT's default: it dies
    term.read_until(b"ready")
    term.write(b"\x03")
    assert term.exit_code() == 128 + signal.SIGINT
