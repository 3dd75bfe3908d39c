"""The preStop command's fast path: ask this container's lifecycle supervisor over the control socket. The
supervisor owns the machine, sends the decommission signal and tells us the moment the JVM exits; it waits
(on our pidfd, up to LIFECYCLE_HOOK_GRACE) for this process to exit before it exits itself, so the command
returns 0 instead of being SIGKILLed with PID 1. An answer is trusted only from a server that is this
container's supervisor (peers.identify); anything doubtful is a Fallback to finding the JVM ourselves.

Imports before the request (the README's list, checked by tests/integration/test_process_boundaries.py):
lifecycle's prestop.main, prestop.client, control, peers, log, output, knobs and errors, and the stdlib's
select, _socket, struct, _struct, _json, math, errno and __future__ (no pydantic, psutil, dataclasses, typing,
json, re, enum or signal): its start-up counts against the pod's grace period.
"""

from __future__ import annotations

import os
import select
import time

from lifecycle import control, knobs, peers
from lifecycle.errors import DECOM_DEADLINE, DECOM_DECLINED, DECOM_DRAINED, LifecycleError
from lifecycle.log import Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

PROGRESS_EVERY = 5.0  # seconds between "still waiting" log lines
ACCEPT_TIMEOUT = 3.0  # seconds for the supervisor's `accepted` (it answers in about a millisecond)
EXITED_SLACK = 5.0  # seconds after the supervisor's deadline and kill grace for its `exited`
SERVER_EXIT_WAIT = 1.0  # seconds for a supervisor that hung up to finish exiting


def typed(value: str) -> object:
    """A control-message value for the JSON log: true/false as booleans, whole numbers as ints."""
    if value in ("true", "false"):
        return value == "true"
    if value.removeprefix("-").isdigit() and value.isascii():
        return int(value)
    return value


class Fallback(Exception):
    """The supervisor's path gave no trustworthy answer: find the JVM ourselves (path 2), saying why."""


def reach_supervisor(log: Log) -> tuple[_socket.socket, peers.Peer] | None:
    """A connection to this container's lifecycle supervisor, authenticated (peers.identify); None if none.

    The well-known name first (the fast path: nothing else is imported or read). A process that holds that
    name but is not this container's (another container of the pod, a host process) gets nothing from us, not
    even the request; then the supervisor's published private name (`published_supervisors`).
    """
    name = control.address()
    conn, why = control.dial(name)
    if conn is not None:
        peer = peers.identify(conn)
        if peer.problem is None:
            return conn, peer
        conn.close()
        log.warning(
            "control",
            f"the decommission channel is held by {peer.describe()}, not this container's lifecycle: "
            f"{peer.problem}; ignored",
        )
    elif why.startswith("its backlog"):
        log.warning("control", f"the decommission channel did not take the connection: {why}")
    return published_supervisors(log, skip=name)


def published_supervisors(log: Log, skip: str) -> tuple[_socket.socket, peers.Peer] | None:
    """The lifecycle supervisor of this container by the channel name it publishes in its command line (its
    hand-over payload): PID 1 first (lifecycle is the entrypoint), then every other process; only processes in
    our mount namespace, and only a server that is that very process."""
    from lifecycle.prestop.scan import cmdline  # off the fast path: only when the well-known name failed

    ours = peers.mount_namespace()
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc: nothing to find (the standalone path says so)
        return None
    pids = sorted(int(name) for name in names if name.isdigit() and int(name) not in (1, os.getpid()))
    for pid in [1, *pids]:
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != ours:
                continue
        except OSError:  # gone, or not ours to inspect
            continue
        argv = cmdline(pid)
        if len(argv) < 2 or control.SUPERVISOR_ENTRY not in argv[-2]:
            continue
        import json

        try:
            payload = json.loads(argv[-1])
        except ValueError:
            continue
        published = payload.get("control_name") if isinstance(payload, dict) else None
        if not isinstance(published, str) or not published.startswith(control.PREFIX) or "\0" + published == skip:
            continue
        conn, why = control.dial("\0" + published)
        if conn is None:
            log.warning("control", f"lifecycle's supervisor (pid {pid}) publishes a channel that refused: {why}")
            continue
        peer = peers.identify(conn)
        if peer.problem is None and peer.pid == pid:
            log.info("control", f"reached lifecycle's supervisor (pid {pid}) on the private channel it publishes")
            return conn, peer
        conn.close()
        peer.close()
        log.warning("control", f"the channel published by pid {pid} is held by {peer.describe()}: "
                    f"{peer.problem or 'another process'}; ignored")  # fmt: skip
    return None


