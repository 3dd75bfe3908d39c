"""The control channel between the preStop command and the supervisor: an abstract unix socket.

Abstract sockets need no writable filesystem (read-only roots). The name is keyed by the container's
mount namespace, which the kubelet's `exec` into the container joins, so it is the same for the hook and
the supervisor in both pod layouts (own PID namespace, or shareProcessNamespace), and different for two
containers of one pod (which share the network namespace, and so the abstract socket namespace).
SOCK_SEQPACKET keeps message boundaries: each message is `key=value` lines of UTF-8 text (None values are
left out, booleans are `true`/`false`). Not JSON, and `_socket` rather than `socket`: json imports re and
socket imports enum, ~10 ms of the preStop command's start-up before it can ask for anything.
"""

from __future__ import annotations

import _socket
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

Message = dict[str, str]
REQUEST: Message = {"request": "decommission"}
CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def address() -> str:
    """The abstract socket name for this container (its mount namespace)."""
    try:
        ns = os.readlink("/proc/self/ns/mnt")  # mnt:[4026531841]
    except OSError:  # no /proc: fall back to one name per network namespace
        ns = "mnt:[unknown]"
    return "\0lifecycle-control/" + ns.removeprefix("mnt:[").rstrip("]")


def listen() -> socket.socket | None:
    """The supervisor's listening socket, or None if the name is taken (a nested lifecycle) or refused."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.bind(address())
        sock.listen(8)
    except OSError:
        sock.close()
        return None
    return sock


def adopt(fd: int) -> socket.socket:
    """The listening socket handed over by file descriptor (handover.py binds it before the child starts)."""
    import socket

    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    sock.setblocking(False)
    return sock


def connect() -> _socket.socket | None:
    """The hook's connection to the supervisor, or None when no lifecycle supervises this container."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(address())
    except OSError:  # ECONNREFUSED/ENOENT: no supervisor here (tini, a shell, a vendor entrypoint)
        sock.close()
        return None
    return sock


def credentials(conn: _socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer (SO_PEERCRED), as they were when it connected."""
    pid, uid, gid = CREDENTIALS.unpack(conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, CREDENTIALS.size))
    return pid, uid, gid


def peer_allowed(conn: _socket.socket) -> bool:
    """Only root or our own uid may ask for a decommission (SO_PEERCRED)."""
    return credentials(conn)[1] in (0, os.getuid())


def peer_pid(conn: _socket.socket) -> int:
    return credentials(conn)[0]


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
    try:
        conn.send(encode(message))
    except OSError:  # the hook went away (killed by the kubelet): nothing to tell (ok to proceed)
        return False
    return True


def receive(conn: _socket.socket) -> Message | None:
    """One message ({} when none is ready yet), or None at end of stream or on a malformed message."""
    try:
        data = conn.recv(65536)
    except (BlockingIOError, InterruptedError):
        return {}
    except OSError:
        return None
    if not data:
        return None
    return decode(data)
