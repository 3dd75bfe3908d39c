"""The lean supervisor: running → decommissioning → terminated, with the stdlib and `transitions` only.

Entered by exec from the start-up process (handover.py) with every signal blocked and the child
already spawned. One event loop polls the signal wakeup fd, the child's pidfd and the stderr capture
pipe; the poll timeout is the next deadline. Nothing sleeps.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

from lifecycle import termination
from lifecycle.actions import Actions
from lifecycle.channel import HookServer
from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.knobs import Knobs, signal_name, wait_ms
from lifecycle.leftovers import Leftovers, proc_is_ours
from lifecycle.log import DRAIN, Log, print_error
from lifecycle.machine import Lifecycle, Phase, build_machine
from lifecycle.oom import OomWatch
from lifecycle.output import Output
from lifecycle.process import (
    catches_signal,
    exit_code,
    open_pidfd,
    reap,
    send_signal,
)
from lifecycle.redaction import Redactor, known_secrets
from lifecycle.signals import SignalInbox, forwardable
from lifecycle.termination import StderrTail

if TYPE_CHECKING:
    from collections.abc import Callable

    from transitions import EventData

PUMP_CHUNKS = 16  # reads of the child's stderr (64 KiB each) per turn of the loop: signals come first
FAULTS_IN_A_ROW = 20  # internal errors in consecutive turns of the loop before it stops supervising (exit 70)
FAULT_LINES = 10  # internal errors logged in full; later ones are counted and logged every FAULT_EVERY
FAULT_EVERY = 1000


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
        self.output_watched = False  # our stderr is registered for POLLOUT (output waits for a stalled reader)
        self.faults = self.faults_in_a_row = 0  # internal errors caught by the loop's guard
        self.refused_signals = 0  # EPERM from signalling the child (it became another user)
        self.sent_kill = False  # lifecycle itself SIGKILLed the child (a deadline): then it was no OOM kill
        # The preStop command's channel, bound by handover.py before the child started (none for a driver, or
        # when another lifecycle of this container holds it: handover logged why).
        self.channel = HookServer(log, control_fd, self.poller, self.serve_hook)

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
        try:
            send_signal(self.pid, sig)
        except PermissionError:
            self.not_permitted(sig)
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
            self.signal_child(signal.SIGTERM)  # as the kubelet's would be
            self.deadline = time.monotonic() + self.knobs.kill_grace
            self.log.warning(
                "deadline",
                f"decommission deadline passed: sent SIGTERM to {self.label}; SIGKILL "
                f"in {self.knobs.kill_grace:g}s (LIFECYCLE_KILL_GRACE)",
            )
        else:
            self.signal_child(signal.SIGKILL)
            self.deadline = None
            self.log.warning("deadline", f"{self.label} outlived LIFECYCLE_KILL_GRACE: sent SIGKILL")

    def terminate(self, event: EventData) -> None:
        """Each step guarded on its own: a fault in one must not skip stopping leftovers or the message."""
        steps: tuple[Callable[[], None], ...] = (
            lambda: Actions.terminate(self, event), lambda: self.notify_hooks(event), self.stop_descendants,
            self.wait_for_hooks)  # fmt: skip
        for step in steps:
            try:
                step()
            except Exception as exc:
                self.exit_code = EX_SOFTWARE if step is steps[0] else self.exit_code
                self.log.error("internal-error", f"internal error while terminating: {type(exc).__name__}: {exc}")

    # ---- effects ---------------------------------------------------------------------------------
    def forward(self, sig: int) -> None:
        try:
            sent = send_signal(self.pid, sig, group=self.knobs.signal_group)
        except PermissionError:
            self.not_permitted(sig)
            return
        self.log.debug(
            "forward", f"forwarded {signal_name(sig)} to {self.label}", signal=signal_name(sig), delivered=sent
        )

    def signal_child(self, sig: int) -> None:
        """A deadline's signal: to the child, and its group with LIFECYCLE_SIGNAL_GROUP=1 (process.send_signal)."""
        self.sent_kill = self.sent_kill or sig == signal.SIGKILL
        try:
            send_signal(self.pid, sig, group=self.knobs.signal_group)
        except PermissionError:
            self.not_permitted(sig)

    def not_permitted(self, sig: int) -> None:
        """EPERM: the child now runs as a user we may not signal (it exec'd a setuid program). Warn once."""
        self.refused_signals += 1
        if self.refused_signals == 1:
            self.log.warning(
                "forward",
                f"not permitted to send {signal_name(sig)} to {self.label} (pid {self.pid}): it runs as "
                "another user now (a setuid program?); later refusals are counted, not logged",
                signal=signal_name(sig),
            )

    def collect(self) -> None:
        _, status = reap(self.pid)
        if status is not None:
            self.status = status

    def pump_stderr(self, chunks: int = PUMP_CHUNKS) -> bool:
        """Copy what the child wrote to stderr on to ours (never blocking: log.out buffers or drops), keeping
        the tail; at most `chunks` reads a call, so a chatty child cannot starve the loop. False at end of file."""
        assert self.stderr_fd is not None and self.tail is not None
        for _ in range(chunks):
            try:
                data = os.read(self.stderr_fd, 65536)
            except (BlockingIOError, InterruptedError):  # drained for now (ok to proceed)
                return True
            if not data:
                return False
            self.tail.feed(data)
            self.log.out.write(data)
        return True

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
            oom_killed = self.oom.killed() if sig == signal.SIGKILL and not self.sent_kill else None
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
        """What the child left behind: SIGTERM, LIFECYCLE_ORPHAN_GRACE, SIGKILL (leftovers.py)."""
        Leftovers(self.log, self.pid, self.knobs.orphan_grace, self.wake).stop()
        self.pump_stderr_quietly()

    def wake(self, pidfds: list[int], timeout: float) -> None:
        """One poll while waiting at the end: these pidfds, signals, the child's stderr, our output, preStop
        commands arriving now. Signals are drained, not forwarded: the child they were for has exited."""
        poller = select.poll()
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        poller.register(self.inbox.read_fd, select.POLLIN)  # SIGCHLD, for leftovers without a pidfd
        if self.stderr_fd is not None:
            poller.register(self.stderr_fd, select.POLLIN)  # descendants may still write to it
        if self.log.out.waiting():
            poller.register(self.log.out.fd, select.POLLOUT)
        for fd in self.channel.fds():
            poller.register(fd, select.POLLIN)  # a preStop command arriving now
        poller.poll(wait_ms(timeout))
        self.pump_stderr_quietly()
        self.log.out.flush()
        self.inbox.drain()
        self.channel.service()

    # ---- the preStop command's channel (channel.py) ------------------------------------------------
    def serve_hook(self, pid: int) -> dict[str, object]:
        """An authenticated preStop command (pid `pid`) asks: decommission; the fields of the `accepted` answer."""
        assert self.model is not None
        if self.status is None:
            self.model.decommission_requested(source=f"the preStop command (pid {pid})")
        return {
            "state": self.model.state.value,
            "child_pid": self.pid,
            "signal": signal_name(self.knobs.decommission_signal),
            "deadline_s": self.knobs.decommission_timeout,
            "kill_grace_s": self.knobs.kill_grace,
        }

    def notify_hooks(self, event: EventData) -> None:
        """Tell every attached preStop command how the child ended, the moment it has."""
        outcome = event.kwargs.get("outcome")
        self.channel.on_child_exit(
            {
                "event": "exited",
                "exit_code": self.exit_code,
                "child_code": outcome[0] if outcome else None,
                "reason": outcome[2] if outcome else str(event.kwargs.get("error")),
                "deadline_passed": self.escalations > 0,
            }
        )

    def wait_for_hooks(self) -> None:
        """Stay until attached hooks have exited (at most LIFECYCLE_HOOK_GRACE), then close the channel."""
        self.channel.wait(self.knobs.hook_grace)

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
        """Feed events to the machine until it reaches `terminated`; return the exit code.

        The one guard of PID 1: whatever a turn raises is logged as one line and the loop goes on (the child
        keeps being supervised); only an error that repeats in FAULTS_IN_A_ROW turns running ends it, through
        `failed` (exit 70), which still tells the hooks, stops what is left and writes the termination message.
        """
        model = self.model
        assert model is not None
        self.poller.register(self.inbox.read_fd, select.POLLIN)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)
        if self.stderr_fd is not None:
            self.poller.register(self.stderr_fd, select.POLLIN)
        while model.state is not Phase.terminated:
            try:
                self.turn()
            except Exception as exc:
                self.fault(exc)
            else:
                self.faults_in_a_row = 0
        return self.exit_code

    def turn(self) -> None:
        """One poll and everything it woke for: signals and the child's exit first, then clients and output."""
        model = self.model
        assert model is not None
        self.watch_output()
        timeout = None if self.deadline is None else wait_ms(self.deadline - time.monotonic())
        ready = {fd for fd, _ in self.poller.poll(timeout)}
        self.handle_signals()
        if self.pidfd is not None and self.pidfd in ready:
            self.poller.unregister(self.pidfd)  # readable for good once the child exits
        if self.status is None:
            self.collect()  # SIGCHLD may coalesce; a cheap WNOHANG pass keeps us exact
        if self.status is not None:
            if self.stderr_fd is not None:
                self.pump_stderr()
            model.child_exited(outcome=self.outcome())
            return
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.deadline = None
            model.deadline_passed()
        self.serve_channel(ready)
        if self.stderr_fd is not None and self.stderr_fd in ready:
            fd = self.stderr_fd
            self.pump_stderr_quietly()
            if self.stderr_fd is None:
                self.poller.unregister(fd)
        self.log.out.flush()

    def watch_output(self) -> None:
        """Poll our stderr for POLLOUT only while output waits for it (a stalled reader)."""
        wanted = self.log.out.waiting()
        if wanted != self.output_watched:
            if wanted:
                self.poller.register(self.log.out.fd, select.POLLOUT)
            else:
                self.poller.unregister(self.log.out.fd)
            self.output_watched = wanted

    def serve_channel(self, ready: set[int]) -> None:
        """The preStop command's connections that the poll found ready."""
        for fd in ready:
            if fd in self.channel:
                self.channel.handle(fd)

    def fault(self, exc: Exception) -> None:
        """An internal error in a turn of the loop: one line (rate-limited); give up only if it persists."""
        assert self.model is not None
        self.faults += 1
        self.faults_in_a_row += 1
        if self.faults <= FAULT_LINES or self.faults % FAULT_EVERY == 0:
            self.log.error(
                "internal-error",
                f"internal error in the supervisor ({self.faults} so far): {type(exc).__name__}: {exc}; "
                f"still supervising {self.label} (pid {self.pid})",
            )
        if self.faults_in_a_row < FAULTS_IN_A_ROW or self.model.state is Phase.terminated:
            return
        error = LifecycleError(f"internal error: {type(exc).__name__}: {exc} (in {self.faults_in_a_row} turns "
                               "of the supervisor's loop in a row): stopping the child", EX_SOFTWARE)  # fmt: skip
        try:
            self.model.failed(error=error)
        except Exception as again:
            last_resort(self, again)


