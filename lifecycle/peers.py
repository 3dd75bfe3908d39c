"""Who is at the other end of the preStop channel: the checks both ends make before trusting it.

A name in the abstract namespace belongs to whoever binds it first, and any process of the network namespace
can connect to it (another container of the pod, of any uid; on a plain host, any local user). So neither end
trusts the name: `identify` accepts root or our own uid (SO_PEERCRED), a process visible in this container's
PID namespace, in our mount namespace. The process is pinned with a pidfd first (SO_PEERPIDFD), so the checks
are about the process that connected (or listened), not a recycled PID. Stdlib C modules only: the preStop
command runs this before its request.
"""

from __future__ import annotations

import _socket
import os
import select
import struct
import sys

from lifecycle.knobs import wait_ms

CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
SO_PEERPIDFD = getattr(_socket, "SO_PEERPIDFD", 77)  # Linux >= 6.5; Python < 3.14 lacks the constant

_mount_namespace: list[str | None] = []  # read once: the hook asks for it twice


def mount_namespace() -> str | None:
    """This process's mount namespace (`mnt:[4026531841]`), or None without /proc."""
    if not _mount_namespace:
        try:
            _mount_namespace.append(os.readlink("/proc/self/ns/mnt"))
        except OSError:
            _mount_namespace.append(None)
    return _mount_namespace[0]


class Peer:
    """The process at the other end of a connection: pid as this container's /proc numbers it (0: not visible
    there), uid, a pidfd pinning it (None without pidfds), and why it is not acceptable (None: it is)."""

    __slots__ = ("pid", "pidfd", "problem", "uid")

    def __init__(self, pid: int, uid: int, pidfd: int | None = None, problem: str | None = None) -> None:
        self.pid, self.uid, self.pidfd, self.problem = pid, uid, pidfd, problem

    def describe(self) -> str:
        where = f"pid {self.pid}" if self.pid > 0 else "a process outside this container's PID namespace"
        return f"{where} (uid {self.uid})"

    def refuse(self, problem: str) -> Peer:
        self.close()
        self.problem = problem
        return self

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def credentials(conn: _socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer (SO_PEERCRED) as they were when it connected (or listened)."""
    pid, uid, gid = CREDENTIALS.unpack(conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, CREDENTIALS.size))
    return pid, uid, gid


def fdinfo_pid(pidfd: int) -> int | None:
    """The pidfd's process as the mounted /proc numbers it (`Pid:` of its fdinfo): > 0; 0 when it is not
    visible in that PID namespace; -1 once it has exited; None when the kernel does not say. OSError when the
    fdinfo cannot be read (EMFILE: opening it takes a descriptor)."""
    fd = os.open(f"/proc/self/fdinfo/{pidfd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    for line in data.split(b"\n"):
        if line.startswith(b"Pid:"):
            try:
                return int(line[4:])
            except ValueError:
                return None
    return None


def has_exited(pidfd: int, timeout: float = 0.0) -> bool:
    """Whether the pidfd's process has exited (its pidfd is readable), waiting up to `timeout` seconds."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        try:
            return bool(poller.poll(wait_ms(timeout)))
        except InterruptedError:  # a signal: ask again (ok to proceed)
            continue


def no_such_option() -> tuple[int, ...]:
    """The errors of a getsockopt this kernel does not know (errno is imported only when one occurs)."""
    import errno

    return errno.ENOPROTOOPT, errno.EINVAL, errno.EOPNOTSUPP


def peer_pidfd(conn: _socket.socket, pid: int) -> int | str | None:
    """A pidfd on the peer; a text saying why there is none; None when this kernel has no pidfds at all."""
    try:
        data = conn.getsockopt(_socket.SOL_SOCKET, SO_PEERPIDFD, 4)
        return int.from_bytes(data, sys.byteorder, signed=True)
    except OSError as exc:
        if exc.errno not in no_such_option():
            return f"it cannot be pinned with a pidfd ({exc.strerror})"  # EMFILE, ESRCH/ENODATA: gone
    # Linux < 6.5: pin the pid SO_PEERCRED reported. Left: if the peer exits and its pid is reused between its
    # connect and this pidfd_open, the checks below see the newcomer; it must also be in our mount namespace
    # (and the dead peer's socket be held by a child it forked) to pass.
    if pid <= 0:
        return "its pid is not visible in this container's PID namespace"
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return "it exited before it could be checked"
    except OSError as exc:
        import errno

        if exc.errno == errno.ENOSYS:  # Linux < 5.3, or a seccomp filter: no pidfds at all
            return None
        return f"it cannot be pinned with a pidfd ({exc.strerror})"


def proc_is_ours() -> bool:
    """Whether the mounted /proc numbers processes as our PID namespace does (as SO_PEERCRED reports them)."""
    try:
        return int(os.readlink("/proc/self")) == os.getpid()
    except (OSError, ValueError):
        return False


def identify(conn: _socket.socket) -> Peer:
    """Who is at the other end, and whether it is acceptable: root or our uid, its pid visible in this
    container's PID namespace, and in our mount namespace.

    Race-free with a pidfd: the pid is read from the pidfd's fdinfo, the namespace from /proc/<pid>, and only
    then is the pidfd checked to be still running: had the process exited and its pid been reused in between,
    the pidfd would say so. The caller owns `Peer.pidfd` (the process stays pinned for as long as it is open).
    """
    try:
        pid, uid, _ = credentials(conn)
    except OSError as exc:
        return Peer(0, -1, None, f"its credentials cannot be read ({exc.strerror})")
    peer = Peer(pid, uid)
    if uid not in (0, os.geteuid()):
        return peer.refuse(f"uid {uid} is neither root nor the uid {os.geteuid()} of this end")
    pinned = peer_pidfd(conn, pid)
    if isinstance(pinned, str):
        return peer.refuse(pinned)
    peer.pidfd = pinned
    # Without pidfds: SO_PEERCRED's pid, unpinned, and only if /proc numbers processes as SO_PEERCRED does.
    try:
        seen = fdinfo_pid(pinned) if pinned is not None else (pid if proc_is_ours() else None)
    except OSError as exc:  # EMFILE, or no /proc
        return peer.refuse(f"its pidfd's fdinfo cannot be read ({exc.strerror})")
    peer.pid = seen if seen is not None and seen > 0 else 0
    if seen is None or seen == 0:
        return peer.refuse("its pid is not visible in this container's PID namespace")
    if seen < 0:
        return peer.refuse("it exited before it could be checked")
    try:
        namespace = os.readlink(f"/proc/{seen}/ns/mnt")
    except OSError as exc:  # EACCES (not ours to inspect), ENOENT (gone)
        return peer.refuse(f"its mount namespace cannot be read ({exc.strerror})")
    if namespace != mount_namespace() or namespace is None:
        return peer.refuse("it is in another mount namespace (another container, or the host)")
    if pinned is not None and has_exited(pinned):
        return peer.refuse("it exited while it was being checked")
    return peer


def entered_commands() -> list[int]:
    """preStop commands the runtime started in this container (the kubelet's exec: entered into our PID
    namespace from outside, so their parent is not in it: ppid 0), by their command line (`decom`:
    lifecycle-decommission or a decom.sh shim before its exec). Only as PID 1 with our own /proc."""
    if os.getpid() != 1:
        return []
    from lifecycle.process import parent_map

    if not proc_is_ours():
        return []
    found = []
    for pid, ppid in parent_map().items():
        if ppid != 0 or pid == 1:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read(4096)
        except OSError:  # exited meanwhile (ok to proceed)
            continue
        if b"decom" in argv:
            found.append(pid)
    return found
