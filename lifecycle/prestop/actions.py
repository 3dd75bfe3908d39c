"""HookActions: the preStop command's own path when no lifecycle supervises the container (or none answered
as this container's supervisor should): find the JVM (scan.py), pin it with a pidfd, re-check it, signal it
through the pidfd (a recycled PID is never hit) and wait on it, driven by the same machine from `running`.

Limitation: with tini as PID 1 of the container, tini exits with the JVM and the kernel SIGKILLs this command,
as it does decom.sh; with a shared process namespace (a pause process as PID 1) it exits cleanly.
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING

from lifecycle import knobs
from lifecycle.errors import (
    DECOM_AMBIGUOUS,
    DECOM_DEADLINE,
    DECOM_DRAINED,
    DECOM_NOT_FOUND,
    DECOM_NOT_PERMITTED,
    LifecycleError,
)
from lifecycle.log import Log
from lifecycle.machine import Lifecycle, Phase, build_machine, phase_value
from lifecycle.prestop.scan import EXECUTOR_CLASSES, Target, cmdline, describe, find_executors, start_time

if TYPE_CHECKING:
    from transitions import EventData

PROGRESS_EVERY = 5.0  # seconds between "still waiting" log lines


class HookActions:
    """The preStop command's state actions when it finds the JVM itself: attach (running) → decommissioning →
    terminated (start_decommission and terminate, as machine.ACTIONS names them)."""

    def __init__(self, log: Log, settings: knobs.Knobs, target: Target, pidfd: int) -> None:
        self.log, self.knobs, self.target, self.pidfd = log, settings, target, pidfd
        self.exit_code = DECOM_DRAINED
        self.signalled_at = 0.0
        self.model: Lifecycle | None = None

    def on_transition(self, event: EventData) -> None:
        assert event.transition is not None
        source, dest = phase_value(event.transition.source), phase_value(event.transition.dest)
        self.log.info(
            "transition", f"{source} -> {dest} ({event.event.name})", source=source, dest=dest, trigger=event.event.name
        )

    def start_decommission(self, event: EventData) -> None:
        assert self.model is not None
        try:
            self.send_signal()
        except LifecycleError as exc:
            self.model.failed(error=exc)  # queued: runs once this transition is complete

    def send_signal(self) -> None:
        import signal

        # Identity re-check after the pidfd is open: the pidfd pins the process we found, or none.
        if start_time(self.target.pid) != self.target.start_time or cmdline(self.target.pid) != self.target.cmdline:
            raise LifecycleError(
                f"pid {self.target.pid} is no longer the executor that was found (it exited, or "
                "its start time or argv changed); nothing was signalled",
                DECOM_NOT_FOUND,
            )
        sig = self.knobs.decommission_signal
        from lifecycle.process import catches_signal

        if catches_signal(self.target.pid, sig) is False:  # the supervisor's rule, for the same reason
            self.log.warning(
                "decommission",
                f"executor pid {self.target.pid} does not handle {knobs.signal_name(sig)}: sending SIGTERM "
                "instead (is spark.decommission.enabled=true and the executor registered?)",
            )
            sig = signal.SIGTERM
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except ProcessLookupError:
            raise LifecycleError(
                f"executor pid {self.target.pid} exited before it could be signalled", DECOM_NOT_FOUND
            ) from None
        except PermissionError:
            raise LifecycleError(
                f"not permitted to signal executor pid {self.target.pid} (run the hook as the container's user)",
                DECOM_NOT_PERMITTED,
            ) from None
        self.signalled_at = time.monotonic()
        self.log.info(
            "decommission",
            f"sent {knobs.signal_name(sig)} to executor pid {self.target.pid}",
            pid=self.target.pid,
            signal=knobs.signal_name(sig),
        )

    def terminate(self, event: EventData) -> None:
        error = event.kwargs.get("error")
        if error is not None:
            self.exit_code = error.exit_code
            self.log.error("error", error.message)
            return
        self.log.info(
            "drained",
            f"executor pid {self.target.pid} exited {time.monotonic() - self.signalled_at:.3f}s after the signal",
        )



def wait_for_exit(pidfd: int, log: Log, timeout: float | None, what: str) -> bool:
    """Block on the pidfd until the process exits (True) or the deadline passes (False)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        left = PROGRESS_EVERY if deadline is None else min(PROGRESS_EVERY, deadline - time.monotonic())
        if left <= 0:
            return False
        if poller.poll(knobs.wait_ms(left)):
            return True
        log.info("waiting", f"still waiting for {what} to exit", elapsed_s=round(log.elapsed_ms() / 1000, 1))


def standalone(settings: knobs.Knobs, log: Log) -> int:
    # (no lifecycle supervisor of this container answered, or it gave no trustworthy answer)
    """Path 2: find, pin, re-check, signal and wait, driven by the same state machine from `running`."""
    from lifecycle.redaction import Redactor  # off the fast path: `re`, ~5 ms

    log.redact = Redactor.from_environ().text  # JVM command lines (-Dspark.ssl.keyStorePassword=…) are shown here
    found, seen = find_executors()
    if not found:
        raise LifecycleError(
            f"no executor JVM found (no process has an argument equal to {EXECUTOR_CLASSES[0]} or "
            f"{EXECUTOR_CLASSES[1]}); processes seen: {', '.join(seen[:20]) or 'none'}",
            DECOM_NOT_FOUND,
        )
    if len(found) > 1:
        raise LifecycleError(
            f"{len(found)} executor JVMs found, none signalled: " + "; ".join(describe(t) for t in found),
            DECOM_AMBIGUOUS,
        )
    target = found[0]
    try:
        pidfd = os.pidfd_open(target.pid)
    except ProcessLookupError:
        raise LifecycleError(
            f"executor pid {target.pid} exited before it could be signalled", DECOM_NOT_FOUND
        ) from None
    except OSError as exc:  # EPERM, or ENOSYS/seccomp: without a pidfd no signal can be made race-free
        raise LifecycleError(
            f"cannot open a pidfd for executor pid {target.pid}: {exc.strerror} "
            "(Linux >= 5.3 without a seccomp filter on pidfd_open is needed)",
            DECOM_NOT_PERMITTED,
        ) from None
    hook = HookActions(log, settings, target, pidfd)
    model = hook.model = Lifecycle(hook)
    build_machine(model, initial=Phase.running)
    log.info("attached", f"found executor {describe(target)}", pid=target.pid)
    try:
        model.decommission_requested()
        if model.state is Phase.terminated:
            return hook.exit_code
        if wait_for_exit(pidfd, log, settings.decommission_timeout, f"executor pid {target.pid}"):
            model.child_exited()
        else:
            model.failed(
                error=LifecycleError(
                    f"executor pid {target.pid} still running after {knobs.DECOMMISSION_TIMEOUT}="
                    f"{settings.decommission_timeout:g}s",
                    DECOM_DEADLINE,
                )
            )
    finally:
        os.close(pidfd)
    return hook.exit_code
