"""argv → mode → machine → exit code.
`lifecycle [OPTIONS] driver ARGS… | executor | master ARGS… | worker MASTER_URL ARGS… | COMMAND ARGS…`"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Sequence

from lifecycle import __version__, knobs
from lifecycle.errors import EX_OK, EX_USAGE, LifecycleError
from lifecycle.launch.invocation import Invocation
from lifecycle.log import DRAIN, Log, print_error, write_stderr
from lifecycle.redaction import Redactor, known_secrets, redact_arg

USAGE = """\
usage: lifecycle [--dry-run [--json]] driver [SPARK-SUBMIT ARGS…]
       lifecycle [--dry-run [--json]] executor
       lifecycle [--dry-run [--json]] master [MASTER ARGS…]
       lifecycle [--dry-run [--json]] worker MASTER_URL [WORKER ARGS…]
       lifecycle [--dry-run [--json]] [--] COMMAND [ARGS…]
       lifecycle --help | --version
"""

HELP_TOP = """\
lifecycle: the container entrypoint, PID 1 and decommission runtime for Spark on Kubernetes.

The first argument keeps upstream entrypoint.sh's meaning: `driver` runs spark-submit in client mode,
`executor` runs the executor JVM, anything else runs as given (pass-through). Options go before it.
`master` and `worker` run a standalone cluster's Master and Worker JVMs in the foreground, through
spark-class as start-master.sh and start-worker.sh would; a command literally named master or worker
runs as given after `--` (lifecycle -- master).

options:
  --dry-run   print the launch plan (argv, environment changes, classpath, states) and exit 0
  --json      with --dry-run: the plan as one JSON object
  --help      this text;  --version: the version
  --          end of options (for a pass-through command that starts with '-')

exit codes: the child's code; 128+N if it died of signal N; 126 not executable; 127 not found;
            64 bad option; 78 configuration error; 69 a pre-launch script failed; 70 internal error;
            71 OS error.
