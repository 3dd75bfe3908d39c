"""The lean supervisor's entry point: the hand-over payload → SupervisorActions, the machine at `launching`,
the loop (loop.py); and what happens when even that fails (fallback, last_resort). Started by
lifecycle.launch.handover as `python -I -c "from lifecycle.supervise.main import main; …" PAYLOAD`."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
from typing import Any, NoReturn

from lifecycle import termination
from lifecycle.errors import EX_SOFTWARE
from lifecycle.knobs import Knobs
from lifecycle.log import DRAIN, Log, print_error
from lifecycle.machine import Lifecycle, Phase, build_machine
from lifecycle.oom import OomWatch
from lifecycle.output import Output
from lifecycle.peers import proc_is_ours
from lifecycle.process import exit_code
from lifecycle.redaction import Redactor
from lifecycle.signals import forwardable
from lifecycle.supervise.actions import SupervisorActions
from lifecycle.supervise.leftovers import Leftovers
from lifecycle.supervise.loop import Loop


def main(payload: str, exit_now: bool = False) -> int:
    """Entry from handover: build the machine at `launching`, install handlers, unblock, run.

    With exit_now (the lean process), end with os._exit once everything is flushed: the interpreter's
    teardown would add ~10 ms between the child's exit and ours. If the supervisor cannot even be built,
    the child is still supervised, by `fallback`.
    """
    data = json.loads(payload)
    try:
        loop = build(data)
    except Exception as exc:
        fallback(int(data["pid"]), exc)
    try:
        code = loop.run()
        loop.actions.inbox.restore()
        loop.actions.log.out.drain(DRAIN)
    except Exception as exc:
        last_resort(loop.actions, exc)
    if exit_now:
        sys.stdout.flush()
        os._exit(code)
    return code


def build(data: dict[str, Any]) -> Loop:
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
    supervisor = SupervisorActions(
        log, knobs, data["label"], data["pid"], data["stderr_fd"], oom, data.get("control_fd"), data.get("mode", "")
    )  # fmt: skip
    model = Lifecycle(supervisor)
    supervisor.model = model
    build_machine(model, initial=Phase.launching)
    gc.freeze()  # nothing allocated so far needs collecting: keeps the collector off the hot path
    supervisor.inbox.install([*forwardable(), signal.SIGCHLD])
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # pending signals arrive now, into the queue
    model.child_started(pid=data["pid"])
    return Loop(supervisor, model)


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


def last_resort(supervisor: SupervisorActions, exc: BaseException) -> NoReturn:
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
