"""The control channel between the preStop command and the supervisor: an abstract unix socket.

Abstract sockets need no writable filesystem (read-only roots). The name is keyed by the container's
mount namespace, which the kubelet's `exec` into the container joins, so it is the same for the hook and
the supervisor in both pod layouts (own PID namespace, or shareProcessNamespace), and different for two
containers of one pod (which share the network namespace, and so the abstract socket namespace).

A name in the abstract namespace belongs to whoever binds it first, and any process of the network namespace
can connect to it (another container of the pod, of any uid; on a plain host, any local user). So neither end
trusts the name, both check who is at the other end (`identify`): root or our own uid (SO_PEERCRED), a
process visible in this container's PID namespace, in our mount namespace. The process is pinned with a pidfd
first (SO_PEERPIDFD), so the checks are about the process that connected (or listened), not a recycled PID.
When the well-known name is held by anything else, the supervisor listens on a private name with a random
suffix (it cannot be taken first) and publishes it in its command line, which only processes in its PID
namespace can read; the hook looks there when the well-known name gives no authenticated answer.

SOCK_SEQPACKET keeps message boundaries: each message is `key=value` lines of UTF-8 text (None values are
left out, booleans are `true`/`false`). Not JSON, and `_socket` rather than `socket`: json imports re and
socket imports enum, ~10 ms of the preStop command's start-up before it can ask for anything. The hook's
path to the request uses only os, sys, select, struct and _socket from here.
"""

from __future__ import annotations

import _socket
import os
import select
import struct
import sys

from lifecycle.knobs import wait_ms

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

    from lifecycle.log import Log

Message = dict[str, str]
REQUEST: Message = {"request": "decommission"}
CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
TIMEVAL = struct.Struct("ll")  # struct timeval: seconds, microseconds
SO_PEERPIDFD = getattr(_socket, "SO_PEERPIDFD", 77)  # Linux >= 6.5; Python < 3.14 lacks the constant
PREFIX = "lifecycle-control/"
CONNECT_TIMEOUT = 2.0  # seconds a connect may wait while the server's backlog is full
BACKLOG = 64
MAX_MESSAGE = 4096  # longer messages are truncated by recv: never ours, so refused as malformed
SEND_FLAGS = _socket.MSG_DONTWAIT | _socket.MSG_NOSIGNAL  # a full peer is dropped, never waited for; no SIGPIPE

_mount_namespace: list[str | None] = []  # read once: the hook asks for it twice


def mount_namespace() -> str | None:
    """This process's mount namespace (`mnt:[4026531841]`), or None without /proc."""
    if not _mount_namespace:
        try:
            _mount_namespace.append(os.readlink("/proc/self/ns/mnt"))
        except OSError:
            _mount_namespace.append(None)
    return _mount_namespace[0]


def address() -> str:
    """The well-known abstract socket name for this container (its mount namespace)."""
    ns = mount_namespace() or "mnt:[unknown]"  # no /proc: one name per network namespace (and no peer passes)
    return "\0" + PREFIX + ns.removeprefix("mnt:[").rstrip("]")


# ---- who is at the other end ---------------------------------------------------------------------------------


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


# ---- the preStop command's end --------------------------------------------------------------------------------


def dial(name: str, timeout: float = CONNECT_TIMEOUT) -> tuple[_socket.socket | None, str]:
    """A connection to `name`, bounded by `timeout` when the server's backlog is full: (socket, "") or (None,
    why not). The socket blocks, with the same bound on sends (SO_SNDTIMEO)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, TIMEVAL.pack(int(timeout), int(timeout % 1 * 1e6)))
        sock.connect(name)
    except BlockingIOError:
        sock.close()
        return None, f"its backlog stayed full for {timeout:g}s"
    except OSError as exc:  # ECONNREFUSED: nothing listens under the name (tini, a shell, a vendor entrypoint)
        sock.close()
        return None, exc.strerror or str(exc)
    return sock, ""


def connect() -> _socket.socket | None:
    """A connection to the well-known name, or None when nothing listens there (unauthenticated: see identify)."""
    return dial(address())[0]


# ---- the supervisor's end -------------------------------------------------------------------------------------


def bind(name: str) -> tuple[socket.socket | None, OSError | None]:
    """A non-blocking listening socket bound to `name`, or the error."""
    import socket

    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    except OSError as exc:  # EMFILE, ENFILE, seccomp
        return None, exc
    try:
        sock.bind(name)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        return None, exc
    return sock, None


def holder(name: str) -> str | None:
    """Who holds a name that is already bound: None when it is a process of this container (another lifecycle
    in this mount namespace), else a description of what holds it."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK)
    try:
        sock.connect(name)
    except BlockingIOError:
        sock.close()
        return "a process that accepts no connections (its backlog is full)"
    except OSError as exc:  # ECONNREFUSED: bound but not listening; EPROTOTYPE: a stream or datagram socket
        sock.close()
        return f"a socket that cannot be connected to ({exc.strerror})"
    try:
        peer = identify(sock)
    finally:
        sock.close()
    peer.close()
    return None if peer.problem is None else f"{peer.describe()}: {peer.problem}"


