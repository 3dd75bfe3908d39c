"""The control channel between the preStop command and the supervisor: an abstract unix socket.

Abstract sockets need no writable filesystem (read-only roots). The name is keyed by the container's
mount namespace, which the kubelet's `exec` into the container joins, so it is the same for the hook and
the supervisor in both pod layouts (own PID namespace, or shareProcessNamespace), and different for two
containers of one pod (which share the network namespace, and so the abstract socket namespace).
SOCK_SEQPACKET keeps message boundaries: each message is one JSON object. Stdlib only.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

REQUEST = {"request": "decommission"}


def address() -> str:
    """The abstract socket name for this container (its mount namespace)."""
    try:
        ns = os.readlink("/proc/self/ns/mnt")  # mnt:[4026531841]
    except OSError:  # no /proc: fall back to one name per network namespace
        ns = "mnt:[unknown]"
    return "\0lifecycle-control/" + ns.removeprefix("mnt:[").rstrip("]")


def listen() -> socket.socket | None:
    """The supervisor's listening socket, or None if the name is taken (a nested lifecycle) or refused."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.bind(address())
        sock.listen(8)
    except OSError:
        sock.close()
        return None
    return sock


def connect() -> socket.socket | None:
    """The hook's connection to the supervisor, or None when no lifecycle supervises this container."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(address())
    except OSError:  # ECONNREFUSED/ENOENT: no supervisor here (tini, a shell, a vendor entrypoint)
        sock.close()
        return None
    return sock


def peer_allowed(conn: socket.socket) -> bool:
    """Only root or our own uid may ask for a decommission (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


def peer_pid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[0])


def send(conn: socket.socket, message: dict[str, Any]) -> bool:
    try:
        conn.send(json.dumps(message).encode())
    except OSError:  # the hook went away (killed by the kubelet): nothing to tell (ok to proceed)
        return False
    return True


def receive(conn: socket.socket) -> dict[str, Any] | None:
    """One message, or None at end of stream or on a malformed message."""
    try:
        data = conn.recv(65536)
    except (BlockingIOError, InterruptedError):
        return {}
    except OSError:
        return None
    if not data:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