def answer_bound(message: control.Message) -> float | None:
    """When the supervisor must have said how the JVM ended, from its `accepted` answer: its decommission
    deadline, its kill grace and EXITED_SLACK; None (no bound but the kubelet's) without a deadline."""
    try:
        deadline = float(message["deadline_s"])
        kill_grace = float(message.get("kill_grace_s", "0"))
    except (KeyError, ValueError):
        return None
    return time.monotonic() + deadline + kill_grace + EXITED_SLACK


def via_supervisor(conn: _socket.socket, peer: peers.Peer, log: Log) -> int:
    """Path 1: the supervisor does the work; we wait for its 'exited' message.

    Bounded: no `accepted` within ACCEPT_TIMEOUT, a malformed or unexpected message, a refusal, or a hang-up
    before `accepted` raise Fallback (the caller finds the JVM itself: a wrong answer never becomes exit 0);
    no `exited` once the supervisor's own deadline and kill grace have passed is exit 5.
    """
    if not control.send(conn, control.REQUEST):
        raise Fallback("the lifecycle supervisor hung up before the request")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    accepted = False
    bound: float | None = time.monotonic() + ACCEPT_TIMEOUT
    while True:
        left = PROGRESS_EVERY if bound is None else min(PROGRESS_EVERY, bound - time.monotonic())
        if left <= 0:
            if not accepted:
                raise Fallback(f"the lifecycle supervisor did not answer within {ACCEPT_TIMEOUT:g}s")
            raise LifecycleError("the lifecycle supervisor did not say how the executor ended by its own deadline "
                                 f"and kill grace (+{EXITED_SLACK:g}s)", DECOM_DEADLINE)  # fmt: skip
        if not poller.poll(knobs.wait_ms(left)):  # bounded: wakes to log progress
            if accepted:
                elapsed = round(log.elapsed_ms() / 1000, 1)
                log.info("waiting", "still waiting for the executor to exit", elapsed_s=elapsed)
            continue
        is_open, message = control.receive(conn)
        if not is_open:
            if not accepted:
                raise Fallback("the lifecycle supervisor closed the channel before accepting the request")
            if peer.pidfd is not None and not peers.has_exited(peer.pidfd, SERVER_EXIT_WAIT):
                raise Fallback("the lifecycle supervisor closed the channel but is still running")
            log.info("drained", "the lifecycle supervisor exited: the executor is gone with it")  # PID 1's exit
            return DECOM_DRAINED
        if message is None:
            raise Fallback("the lifecycle supervisor sent a malformed message")
        if not message:
            continue
        fields = {f"supervisor_{key}": typed(value) for key, value in message.items()}
        event = message.get("event")
        if event in ("refused", "busy"):
            raise Fallback(f"the lifecycle supervisor refused the request ({event}): {message.get('reason')}")
        if event == "declined" and not accepted:  # a standalone master: nothing to drain, nothing signalled
            log.error("declined", f"lifecycle declined the request: {message.get('reason')}", **fields)
            return DECOM_DECLINED
        if event == "accepted" and not accepted:
            accepted = True
            bound = answer_bound(message)
            log.info(
                "decommission",
                f"lifecycle (state {message.get('state')}) sent {message.get('signal')} to "
                f"the executor (pid {message.get('child_pid')})",
                **fields,
            )
        elif event == "exited":
            deadline = message.get("deadline_passed") == "true"
            name = "deadline" if deadline else "drained"
            log.emit("warning" if deadline else "info", name, message.get("reason", ""), **fields)
            conn.detach()  # the kernel closes it when we exit; the supervisor waits for our exit (pidfd)
            return DECOM_DEADLINE if deadline else DECOM_DRAINED
        else:
            raise Fallback(f"unexpected message from the lifecycle supervisor: event={event}")
