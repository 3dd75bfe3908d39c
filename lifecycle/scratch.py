"""A scratch file a script reads or writes by path, with nothing written to the root filesystem: LIFECYCLE_ENV_FILE
for a pre-launch script, LIFECYCLE_CHILD_STDERR for a post-exit one.

First choice, an in-memory file (memfd_create(2)): the script inherits its descriptor N and gets the path
`/proc/self/fd/N`, which names that descriptor in the script and in every process it starts that keeps it (the
file is gone when the last descriptor closes; a read-only root or a missing /tmp do not matter). Opening the
path reopens the memfd itself (proc(5), /proc/pid/fd: the links behave like the files), so `>>` appends and `>`
truncates as on a regular file. Without memfd_create (a kernel before 3.17, seccomp) or without /proc, a file of
its own (mode 0600, O_EXCL) in the first writable tmpfs of FALLBACK_DIRS, removed as soon as it has been read.

Stdlib only: the start-up stage and the lean supervisor use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

FALLBACK_DIRS = ("/dev/shm", "/run", "/tmp")  # memory-backed where the image gives one; /tmp last


HIGH_FD = 64  # the inherited descriptor's lowest number: out of the 3-9 a shell script uses for `exec 3>…`


def above_shell_range(fd: int) -> int:
    """`fd` moved to the lowest free descriptor >= HIGH_FD (inheritable), so a script's own `exec 3>file` cannot
    silently point its LIFECYCLE_ENV_FILE elsewhere; `fd` itself when the descriptor limit is lower than that."""
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, HIGH_FD)
    except OSError:  # EINVAL (RLIMIT_NOFILE <= HIGH_FD) or EMFILE: keep the low one (ok to proceed)
        return fd
    os.close(fd)
    return high


class ScratchFile:
    """One scratch file: `path` for the script's environment, `fd` to inherit (a memfd) or None (a tmpfs file)."""

    def __init__(self, fd: int, path: str, inherit: bool) -> None:
        self.fd, self.path, self.inherit = fd, path, inherit

    @classmethod
    def create(cls, name: str, memfd: bool = True) -> ScratchFile:
        """A new empty scratch file; OSError when neither a memfd nor a file in FALLBACK_DIRS can be made."""
        if memfd and hasattr(os, "memfd_create"):
            try:
                fd = os.memfd_create(f"lifecycle-{name}", 0)  # inheritable: the script gets this descriptor
            except OSError:  # ENOSYS, EPERM (seccomp), EMFILE: a file instead (ok to proceed)
                pass
            else:
                fd = above_shell_range(fd)
                if os.path.exists(f"/proc/self/fd/{fd}"):
                    return cls(fd, f"/proc/self/fd/{fd}", True)
                os.close(fd)  # no /proc: a path to it cannot be given (ok to proceed: a file instead)
        errors = []
        for directory in [*FALLBACK_DIRS, os.environ.get("TMPDIR", "/tmp")]:
            path = os.path.join(directory, f".lifecycle-{name}-{os.getpid()}-{os.urandom(6).hex()}")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                errors.append(f"{directory}: {exc.strerror}")
                continue
            return cls(fd, path, False)
        raise OSError(0, "no memfd_create and no writable directory for it (" + "; ".join(errors) + ")")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def read(self, limit: int) -> tuple[bytes, bool]:
        """The file from its start, at most `limit` bytes; and whether it holds more than that."""
        size = os.fstat(self.fd).st_size
        chunks, offset = [], 0
        whole = size <= limit
        size = min(size, limit)
        while offset < size:
            chunk = os.pread(self.fd, size - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks), whole

    def close(self) -> None:
        """Close it, and remove the file when it is one (a memfd is gone with its last descriptor)."""
        if not self.inherit:
            with contextlib.suppress(OSError):  # removed already: nothing to do (ok to proceed)
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)
