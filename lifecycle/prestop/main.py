"""`lifecycle-decommission`: the executor's preStop hook (`spark.kubernetes.decommission.script`).

Run by the kubelet with no arguments and no shell. Two paths: lifecycle supervises this container, so ask it
(client.py, the fast path); or anything else is the entrypoint, so find the JVM and drain it here (actions.py,
loaded only then).
"""

from __future__ import annotations

import os
import sys
import time

from lifecycle import knobs
from lifecycle.errors import EX_SOFTWARE, EX_USAGE, ConfigError, LifecycleError
from lifecycle.log import Log, print_error
from lifecycle.prestop.client import Fallback, reach_supervisor, via_supervisor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "lifecycle-decommission"
KNOB_NAMES = (knobs.DECOMMISSION_SIGNAL, knobs.DECOMMISSION_TIMEOUT, knobs.LOG_FORMAT, knobs.LOG_LEVEL)


def main(argv: Sequence[str] | None = None) -> int:
    """The preStop entry: no arguments; settings from the same LIFECYCLE_* variables as the entrypoint."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        from lifecycle.redaction import display_arg  # an error path: the import cost does not matter here

        print_error(f"takes no arguments (it is run by the kubelet as a preStop hook), got {display_arg(args[0])!r}",
                    NAME)  # fmt: skip
        return EX_USAGE
    started = time.monotonic()
    try:
        log_format, log_level = knobs.log_knobs()
        values = knobs.parse_knobs(names=KNOB_NAMES)  # only what is set: a bad value is still exit 78
    except ConfigError as exc:
        print_error(exc.message, NAME)
        return exc.exit_code
    log = Log(log_format, log_level, started, name=NAME)
    try:
        reached = reach_supervisor(log)
        if reached is not None:  # the supervisor's own LIFECYCLE_* settings decide the signal and the deadline
            try:
                return via_supervisor(*reached, log)
            except Fallback as why:
                reached[0].close()
                log.warning("fallback", f"{why}: finding the executor JVM itself")
        from lifecycle.prestop.actions import standalone  # the machine, the scan and `signal`: only on this path

        return standalone(knobs.Knobs(**values), log)
    except LifecycleError as exc:
        log.error("error", exc.message)
        return exc.exit_code
    except Exception as exc:  # a bug: still one line and a documented code, never a traceback
        log.error("error", f"internal error: {type(exc).__name__}: {exc}")
        return EX_SOFTWARE


def run() -> None:
    """The console script: main(), then exit at once (the interpreter's clean-up is time the kubelet waits)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