def last_resort(supervisor: Supervisor, exc: BaseException) -> NoReturn:
    """When even the machine cannot end the run: kill what is left, say why, exit 70. Never raises."""
    try:
        supervisor.log.error("internal-error", f"internal error: {type(exc).__name__}: {exc}; exiting with 70")
        if proc_is_ours():
            Leftovers(supervisor.log, supervisor.pid, 0.0, lambda pidfds, timeout: None).kill_all(os.getpid())
        elif os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)  # every process of our PID namespace but us
        termination.write(
            supervisor.knobs.termination_log,
            termination.compose(Phase.terminated.value, EX_SOFTWARE, None, f"internal error: {type(exc).__name__}", []),
        )
        supervisor.log.out.drain(DRAIN)
    finally:
        os._exit(EX_SOFTWARE)


def main(payload: str, exit_now: bool = False) -> int:
    """Entry from handover: build the machine at `launching`, install handlers, unblock, run.

    With exit_now (the lean process), end with os._exit once everything is flushed: the interpreter's
    teardown would add ~10 ms between the child's exit and ours. If the supervisor cannot even be built,
    the child is still supervised, by `fallback`.
    """
    data = json.loads(payload)
    try:
        supervisor = build(data)
    except Exception as exc:
        fallback(int(data["pid"]), exc)
    try:
        code = supervisor.run()
        supervisor.inbox.restore()
        supervisor.log.out.drain(DRAIN)
    except Exception as exc:
        last_resort(supervisor, exc)
    if exit_now:
        sys.stdout.flush()
        os._exit(code)
    return code


