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
import struct

from lifecycle.peers import identify, mount_namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

    from lifecycle.log import Log

Message = dict[str, str]
REQUEST: Message = {"request": "decommission"}
TIMEVAL = struct.Struct("ll")  # struct timeval: seconds, microseconds
PREFIX = "lifecycle-control/"
SUPERVISOR_ENTRY = "from lifecycle.supervise.main import main"  # in the lean supervisor's argv: how the hook finds it
CONNECT_TIMEOUT = 2.0  # seconds a connect may wait while the server's backlog is full
BACKLOG = 64
MAX_MESSAGE = 4096  # longer messages are truncated by recv: never ours, so refused as malformed
SEND_FLAGS = _socket.MSG_DONTWAIT | _socket.MSG_NOSIGNAL  # a full peer is dropped, never waited for; no SIGPIPE

def address() -> str:
    """The well-known abstract socket name for this container (its mount namespace)."""
    ns = mount_namespace() or "mnt:[unknown]"  # no /proc: one name per network namespace (and no peer passes)
    return "\0" + PREFIX + ns.removeprefix("mnt:[").rstrip("]")


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