def listen(log: Log) -> tuple[socket.socket | None, str | None]:
    """The supervisor's listening socket and its name; (None, None) when there is none (each case logged).

    The well-known name when it is free. When another lifecycle of this container holds it (a nested
    lifecycle, a plain host), none, as before: hooks reach that one. When anything else holds it, an error
    line and a private name (a random suffix) that the caller publishes in the lean supervisor's command line.
    """
    import errno

    name = address()
    sock, error = bind(name)
    if sock is not None:
        return sock, name
    if error is None or error.errno != errno.EADDRINUSE:  # EMFILE, EPERM (seccomp) …
        reason = error.strerror if error is not None else "unknown error"
        log.error("control", f"cannot listen on the decommission channel ({reason}): lifecycle-decommission "
                  "will find the executor JVM by scanning")  # fmt: skip
        return None, None
    held_by = holder(name)
    if held_by is None:
        log.warning(
            "control",
            "the decommission channel is taken by another lifecycle in this mount "
            "namespace: lifecycle-decommission will reach that one, or find the JVM by scanning",
        )
        return None, None
    private = f"{name}/{os.urandom(16).hex()}"
    sock, error = bind(private)
    if sock is None:
        reason = error.strerror if error is not None else "unknown error"
        log.error("control", f"the decommission channel's name is held by {held_by}, and a private name cannot be "
                  f"bound ({reason}): lifecycle-decommission will find the executor JVM by scanning")  # fmt: skip
        return None, None
    log.error(
        "control",
        f"the decommission channel's name is held by {held_by}, which is not this container's lifecycle: "
        "listening on a private name instead (published in this process's command line, where "
        "lifecycle-decommission finds it)",
    )
    return sock, private


def published_name(fd: int | None) -> str | None:
    """The name a listening socket is bound to, without the abstract namespace's leading NUL (for the lean
    supervisor's command line, where lifecycle-decommission looks for it); None without one."""
    if fd is None:
        return None
    import socket

    sock = socket.socket(fileno=fd)
    try:
        name = sock.getsockname()
    except OSError:
        return None
    finally:
        sock.detach()
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
    return text[1:] if text.startswith("\0") else None


def adopt(fd: int) -> socket.socket:
    """The listening socket handed over by file descriptor (handover.py binds it before the child starts)."""
    import socket

    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    sock.setblocking(False)
    return sock


# ---- messages -------------------------------------------------------------------------------------------------


def encode(message: Mapping[str, object]) -> bytes:
    lines = []
    for key, value in message.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"{key}={text.replace(chr(10), ' ')}")
    return "\n".join(lines).encode("utf-8", "replace")


def decode(data: bytes) -> Message | None:
    """The key=value lines as a dict; None when a line has no `=` (not our protocol)."""
    message: Message = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if not sep or not key:
            return None
        message[key] = value
    return message


def send(conn: _socket.socket, message: Mapping[str, object]) -> bool:
    """Send one message without ever waiting; False when it could not be sent whole (gone, or not reading)."""
    data = encode(message)
    while True:
        try:
            return conn.send(data, SEND_FLAGS) == len(data)
        except InterruptedError:  # a signal: try again (ok to proceed)
            continue
        except OSError:  # EAGAIN (its queue is full), EPIPE, ECONNRESET: the caller drops the peer
            return False


def receive(conn: _socket.socket) -> tuple[bool, Message | None]:
    """(open, message): (True, {}) when nothing is ready yet, (True, None) for a malformed message, (False, None)
    at end of stream or on an error. A zero-length message reads as end of stream."""
    while True:
        try:
            data = conn.recv(MAX_MESSAGE, _socket.MSG_DONTWAIT)
        except InterruptedError:  # a signal: try again (ok to proceed)
            continue
        except BlockingIOError:
            return True, {}
        except ConnectionResetError:  # the peer closed with our data unread: what it sent before still comes
            continue
        except OSError:
            return False, None
        if not data:
            return False, None
        return True, decode(data)


def reject(conn: _socket.socket, answer: Mapping[str, object]) -> None:
    """Answer and close, without waiting. What the peer sent is read first (a few messages at most): a unix
    socket closed with unread data makes the peer's next read fail with ECONNRESET instead of the answer."""
    send(conn, answer)
    for _ in range(8):  # (a zero-length message reads as b"" too: only EAGAIN says the queue is empty)
        try:
            conn.recv(MAX_MESSAGE, _socket.MSG_DONTWAIT)
        except InterruptedError:  # a signal: read again (ok to proceed)
            continue
        except OSError:  # nothing more (EAGAIN), or gone
            break
    conn.close()