def build(data: dict[str, Any]) -> Supervisor:
    """The supervisor and its machine from the hand-over payload, handlers installed, signals unblocked."""
    knobs = Knobs.from_json_dict(data["knobs"])
    # Our own description of stderr, non-blocking (output.py); the child's stderr is the capture pipe.
    out = Output.open(2, reopen=True, exclusive=bool(data.get("stderr_exclusive")))
    pending = data.get("output") or {}
    out.buffer += str(pending.get("pending", "")).encode("latin-1")
    out.dropped_bytes, out.dropped_writes = int(pending.get("dropped", 0)), int(pending.get("writes", 0))
    log = Log(knobs.log_format, knobs.log_level, data["started"], out=out)
    log.redact = Redactor.from_environ().text
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
    return supervisor


def fallback(pid: int, exc: Exception) -> NoReturn:
    """The supervisor could not be built (a bug, or the OS refused something): supervise the child anyway,
    the way tini does (forward every signal, reap, exit with its status), and say so. Never returns."""
    code = EX_SOFTWARE
    try:
        print_error(f"internal error: {type(exc).__name__}: {exc}; supervising pid {pid} in fallback mode")

        def forward(sig: int, frame: object) -> None:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

        for sig in forwardable():
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, forward)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        while True:
            reaped, status = os.waitpid(-1, 0)  # PEP 475: retried after each forwarded signal
            if reaped == pid:
                code = exit_code(status)[0]
                break
    finally:
        os._exit(code)
