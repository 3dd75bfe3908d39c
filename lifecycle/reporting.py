"""What the start-up stage and the supervisor both do with the machine: log each transition, and the terminated
state's action (map the outcome to an exit code, write the termination message). Stdlib only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifecycle import knobs, termination
from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.knobs import Knobs, signal_name
from lifecycle.log import Log
from lifecycle.machine import Lifecycle, Phase, phase_value

if TYPE_CHECKING:
    from transitions import EventData


class Reporter:
    """The base of LaunchActions and SupervisorActions: transitions logged, the end reported."""

    def __init__(self, log: Log, knobs: Knobs, label: str) -> None:
        self.log = log
        self.knobs = knobs
        self.label = label  # "executor", "driver" or the pass-through command, for messages
        self.model: Lifecycle | None = None
        self.exit_code = EX_SOFTWARE
        self.passed: list[str] = [Phase.initializing.value]

    def on_transition(self, event: EventData) -> None:
        assert event.transition is not None
        source = phase_value(event.transition.source)
        dest = phase_value(event.transition.dest) if event.transition.dest else source
        if dest != source:
            self.passed.append(dest)
        record = event.kwargs.get("record", {})  # what the event carries for the log (a worker's drain)
        detail = "".join(f", {key}={value}" for key, value in record.items())
        self.log.info(
            "transition",
            f"{source} -> {dest} ({event.event.name}{detail})",
            source=source,
            dest=dest,
            trigger=event.event.name,
            **{key: event.kwargs[key] for key in ("scripts", "results") if event.kwargs.get(key)},
            **record,
        )

    def terminate(self, event: EventData) -> None:
        """terminated: map the outcome to an exit code, write the termination message, log the end."""
        error: LifecycleError | None = event.kwargs.get("error")
        if error is not None:
            self.exit_code = error.exit_code
            for line in error.message.splitlines():
                self.log.error("error", line)
            self.finish(error.exit_code, None, error.message.splitlines()[0], list(error.tail), "last output lines")
            return
        code, sig, reason, tail = event.kwargs["outcome"]
        self.exit_code, reason = self.remapped(code, reason)
        self.finish(self.exit_code, sig, reason, tail)

    def remapped(self, code: int, reason: str) -> tuple[int, str]:
        """The exit code for the child's `code` after LIFECYCLE_EXIT_REMAP, and the reason saying so."""
        mapped = self.knobs.exit_remap.get(code, code)
        if mapped != code:
            reason += f"; exit code {code} remapped to {mapped} ({knobs.EXIT_REMAP})"
        return mapped, reason

    def finish(self, code: int, sig: int | None, reason: str, tail: list[str], label: str = "last stderr lines"
               ) -> None:  # fmt: skip
        shown = signal_name(sig) if sig else None
        message = termination.compose(Phase.terminated.value, code, shown, reason, tail, label=label)
        written = termination.write(self.knobs.termination_log, message)
        self.log.info(
            "terminated",
            f"exit {code}: {reason}",
            exit_code=code,
            signal=signal_name(sig) if sig else None,
            termination_log=written,
        )
