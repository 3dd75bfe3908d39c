"""The termination message (Kubernetes' /dev/termination-log) and the bounded stderr tail behind it."""

from __future__ import annotations

import collections
import os
import stat
from collections.abc import Iterable

from lifecycle.log import printable
from lifecycle.redaction import Redactor, known_secrets

MESSAGE_LIMIT = 4096  # bytes: the kubelet truncates termination messages at 4096
TAIL_BYTES = 16384  # how much of the child's stderr is kept to find its last lines
TAIL_LINES = 20
# The file is opened as it is found: never through a symlink at the last component (one a less-privileged
# child planted would be followed and truncated as root), never blocking (a FIFO with no reader would hang the
# exit), never becoming our controlling terminal. No O_CREAT and no O_TRUNC: a file is checked before it is
# truncated.
OPEN_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class StderrTail:
    """Keeps the last TAIL_BYTES of what passes through; the bytes themselves go on unchanged."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = secrets  # values to hunt for in the lines (redaction.known_secrets)
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= TAIL_BYTES:
            self.size -= len(self.chunks.popleft())

    def lines(self, count: int = TAIL_LINES) -> list[str]:
        """The last lines, redacted as one text (a private-key block spans lines). A line the byte limit cut
        is dropped whole: its visible end could be the rest of a secret whose key was cut off."""
        data = b"".join(self.chunks)
        if len(data) > TAIL_BYTES:
            newline = data.find(b"\n", len(data) - TAIL_BYTES - 1)
            data = data[newline + 1 :] if newline >= 0 else b""
        text = Redactor(self.secrets).text(data.decode("utf-8", "surrogateescape"))
        return text.splitlines()[-count:]


def usable(path: str) -> bool:
    """Whether a termination message can be written there (the kubelet bind-mounts a regular file): the path
    itself, not what a symlink there points to, is a regular file with one link that we may write."""
    if not path:
        return False
    try:
        info = os.lstat(path)
        return _writable_file(info) and os.access(path, os.W_OK, follow_symlinks=False)
    except (OSError, ValueError):  # absent, unreadable directory, a NUL in the path (ok to proceed: not usable)
        return False


def _writable_file(info: os.stat_result) -> bool:
    """A regular file with no second name: a hard link planted by someone else is refused like a symlink."""
    return stat.S_ISREG(info.st_mode) and info.st_nlink <= 1


def _shown(text: str, redactor: Redactor) -> str:
    """Text that may hold a pass-through argv, a secret or bytes that are not UTF-8, as the message shows it."""
    return printable(redactor.text(text))


def compose(
    state: str,
    exit_code: int,
    signal_name: str | None,
    reason: str,
    tail: list[str],
    known: Iterable[str] | None = None,
    label: str = "last stderr lines",
) -> str:
    """Header lines, then the child's last stderr lines, cut from the top to fit MESSAGE_LIMIT UTF-8 bytes.

    Never raises: every string is redacted (the known values of `known`, by default this process's
    secret-named variables, then every shape) and made printable first."""
    redactor = Redactor(known_secrets(os.environ) if known is None else known)
    header = [
        f"lifecycle: {_shown(reason, redactor)}",
        f"state: {state}",
        f"exit code: {exit_code}",
        f"signal: {signal_name or '-'}",
    ]
    text = "\n".join(header) + "\n"
    if tail:
        body = [_shown(line, redactor) for line in tail]
        while body:
            candidate = text + f"{label}:\n" + "\n".join(body) + "\n"
            if len(candidate.encode()) <= MESSAGE_LIMIT:
                return candidate
            body.pop(0)
    return text.encode()[:MESSAGE_LIMIT].decode("utf-8", "ignore")


def open_beneath_no_links(path: str, flags: int) -> int:
    """open(2) that refuses a symlink in any component of an absolute path, not only the last.

    O_NOFOLLOW guards the last component only: a child that controls a directory on the path could swap it for
    a symlink to a root-only directory and have lifecycle (root) truncate a file there. So the path is walked
    one directory at a time (O_PATH | O_NOFOLLOW | O_DIRECTORY, each relative to the last); the knob's value
    was resolved (knobs.parse_path: realpath) when lifecycle started, before any child existed.
    """
    if not path.startswith("/"):
        raise ValueError("not an absolute path")
    *directories, name = [part for part in path.split("/") if part]
    walk = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    current = os.open("/", walk)
    try:
        for part in directories:
            if part in (".", ".."):
                raise ValueError("a path with . or ..")
            following = os.open(part, walk, dir_fd=current)
            os.close(current)
            current = following
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=current)
    finally:
        os.close(current)


def write(path: str, message: str) -> bool:
    """Write the message whole into the regular file at path, or not at all; quietly False otherwise.

    Never blocks and never follows a symlink at the path: a FIFO, a device, a symlink or a hard link put
    there instead of the kubelet's file is left alone."""
    if not path:
        return False
    data = printable(message).encode("utf-8")
    try:
        fd = open_beneath_no_links(path, OPEN_FLAGS)
    except (OSError, ValueError):  # absent, a symlink (ELOOP), a FIFO with no reader (ENXIO), read-only…
        return False
    try:
        if not _writable_file(os.fstat(fd)):
            return False
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # full disk, I/O error: the message is best effort (ok to proceed)
        return False
    finally:
        os.close(fd)
    return True
