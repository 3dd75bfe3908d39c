"""The lean supervisor's event loop: one poll over the signal wakeup fd, the child's pidfd, its stderr, our
stderr (while output waits) and the preStop channel; the timeout is the next deadline; nothing sleeps.

Each turn's events go to the machine, whose state actions are SupervisorActions (actions.py). The loop is PID
1's one guard: whatever a turn raises is one log line and supervision goes on; only an error that repeats in
FAULTS_IN_A_ROW turns ends the run, through `failed` (exit 70), which still stops what is left and writes
the termination message.
"""

from __future__ import annotations

import select
import signal
import time

from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.knobs import signal_name, wait_ms
from lifecycle.machine import Lifecycle, Phase
from lifecycle.supervise.actions import SupervisorActions

FAULTS_IN_A_ROW = 20  # internal errors in consecutive turns of the loop before it stops supervising (exit 70)
FAULT_LINES = 10  # internal errors logged in full; later ones are counted and logged every FAULT_EVERY
FAULT_EVERY = 1000


class GaveUp(Exception):
    """Even `failed` raised: main.last_resort ends the run."""


class Loop:
    """Feeds the machine (model) the events of its actions' child, turn after turn, until `terminated`."""

    def __init__(self, actions: SupervisorActions, model: Lifecycle) -> None:
        self.actions, self.model = actions, model
        self.output_watched = False  # our stderr is registered for POLLOUT (output waits for a stalled reader)
        self.faults = self.faults_in_a_row = 0  # internal errors caught by the guard

    def handle_signals(self) -> None:
        """Signals first: SIGCHLD reaps, the trigger decommissions, anything else goes to the child."""
        for sig in self.actions.inbox.drain():
            if sig == signal.SIGCHLD:
                self.actions.collect()
            elif sig == self.actions.knobs.decommission_trigger and self.actions.status is None:
                self.actions.request_decommission(signal_name(sig))
            else:
                self.actions.forward(sig)

    def run(self) -> int:
        """Feed events to the machine until it reaches `terminated`; return the exit code.

        The one guard of PID 1: whatever a turn raises is logged as one line and the loop goes on (the child
        keeps being supervised); only an error that repeats in FAULTS_IN_A_ROW turns running ends it, through
        `failed` (exit 70), which still tells the hooks, stops what is left and writes the termination message.
        """
        model = self.model
        self.actions.poller.register(self.actions.inbox.read_fd, select.POLLIN)
        if self.actions.pidfd is not None:
            self.actions.poller.register(self.actions.pidfd, select.POLLIN)
        if self.actions.stderr_fd is not None:
            self.actions.poller.register(self.actions.stderr_fd, select.POLLIN)
        while model.state is not Phase.terminated:
            try:
                self.turn()
            except Exception as exc:
                self.fault(exc)
            else:
                self.faults_in_a_row = 0
        return self.actions.exit_code

    def turn(self) -> None:
        """One poll and everything it woke for: signals and the child's exit first, then clients and output."""
        model = self.model
        self.watch_output()
        ready = {fd for fd, _ in self.actions.poller.poll(self.timeout())}
        self.handle_signals()
        if self.actions.pidfd is not None and self.actions.pidfd in ready:
            self.actions.poller.unregister(self.actions.pidfd)  # readable for good once the child exits
        if self.actions.status is None:
            self.actions.collect()  # SIGCHLD may coalesce; a cheap WNOHANG pass keeps us exact
        if self.actions.status is not None:
            if self.actions.stderr_fd is not None:
                self.actions.pump_stderr()
            model.child_exited(outcome=self.actions.outcome(), scripts=self.actions.find_post_exit())
            return
        if self.actions.deadline is not None and time.monotonic() >= self.actions.deadline:
            self.actions.deadline = None
            model.deadline_passed()
        self.serve_channel(ready)
        self.follow_drain(ready)
        if self.actions.stderr_fd is not None and self.actions.stderr_fd in ready:
            fd = self.actions.stderr_fd
            self.actions.pump_stderr_quietly()
            if self.actions.stderr_fd is None:
                self.actions.poller.unregister(fd)
        self.actions.log.out.flush()

    def timeout(self) -> int | None:
        """The poll's timeout: the next deadline, or a look for executors that have no pidfd; None: no timeout."""
        waits = [self.actions.deadline - time.monotonic()] if self.actions.deadline is not None else []
        rescan = self.actions.drain.wake_in() if self.actions.drain is not None else None
        waits += [rescan] if rescan is not None and self.model.state is Phase.decommissioning else []
        return wait_ms(min(waits)) if waits else None

    def follow_drain(self, ready: set[int]) -> None:
        """A worker's drain: each executor's exit, then (none left, none new) executors_drained."""
        drain = self.actions.drain
        if drain is None or self.model.state is not Phase.decommissioning:
            return
        for pid in [drain.reaped(fd) for fd in sorted(ready) if fd in drain] + drain.look_again():
            self.model.executor_exited(record={"executor_pid": pid, "executors_left": drain.left(),
                                               "elapsed_s": drain.elapsed()})  # fmt: skip
        # the last one gone, and no executor started meanwhile; after a deadline's SIGTERM the drain has failed
        if drain.left() == 0 and self.actions.escalations == 0 and not drain.scan():
            self.model.executors_drained(record={"executors": drain.exited, "elapsed_s": drain.elapsed()})

    def watch_output(self) -> None:
        """Poll our stderr for POLLOUT only while output waits for it (a stalled reader)."""
        wanted = self.actions.log.out.waiting()
        if wanted != self.output_watched:
            if wanted:
                self.actions.poller.register(self.actions.log.out.fd, select.POLLOUT)
            else:
                self.actions.poller.unregister(self.actions.log.out.fd)
            self.output_watched = wanted

    def serve_channel(self, ready: set[int]) -> None:
        """The preStop command's connections that the poll found ready."""
        for fd in ready:
            if fd in self.actions.channel:
                self.actions.channel.handle(fd)

    def fault(self, exc: Exception) -> None:
        """An internal error in a turn of the loop: one line (rate-limited); give up only if it persists."""
        self.faults += 1
        self.faults_in_a_row += 1
        if self.faults <= FAULT_LINES or self.faults % FAULT_EVERY == 0:
            self.actions.log.error(
                "internal-error",
                f"internal error in the supervisor ({self.faults} so far): {type(exc).__name__}: {exc}; "
                f"still supervising {self.actions.label} (pid {self.actions.pid})",
            )
        if self.faults_in_a_row < FAULTS_IN_A_ROW or self.model.state is Phase.terminated:
            return
        error = LifecycleError(f"internal error: {type(exc).__name__}: {exc} (in {self.faults_in_a_row} turns "
                               "of the supervisor's loop in a row): stopping the child", EX_SOFTWARE)  # fmt: skip
        try:
            self.model.failed(error=error)
        except Exception as again:
            raise GaveUp(f"{type(again).__name__}: {again}") from again
