"""The lean supervisor: running → decommissioning → terminated, with the stdlib and `transitions` only.

Entered by exec from the start-up process (handover.py) with every signal blocked and the child
already spawned. One event loop polls the signal wakeup fd, the child's pidfd and the stderr capture
pipe; the poll timeout is the next deadline. Nothing sleeps.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from lifecycle import control
from lifecycle.actions import Actions
from lifecycle.knobs import Knobs, signal_name
from lifecycle.log import Log
from lifecycle.machine import Lifecycle, Phase, build_machine
from lifecycle.oom import OomWatch
from lifecycle.process import catches_signal, descendants, exit_code, open_pidfd, reap, send_signal
from lifecycle.redaction import known_secrets
from lifecycle.signals import SignalInbox, forwardable
from lifecycle.termination import StderrTail

if TYPE_CHECKING:
    from transitions import EventData

KILL_WAIT = 2.0  # seconds to wait for SIGKILLed descendants to be reaped before giving up on them


def self_pid() -> int:
    """Our PID as the mounted /proc sees it (1 in a container whose /proc belongs to its PID namespace)."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return os.getpid()


class Supervisor(Actions):
    """The run-phase actions and the event loop that feeds the machine."""

    def __init__(
        self,
        log: Log,
        knobs: Knobs,
        label: str,
        pid: int,
        stderr_fd: int | None,
        oom: OomWatch | None = None,
        control_fd: int | None = None,
    ) -> None:
        super().__init__(log, knobs, label)
        self.pid = pid
        self.oom = oom or OomWatch()
        self.pidfd = open_pidfd(pid)
        self.status: int | None = None
        self.deadline: float | None = None
        self.escalations = 0
        self.decommissioned_at: float | None = None
        self.stderr_fd = stderr_fd
        self.tail = StderrTail(known_secrets(os.environ)) if stderr_fd is not None else None
        self.inbox = SignalInbox()
        self.poller = select.poll()
        # A driver is never decommissioned; its lifecycle must not take the channel from an executor's
        # lifecycle in the same mount namespace (a plain host, CI, a demo without root).
        if control_fd is not None:
            self.listener: socket.socket | None = control.adopt(control_fd)
        else:
            self.listener = control.listen() if label != "driver" else None
        if self.listener is None and label != "driver":
            log.warning(
                "control",
                "the decommission channel is taken by another lifecycle in this mount "
                "namespace: lifecycle-decommission will reach that one, or find the JVM by scanning",
            )
        self.hooks: dict[int, socket.socket] = {}
        self.exited_message: dict[str, object] = {}  # what notify_hooks told the hooks: late ones hear it too
        self.hook_pidfds: list[int] = []  # each attached hook's process: we wait for its exit, not its hang-up

    # ---- state actions -------------------------------------------------------------------------
    def supervise(self, event: EventData) -> None:
        self.log.info(
            "running", f"{self.label} running as pid {self.pid}", child_pid=self.pid, pidfd=self.pidfd is not None
        )

    def start_decommission(self, event: EventData) -> None:
        sig = self.knobs.decommission_signal
        self.decommissioned_at = time.monotonic()
        source = event.kwargs.get("source", "request")
        if catches_signal(self.pid, sig) is False:
            # The JVM has no handler (spark.decommission.enabled=false, or it has not registered yet):
            # the signal's default action would kill it with no shutdown hooks. SIGTERM at least runs them.
            self.log.warning(
                "decommission",
                f"{self.label} does not handle {signal_name(sig)}: sending SIGTERM "
                "instead (is spark.decommission.enabled=true and the executor registered?)",
            )
            sig = signal.SIGTERM
        send_signal(self.pid, sig)
        timeout = self.knobs.decommission_timeout
        if timeout is not None:
            self.deadline = time.monotonic() + timeout
        self.log.info(
            "decommission",
            f"sent {signal_name(sig)} to {self.label} (pid {self.pid}) on {source}; "
            + (f"deadline {timeout:g}s" if timeout is not None else "waiting for it to exit (no deadline)"),
            signal=signal_name(sig),
            deadline_s=timeout,
        )

    def repeat_decommission(self, event: EventData) -> None:
        self.log.info(
            "decommission", "already decommissioning: request ignored", source=event.kwargs.get("source", "request")
        )

    def escalate(self, event: EventData) -> None:
        self.escalations += 1
        if self.escalations == 1:
            send_signal(self.pid, signal.SIGTERM, group=self.knobs.signal_group)  # as the kubelet's would be
            self.deadline = time.monotonic() + self.knobs.kill_grace
            self.log.warning(
                "deadline",
                f"decommission deadline passed: sent SIGTERM to {self.label}; SIGKILL "
                f"in {self.knobs.kill_grace:g}s (LIFECYCLE_KILL_GRACE)",
            )
        else:
            send_signal(self.pid, signal.SIGKILL, group=self.knobs.signal_group)
            self.deadline = None
            self.log.warning("deadline", f"{self.label} outlived LIFECYCLE_KILL_GRACE: sent SIGKILL")

    def terminate(self, event: EventData) -> None:
        super().terminate(event)
        self.notify_hooks(event)
        self.stop_descendants()
        self.wait_for_hooks()

    # ---- effects ---------------------------------------------------------------------------------
    def forward(self, sig: int) -> None:
        sent = send_signal(self.pid, sig, group=self.knobs.signal_group)
        self.log.debug(
            "forward", f"forwarded {signal_name(sig)} to {self.label}", signal=signal_name(sig), delivered=sent
        )

    def collect(self) -> None:
        _, status = reap(self.pid)
        if status is not None:
            self.status = status

    def pump_stderr(self) -> bool:
        """Copy what the child wrote to stderr on to ours, keeping the tail; False at end of file."""
        assert self.stderr_fd is not None and self.tail is not None
        while True:
            try:
                data = os.read(self.stderr_fd, 65536)
            except BlockingIOError:  # drained for now (ok to proceed)
                return True
            if not data:
                return False
            self.tail.feed(data)
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(2, view) :]
                except OSError:  # our stderr is gone: keep the tail, drop the copy (ok to proceed)
                    break

    def pump_stderr_quietly(self) -> None:
        """Copy what is in the capture pipe; close it at end of file."""
        if self.stderr_fd is not None and not self.pump_stderr():
            os.close(self.stderr_fd)
            self.stderr_fd = None

    def outcome(self) -> tuple[int, int | None, str, list[str]]:
        assert self.status is not None
        code, sig = exit_code(self.status)
        if sig is not None:
            reason = f"{self.label} was killed by {signal_name(sig)}"
            oom_killed = self.oom.killed() if sig == signal.SIGKILL else None
            if oom_killed:
                reason += f": {oom_killed}"
                self.log.warning("oom", f"{self.label} (pid {self.pid}) {oom_killed}")
        else:
            reason = f"{self.label} exited with code {code}"
        if self.decommissioned_at is not None:
            drained = time.monotonic() - self.decommissioned_at
            reason += f" {drained:.3f}s after the decommission request"
        tail = self.tail.lines() if self.tail is not None and code != 0 else []
        return code, sig, reason, tail

    def stop_descendants(self) -> None:
        """tini exits at once and the kernel SIGKILLs what is left (krallin/tini#180): SIGTERM them and wait."""
        reap(self.pid)  # zombies are not "live descendants": collect them before deciding anything
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # no children means no descendants: orphans are reparented to us (PID 1/subreaper)
            return
        me = self_pid()
        remaining = descendants(me)
        reap(self.pid)  # scan, then reap: with no live descendant left, no new zombie can appear after this
        if not remaining:
            return
        grace = self.knobs.orphan_grace
        self.log.info(
            "descendants",
            f"{len(remaining)} descendant process(es) left: SIGTERM, then SIGKILL after "
            f"{grace:g}s (LIFECYCLE_ORPHAN_GRACE)",
            pids=remaining,
        )
        for pid in remaining:
            send_signal(pid, signal.SIGTERM)
        if not self.wait_for_descendants(me, time.monotonic() + grace):
            for pid in descendants(me):
                send_signal(pid, signal.SIGKILL)
            self.wait_for_descendants(me, time.monotonic() + KILL_WAIT)
        self.pump_stderr_quietly()

    def wait_for_descendants(self, me: int, deadline: float) -> bool:
        """Reap until no descendant is left or the deadline passes; each exit wakes the poll (pidfds)."""
        while True:
            remaining = descendants(me)  # scan, then reap: one that dies in between is reaped now or next pass
            reap(self.pid)
            left = deadline - time.monotonic()
            if not remaining:
                return True
            if left <= 0:
                return False
            poller = select.poll()
            fds = [fd for fd in (open_pidfd(pid) for pid in remaining) if fd is not None]
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.register(self.inbox.read_fd, select.POLLIN)  # SIGCHLD for kernels without pidfds
            if self.stderr_fd is not None:
                poller.register(self.stderr_fd, select.POLLIN)  # descendants may still write to it
            if self.listener is not None:
                poller.register(self.listener.fileno(), select.POLLIN)  # a preStop command arriving now
            try:
                poller.poll(left * 1000)
            finally:
                for fd in fds:
                    os.close(fd)
            self.pump_stderr_quietly()
            self.inbox.drain()
            self.accept_late_hooks()

    # ---- the preStop command's channel -------------------------------------------------------------
    def accept_hooks(self) -> None:
        assert self.listener is not None
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):  # no more pending (ok to proceed)
                return
            if not control.peer_allowed(conn):
                self.log.warning(
                    "control",
                    f"refused a decommission request from pid {control.peer_pid(conn)}: not root and not our uid",
                )
                control.send(conn, {"event": "refused", "reason": "not root and not the supervisor's uid"})
                conn.close()
                continue
            conn.setblocking(False)
            pidfd = open_pidfd(control.peer_pid(conn))
            if pidfd is not None:
                self.hook_pidfds.append(pidfd)
            self.hooks[conn.fileno()] = conn
            self.poller.register(conn.fileno(), select.POLLIN)

    def serve_hook(self, fd: int) -> None:
        assert self.model is not None
        conn = self.hooks[fd]
        message = control.receive(conn)
        if message is None:
            self.poller.unregister(fd)
            del self.hooks[fd]
            conn.close()
            return
        if message != control.REQUEST:
            return
        source = f"the preStop command (pid {control.peer_pid(conn)})"
        if self.status is None:
            self.model.decommission_requested(source=source)
        control.send(
            conn,
            {
                "event": "accepted",
                "state": self.model.state.value,
                "child_pid": self.pid,
                "signal": signal_name(self.knobs.decommission_signal),
                "deadline_s": self.knobs.decommission_timeout,
            },
        )

    def notify_hooks(self, event: EventData) -> None:
        """Tell every attached preStop command how the child ended, the moment it has."""
        if self.listener is not None:
            self.accept_hooks()  # a hook that connected while the child was exiting hears it too
        outcome = event.kwargs.get("outcome")
        message = {
            "event": "exited",
            "exit_code": self.exit_code,
            "child_code": outcome[0] if outcome else None,
            "reason": outcome[2] if outcome else str(event.kwargs.get("error")),
            "deadline_passed": self.escalations > 0,
        }
        self.exited_message = message
        for conn in self.hooks.values():
            control.send(conn, message)

    def accept_late_hooks(self) -> list[int]:
        """After the child's exit: accept hooks that connect now and tell them at once how it ended.

        Returns what to wait for before exiting: their pidfds (or, without pidfds, their connections).
        """
        if self.listener is None:
            return []
        known, known_pidfds = set(self.hooks), len(self.hook_pidfds)
        self.accept_hooks()
        late = [fd for fd in self.hooks if fd not in known]
        for fd in late:
            control.send(self.hooks[fd], self.exited_message)
        return self.hook_pidfds[known_pidfds:] if self.hook_pidfds else late

    def wait_for_hooks(self) -> None:
        """Stay until attached hooks have exited (bounded): when PID 1 exits the kernel SIGKILLs them.

        A hang-up is not enough: the hook still has to finish exiting, and a hook killed then is reported
        to the kubelet as a failed preStop. So wait on each hook's pidfd; without pidfds, on the hang-up.
        """
        deadline = time.monotonic() + self.knobs.hook_grace
        self.accept_late_hooks()
        waiting = list(self.hook_pidfds) if self.hook_pidfds else list(self.hooks)
        while waiting and time.monotonic() < deadline:
            poller = select.poll()
            for fd in waiting:
                poller.register(fd, select.POLLIN)
            if self.listener is not None:
                poller.register(self.listener.fileno(), select.POLLIN)
            for fd, _ in poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                if self.listener is not None and fd == self.listener.fileno():
                    waiting.extend(self.accept_late_hooks())
                elif fd in self.hooks and control.receive(self.hooks[fd]) is not None:
                    continue  # a message, not the hang-up
                elif fd in waiting:
                    waiting.remove(fd)
        for conn in self.hooks.values():
            conn.close()
        for fd in self.hook_pidfds:
            os.close(fd)
        if waiting:
            self.log.warning(
                "control",
                f"{len(waiting)} preStop command(s) still running after "
                f"{self.knobs.hook_grace:g}s (LIFECYCLE_HOOK_GRACE); exiting anyway",
            )

    # ---- the loop --------------------------------------------------------------------------------
    def handle_signals(self) -> None:
        assert self.model is not None
        for sig in self.inbox.drain():
            if sig == signal.SIGCHLD:
                self.collect()
            elif sig == self.knobs.decommission_trigger and self.status is None:
                self.model.decommission_requested(source=signal_name(sig))
            else:
                self.forward(sig)

    def run(self) -> int:
        """Feed events to the machine until it reaches `terminated`; return the exit code."""
        model = self.model
        assert model is not None
        self.poller.register(self.inbox.read_fd, select.POLLIN)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)
        if self.stderr_fd is not None:
            self.poller.register(self.stderr_fd, select.POLLIN)
        if self.listener is not None:
            self.poller.register(self.listener.fileno(), select.POLLIN)
        while model.state is not Phase.terminated:
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic()) * 1000
            for fd, _ in self.poller.poll(timeout):
                if fd == self.stderr_fd:
                    self.pump_stderr_quietly()
                    if self.stderr_fd is None:
                        self.poller.unregister(fd)
                elif fd == self.pidfd:
                    self.poller.unregister(fd)  # readable for good once the child exits
                    self.collect()
                elif self.listener is not None and fd == self.listener.fileno():
                    self.accept_hooks()
                elif fd in self.hooks:
                    self.serve_hook(fd)
            self.handle_signals()
            if self.status is None:
                self.collect()  # SIGCHLD may coalesce; a cheap WNOHANG pass keeps us exact
            if self.status is not None:
                if self.stderr_fd is not None:
                    self.pump_stderr()
                model.child_exited(outcome=self.outcome())
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                self.deadline = None
                model.deadline_passed()
        return self.exit_code


def main(payload: str, exit_now: bool = False) -> int:
    """Entry from handover: build the machine at `launching`, install handlers, unblock, run.

    With exit_now (the lean process), end with os._exit once everything is flushed: the interpreter's
    teardown would add ~10 ms between the child's exit and ours.
    """
    data = json.loads(payload)
    knobs = Knobs.from_json_dict(data["knobs"])
    log = Log(knobs.log_format, knobs.log_level, data["started"])
    before, where = data.get("oom") or (None, None)
    oom = OomWatch(before, (where[0], where[1]) if where else None)
    supervisor = Supervisor(
        log, knobs, data["label"], data["pid"], data["stderr_fd"], oom, data.get("control_fd")
    )  # fmt: skip
    model = Lifecycle(supervisor)
    supervisor.model = model
    build_machine(model, initial=Phase.launching)
    gc.freeze()  # nothing allocated so far needs collecting: keeps the collector off the hot path
    supervisor.inbox.install([*forwardable(), signal.SIGCHLD])
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # pending signals arrive now, into the queue
    model.child_started(pid=data["pid"])
    try:
        code = supervisor.run()
    finally:
        supervisor.inbox.restore()
    if exit_now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