"""


def shown(arg: str) -> str:
    """An argument as an error message may quote it: secret assignments and known secret values redacted."""
    return redact_arg(arg, known_secrets(os.environ))


def parse_args(argv: Sequence[str]) -> Invocation | str:
    """An Invocation, or the text to print for --help/--version. Options are only read before the mode."""
    dry_run = as_json = False
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option = argv[index]
        index += 1
        if option == "--":
            break
        if option in ("-h", "--help"):
            return help_text()
        if option == "--version":
            return f"lifecycle {__version__}\n"
        if option == "--dry-run":
            dry_run = True
        elif option == "--json":
            as_json = True
        else:
            raise LifecycleError(
                f"unknown option {shown(option)!r}: expected --dry-run, --json, --help, --version or -- "
                "before the mode",
                EX_USAGE,
            )
    rest = tuple(argv[index:])
    if not rest:
        raise LifecycleError(
            "no mode or command given: expected driver, executor, master, worker or a command to run", EX_USAGE
        )
    if as_json and not dry_run:
        raise LifecycleError("--json goes with --dry-run", EX_USAGE)
    if rest[0] == "executor" and len(rest) > 1:  # upstream ignores them silently; an option here is a mistake
        raise LifecycleError(
            f"executor takes no arguments, got {shown(rest[1])!r} (options go before the mode: "
            "lifecycle --dry-run executor)",
            EX_USAGE,
        )
    if rest[0] in ("master", "worker") and index > 0 and argv[index - 1] == "--":
        # `lifecycle -- master`: a command of that name (before these modes existed, both were pass-through;
        # driver and executor keep upstream entrypoint.sh's meaning, which has no `--`)
        return Invocation("pass-through", rest, dry_run, as_json)
    if rest[0] == "worker":
        check_master_url(rest[1] if len(rest) > 1 else None)
    if rest[0] in ("driver", "executor", "master", "worker"):
        return Invocation(rest[0], rest[1:], dry_run, as_json)
    return Invocation("pass-through", rest, dry_run, as_json)


def check_master_url(url: str | None) -> None:
    """`worker`'s first argument: spark://HOST:PORT, or several HOST:PORT after spark:// separated by commas
    (standby masters), as the Worker parses it (Utils.parseStandaloneMasterUrls)."""
    example = "lifecycle worker spark://HOST:PORT"
    if url is None:
        raise LifecycleError(f"worker needs the master's URL first: {example}", EX_USAGE)
    hosts = url.removeprefix("spark://").split(",")
    valid = url.startswith("spark://") and all(
        host and port.isascii() and port.isdigit() and int(port) <= 65535
        for host, _, port in (item.rpartition(":") for item in hosts)
    )
    if not valid:
        raise LifecycleError(f"worker: expected the master's URL first, like spark://HOST:PORT, got "
                             f"{shown(url)!r} ({example} [WORKER ARGS…])", EX_USAGE)  # fmt: skip


def help_text() -> str:
    lines = [HELP_TOP, "environment variables (lifecycle's own; Spark's are in the README):"]
    for knob in knobs.KNOBS:
        default = knob.default if knob.default else "(empty)"
        lines.append(f"  {knob.name:32} default {default}: {knob.effect} [{knob.accepted}]")
    return USAGE + "\n" + "\n".join(lines) + "\n"


def early_knobs() -> knobs.Knobs:
    """The knobs until settings are validated: the defaults, except how lifecycle logs and where the termination
    message goes (a configuration error is reported there too). Read with the table's parsers, but leniently:
    a bad value is the default here, and validation reports it (in that format, at that level, to that file)."""
    return knobs.load_knobs(names=(knobs.LOG_FORMAT, knobs.LOG_LEVEL, knobs.TERMINATION_LOG), lenient=True)


def early_log(started: float, early: knobs.Knobs) -> Log:
    log = Log(early.log_format, early.log_level, started)
    log.redact = Redactor.from_environ().text  # a pass-through argv, a path: nothing secret is shown
    return log


def std_streams() -> None:
    """fds 0-2 open (on /dev/null where they were closed) and sys.stdin/stdout/stderr usable, first thing."""
    from lifecycle.launch.spawn import ensure_std_fds

    ensure_std_fds()
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is None:  # Python leaves None for a descriptor that was closed at start-up
            setattr(sys, name, open(fd, mode, closefd=False, errors="backslashreplace"))  # noqa: SIM115


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lifecycle: parse argv, block signals, build the machine, run its first state's action.

    The cyclic garbage collector is off meanwhile: start-up creates hundreds of thousands of objects (most of
    them importing pydantic-settings) and frees few, so its collections find little to free and cost 16 M
    instructions of the 495 M up to the JVM's exec (README, Benchmarks). This process then execs (the JVM, or
    the supervisor, whose interpreter starts with it on) or exits; when main returns, it is as it was.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run(argv)
    finally:
        if collecting:
            gc.enable()


def run(argv: Sequence[str] | None) -> int:
    started = time.monotonic()
    std_streams()
    try:
        parsed = parse_args(sys.argv[1:] if argv is None else argv)
    except LifecycleError as exc:
        log = early_log(started, early_knobs())
        if log.fmt == "json":
            log.error("usage", exc.message, exit_code=exc.exit_code)
        else:
            print_error(exc.message)
            write_stderr(USAGE)
        return exc.exit_code
    if isinstance(parsed, str):
        sys.stdout.write(parsed)
        return EX_OK
    from lifecycle.launch.spawn import inherited_fds
    from lifecycle.signals import block_all, inherited_ignored

    mask = set() if parsed.dry_run else block_all()  # before the heavy imports: nothing sent is lost (handover)
    from lifecycle.launch.actions import LaunchActions
    from lifecycle.machine import Lifecycle, build_machine

    early = early_knobs()
    ignored, inherited = inherited_ignored(), inherited_fds()
    launcher = LaunchActions(parsed, early_log(started, early), early, started, mask, ignored, inherited)
    launcher.model = Lifecycle(launcher)
    build_machine(launcher.model)
    launcher.initialize()
    launcher.log.out.drain(DRAIN)  # a configuration error's lines, or a dry run's log: bounded, never stuck
    return launcher.exit_code
