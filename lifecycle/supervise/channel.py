"""The supervisor's end of the preStop channel: accept, authenticate, serve, tell, and wait for the hooks.

What a client can make the supervisor hold is bounded, whoever the client is:
* a peer that fails authentication (peers.identify: root or our uid, visible in our PID namespace, in our
  mount namespace) is answered `event=refused` and closed at once: it keeps no descriptor;
* at most MAX_HOOKS authenticated connections at a time; one more is answered `event=busy` and closed;
* a connection that sends no request within REQUEST_TIMEOUT is closed (checked whenever the channel is busy);
* one request per connection: anything else is answered `event=refused` and closed;
* hooks that hung up but have not exited yet (waited for at the end): at most MAX_HOOKS pidfds, one per pid;
* refusals are counted; REFUSALS_LOGGED lines per REFUSAL_WINDOW, then one summary line with the count;
* one reserve descriptor: at the descriptor limit (EMFILE/ENFILE) it is closed so a pending connection can
  be accepted and closed, instead of leaving the listener readable forever (a busy loop);
* nothing blocks: the sockets are non-blocking, a send that would block drops that peer.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from lifecycle import control, knobs, peers
from lifecycle.knobs import wait_ms
from lifecycle.peers import entered_commands
from lifecycle.supervise.refusals import RefusalLog

if TYPE_CHECKING:
    import socket

    from lifecycle.log import Log

MAX_HOOKS = 16  # authenticated connections at a time (the kubelet runs one preStop command per container)
REQUEST_TIMEOUT = 3.0  # seconds an authenticated connection may stay without sending its request
ACCEPTS_PER_CALL = 64  # then back to the event loop, so a flood of connections cannot starve the child's events
ARRIVING_RESCAN = 0.05  # seconds between looks for preStop commands still starting, while waiting at exit
DESCRIPTOR_LIMIT = (errno.EMFILE, errno.ENFILE)
RequestHandler = Callable[[int], Mapping[str, object]]


class Hook:
    """An authenticated connection: a preStop command, attached once it has sent its request."""

    __slots__ = ("conn", "fd", "pid", "pidfd", "requested", "since")

    def __init__(self, conn: socket.socket, pid: int, pidfd: int | None) -> None:
        self.conn, self.pid, self.pidfd = conn, pid, pidfd
        self.fd = conn.fileno()  # the key in HookServer.hooks, still known once the connection is closed
        self.since = time.monotonic()
        self.requested = False


class HookServer:
    """The listener and the attached preStop commands, polled by the supervisor's loop.

    `poller` is the supervisor's main poll object: the listener and each connection register there themselves.
    `on_request(pid)` is called for each authenticated request before the child's exit (it triggers the
    machine's decommission_requested) and returns the answer (event `accepted`, or `declined`).
    """

    def __init__(self, log: Log, control_fd: int | None, poller: select.poll, on_request: RequestHandler) -> None:
        self.log = log
        self.poller = poller
        self.on_request = on_request
        self.listener = control.adopt(control_fd) if control_fd is not None else None
        self.hooks: dict[int, Hook] = {}  # by connection fd
        self.departing: dict[int, int] = {}  # pid -> pidfd: hung up, not exited yet (waited for at the end)
        self.exited: Mapping[str, object] | None = None  # what the hooks were told when the child exited
        self.refusals = RefusalLog(log)
        self.reserve: int | None = None
        if self.listener is not None:
            self.reserve = self.open_reserve()
            poller.register(self.listener.fileno(), select.POLLIN)

    # ---- for the supervisor's loops ------------------------------------------------------------------------
    def __contains__(self, fd: int) -> bool:
        return fd in self.hooks or (self.listener is not None and fd == self.listener.fileno())

    def fds(self) -> list[int]:
        """What to poll for POLLIN: the listener and every connection."""
        return ([self.listener.fileno()] if self.listener is not None else []) + list(self.hooks)

    def handle(self, fd: int) -> None:
        """One of fds() is ready."""
        if self.listener is not None and fd == self.listener.fileno():
            self.accept()
        elif fd in self.hooks:
            self.serve(self.hooks[fd])

    def service(self) -> None:
        """Handle whatever is ready now, without waiting (for loops that poll other things)."""
        poller = select.poll()
        for fd in self.fds():
            poller.register(fd, select.POLLIN)
        try:
            ready = poller.poll(0)
        except InterruptedError:  # a signal: the caller's loop comes back (ok to proceed)
            return
        for fd, _ in ready:
            self.handle(fd)

    def on_child_exit(self, message: Mapping[str, object]) -> None:
        """Tell every attached preStop command how the child ended, the moment it has; late ones hear it too."""
        self.accept()  # a hook that connected while the child was exiting hears it now
        self.exited = message
        for hook in list(self.hooks.values()):
            self.tell(hook, message)

    def wait(self, grace: float) -> None:
        """Stay until the hooks have exited (at most `grace` seconds): when PID 1 exits the kernel SIGKILLs them.

        A hang-up is not enough: the hook still has to finish exiting, and a hook killed then is reported to
        the kubelet as a failed preStop. So wait on each hook's pidfd; without pidfds, on the hang-up. Hooks
        that connect meanwhile are told at once and waited for too. Then everything is closed.
        """
        deadline = time.monotonic() + grace
        self.service()
        arriving: dict[int, int] = {}  # pidfd -> pid: preStop commands entered into the container, not connected yet
        try:
            while True:
                self.watch_arriving(arriving)
                if not self.wait_once(deadline, arriving):
                    break
        finally:
            for pidfd in arriving:
                os.close(pidfd)
        waiting = len(self.hooks) + len(self.departing) + len(arriving)
        self.close()
        if waiting:
            self.log.warning(
                "control",
                f"{waiting} preStop command(s) still running after {grace:g}s ({knobs.HOOK_GRACE}); exiting anyway",
            )

    def watch_arriving(self, arriving: dict[int, int]) -> None:
        """Add preStop commands that are starting in this container but have not connected yet (their
        interpreter still loading when the child exited): PID 1 exiting now would have the kernel SIGKILL them."""
        known = set(arriving.values()) | {hook.pid for hook in self.hooks.values()} | set(self.departing)
        for pid in entered_commands():
            if pid in known or len(arriving) >= MAX_HOOKS:
                continue
            try:
                arriving[os.pidfd_open(pid)] = pid
            except OSError:  # exited meanwhile, or no pidfds here (ok to proceed)
                continue

    def wait_once(self, deadline: float, arriving: dict[int, int]) -> bool:
        """One wait for a hook to exit or connect; False when there is nothing left to wait for, or no time."""
        pidfds = {hook.pidfd: hook for hook in self.hooks.values() if hook.pidfd is not None}
        departing = {pidfd: pid for pid, pidfd in self.departing.items()}
        if not pidfds and not departing and not self.hooks and not arriving:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        poller = select.poll()
        for fd in [*pidfds, *departing, *arriving, *self.fds()]:
            poller.register(fd, select.POLLIN)
        try:
            ready = poller.poll(wait_ms(min(left, ARRIVING_RESCAN)))
        except InterruptedError:  # a signal: poll again (ok to proceed)
            return True
        for fd, _ in ready:
            if fd in pidfds:
                self.drop(pidfds[fd])
            elif fd in departing:
                if self.departing.get(departing[fd]) == fd:  # (not closed by a sweep meanwhile)
                    os.close(self.departing.pop(departing[fd]))
            elif fd in arriving:
                del arriving[fd]
                os.close(fd)
            elif fd in self:
                self.handle(fd)
        return True

    def close(self) -> None:
        """Close every connection, pidfd and the listener; log what refusals went unlogged."""
        for hook in list(self.hooks.values()):
            self.drop(hook, keep=False)
        for pidfd in self.departing.values():
            os.close(pidfd)
        self.departing.clear()
        if self.listener is not None:
            self.unregister(self.listener.fileno())
            self.listener.close()
            self.listener = None
        if self.reserve is not None:
            os.close(self.reserve)
            self.reserve = None
        self.refusals.flush()

    # ---- accepting -----------------------------------------------------------------------------------------
    def open_reserve(self) -> int | None:
        """A descriptor held only to be given back at the descriptor limit (O_PATH: no permission needed)."""
        try:
            return os.open("/", os.O_PATH | os.O_CLOEXEC)
        except OSError:  # at the limit already: tried again after the next accept (ok to proceed)
            return None

    def accept(self) -> None:
        """Accept what is pending (up to ACCEPTS_PER_CALL): each connection is admitted or closed at once."""
        if self.listener is None:
            return
        self.expire()
        for _ in range(ACCEPTS_PER_CALL):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):  # nothing pending (EAGAIN), or a signal (ok to proceed)
                return
            except OSError as exc:
                if exc.errno in DESCRIPTOR_LIMIT:
                    if not self.shed(exc):
                        return
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):  # that one is gone: next
                    continue
                self.refusals.refused(f"cannot accept a preStop channel connection ({exc.strerror})")
                return  # ENOMEM, ENOBUFS: try again on the next wake-up
            self.admit(conn)

    def shed(self, error: OSError) -> bool:
        """At the descriptor limit: give back the reserve, accept one connection and close it; False when there
        is no reserve to give back (the listener is then retried on the next wake-up)."""
        assert self.listener is not None
        if self.reserve is None:
            self.reserve = self.open_reserve()
            self.refusals.refused(f"cannot accept a preStop channel connection ({error.strerror})")
            return False
        os.close(self.reserve)
        self.reserve = None
        try:
            conn, _ = self.listener.accept()
        except OSError:  # gone meanwhile, or still at the limit (ok to proceed)
            pass
        else:
            control.reject(conn, {"event": "busy", "reason": "the supervisor is out of file descriptors"})
        self.reserve = self.open_reserve()
        self.refusals.refused(f"refused a preStop channel connection: {error.strerror} (the descriptor limit)")
        return self.reserve is not None

    def admit(self, conn: socket.socket) -> None:
        """Authenticate a new connection: keep it (bounded), or answer and close it at once."""
        try:
            conn.setblocking(False)
        except OSError:  # (ok to proceed: every call below passes MSG_DONTWAIT)
            pass
        peer = peers.identify(conn)
        if peer.problem is not None:
            self.refusals.refused(f"refused a preStop channel connection from {peer.describe()}: {peer.problem}")
            control.reject(conn, {"event": "refused", "reason": peer.problem})
            return
        if len(self.hooks) >= MAX_HOOKS:
            self.refusals.refused(
                f"refused a preStop channel connection from {peer.describe()}: {MAX_HOOKS} are open already"
            )
            control.reject(conn, {"event": "busy", "reason": f"{MAX_HOOKS} preStop commands are attached already"})
            peer.close()
            return
        hook = Hook(conn, peer.pid, peer.pidfd)
        self.hooks[hook.fd] = hook
        self.poller.register(hook.fd, select.POLLIN)
        if self.exited is not None:
            self.tell(hook, self.exited)  # a late hook: the child has exited already

    def expire(self) -> None:
        """Close connections that sent no request in time (until the child exits: then each was told)."""
        if self.exited is not None:
            return
        now = time.monotonic()
        for hook in list(self.hooks.values()):
            if not hook.requested and now - hook.since >= REQUEST_TIMEOUT:
                self.refusals.refused(
                    f"closed the preStop channel connection of pid {hook.pid}: no request in {REQUEST_TIMEOUT:g}s"
                )
                self.drop(hook, keep=False)

    # ---- serving -------------------------------------------------------------------------------------------
    def serve(self, hook: Hook) -> None:
        is_open, message = control.receive(hook.conn)
        if not is_open:  # hung up (the hook exited, or was killed)
            self.drop(hook)
            return
        if message == {}:  # nothing after all
            return
        if message != control.REQUEST or hook.requested:
            reason = "a second message" if hook.requested else "not a decommission request"
            self.refusals.refused(f"closed the preStop channel connection of pid {hook.pid}: {reason}")
            control.reject(hook.conn, {"event": "refused", "reason": reason})
            self.drop(hook, keep=False)
            return
        hook.requested = True
        if self.exited is not None:  # it was told how the child ended when it connected
            return
        self.tell(hook, self.on_request(hook.pid))  # `accepted`, or `declined` (a standalone master)

    def tell(self, hook: Hook, message: Mapping[str, object]) -> None:
        if not control.send(hook.conn, message):  # gone, or not reading: nothing more to tell it
            self.drop(hook)

    def drop(self, hook: Hook, keep: bool = True) -> None:
        """Close a connection. With `keep`, its process is still waited for at the end if it has not exited
        yet (at most MAX_HOOKS such pidfds, one per pid)."""
        if self.hooks.get(hook.fd) is hook:
            del self.hooks[hook.fd]
            self.unregister(hook.fd)
        hook.conn.close()
        pidfd, hook.pidfd = hook.pidfd, None
        if pidfd is None:
            return
        self.sweep()
        room = hook.pid not in self.departing and len(self.departing) < MAX_HOOKS
        if keep and room and not peers.has_exited(pidfd):
            self.departing[hook.pid] = pidfd
        else:
            os.close(pidfd)

    def sweep(self) -> None:
        """Forget the departing hooks that have exited."""
        for pid, pidfd in list(self.departing.items()):
            if peers.has_exited(pidfd):
                os.close(pidfd)
                del self.departing[pid]

    def unregister(self, fd: int) -> None:
        try:
            self.poller.unregister(fd)
        except KeyError:  # never registered there (ok to proceed)
            pass
