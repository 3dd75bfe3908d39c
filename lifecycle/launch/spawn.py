"""Starting the child: fork and exec with a clean signal state and clean descriptors, and exec errors as
tini reports them. The start-up stage only: the supervisor never starts anything."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping

from lifecycle.errors import EX_OSERR, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, LifecycleError
from lifecycle.signals import reset_for_child

NOT_FOUND_ERRNOS = {errno.ENOENT, errno.ENOTDIR}
NOT_EXECUTABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR, errno.ETXTBSY, errno.ELIBBAD}


def exec_error(command: str, err: OSError, hint: str = "") -> LifecycleError:
    """tini's and bash's convention: 127 not found, 126 found but not executable, one line either way."""
    if err.errno in NOT_FOUND_ERRNOS:
        code = EXIT_NOT_FOUND
    elif err.errno in NOT_EXECUTABLE_ERRNOS:
        code = EXIT_NOT_EXECUTABLE
    else:
        code = EX_OSERR
    reason = os.strerror(err.errno) if err.errno else str(err)
    return LifecycleError(f"cannot execute {command}: {reason}{hint}", code)


def spawn(
    argv: tuple[str, ...],
    env: Mapping[str, str],
    cwd: str,
    mask: Iterable[int],
    ignored: Iterable[int],
    stderr_fd: int | None = None,
    keep: Iterable[int] = (),
) -> int:
    """Fork and exec `argv` in its own process group with the original signal mask and dispositions.

    The caller has every signal blocked (so the child cannot run lifecycle's handlers before exec).
    An exec failure comes back through a close-on-exec pipe as OSError, as subprocess does.
    """
    mask, ignored = set(mask), set(ignored)
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        max_fd = max(int(os.sysconf("SC_OPEN_MAX")), write_fd + 1)
    except (OSError, ValueError):  # no limit known: the kernel's default ceiling (ok to proceed)
        max_fd = 1 << 20
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe work, then exec
        try:
            os.close(read_fd)
            os.setpgid(0, 0)  # own process group, like tini (and so the group can be signalled: -g)
            if os.isatty(0) and os.tcgetpgrp(0) == os.getpgid(os.getppid()):
                os.tcsetpgrp(0, os.getpid())  # foreground for the tty; SIGTTOU is still blocked here
            if stderr_fd is not None:
                os.dup2(stderr_fd, 2)
            # The child inherits 0-2 and what lifecycle was started with (`keep`: as tini passes them on),
            # and nothing lifecycle opened: not the capture pipe's ends, the control socket, the identity
            # memfds (read through /proc/<lifecycle>/fd). close_range(2): a system call per range.
            low = 3
            for fd in sorted({*keep, write_fd}):
                if fd >= low:
                    os.closerange(low, fd)
                    low = fd + 1
            os.closerange(low, max_fd)
            if cwd != os.getcwd():
                os.chdir(cwd)
            reset_for_child(ignored, mask)
            os.execvpe(argv[0], list(argv), dict(env))
        except OSError as exc:
            os.write(write_fd, str(exc.errno or 0).encode())
        except BaseException:
            os.write(write_fd, b"0")
        finally:
            os._exit(EXIT_NOT_FOUND)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()  # EOF at the child's exec: bounded by the exec itself
    if data:
        os.waitpid(pid, 0)
        code = int(data)
        raise OSError(code, os.strerror(code) if code else "exec failed", argv[0])
    return pid


def inherited_fds() -> tuple[int, ...]:
    """Descriptors above 2 that this process was started with and would pass on (not close-on-exec)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: assume none (ok to proceed)
        return ()
    kept = []
    for fd in fds:
        try:
            if fd > 2 and os.get_inheritable(fd):
                kept.append(fd)
        except OSError:  # the listing's own descriptor, closed by now (ok to proceed)
            continue
    return tuple(sorted(kept))


def ensure_std_fds() -> None:
    """Open /dev/null on whichever of 0, 1, 2 is closed, before anything else is opened.

    Otherwise the next descriptor lifecycle opens (a pipe, a memfd) would become the child's stdin or stdout,
    and the child would read or write lifecycle's file.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:  # no /dev/null (a bare root filesystem): leave it closed (ok to proceed)
                return
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)
