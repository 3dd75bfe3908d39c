"""A stand-in pre-launch or post-exit script: says what it is told, exports what it is told, and reports signals.

Run as `python -m tests.helpers.script [OPTIONS]` from a one-line shell wrapper in a script directory (`install`
writes one). In this order it: prints each --say line on stdout and each --stderr line on stderr; prints
`NAME=value` (repr of the value) for each --env name; appends each --export text and a newline to the file
LIFECYCLE_ENV_FILE names; installs a handler that prints `got SIGx` for TERM, INT, HUP, USR1, USR2 and PWR
(TERM and INT then exit with --term-exit unless --ignore-term); writes `ready (pid: N)` into the FIFO --ready names (the
test blocks on that line: lifecycle logs a pre-launch script's output only when it exits); then, with --hold,
waits in signal.pause() until SIGUSR1 (`released`, exit 0); and exits with --exit.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

REPORTED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGPWR")
options = argparse.Namespace()


def say(text: str, fd: int = 1) -> None:
    os.write(fd, (text + "\n").encode())


def on_signal(signum: int, frame: FrameType | None) -> None:
    say(f"got {signal.Signals(signum).name}")
    if signum in (signal.SIGTERM, signal.SIGINT) and not options.ignore_term:
        os._exit(options.term_exit)
    if signum == signal.SIGUSR1 and options.hold:
        say("released")
        os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--say", action="append", default=[])
    parser.add_argument("--stderr", action="append", default=[])
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--export", action="append", default=[])
    parser.add_argument("--ready")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--term-exit", type=int, default=0)
    parser.add_argument("--exit", type=int, default=0)
    parser.parse_args(argv, namespace=options)
    for text in options.say:
        say(text)
    for text in options.stderr:
        say(text, 2)
    for name in options.env:
        say(f"{name}={os.environ.get(name)!r}")
    if options.export:
        with open(os.environ["LIFECYCLE_ENV_FILE"], "a", encoding="utf-8") as handle:
            handle.write("".join(text + "\n" for text in options.export))
    for name in REPORTED:
        signal.signal(signal.Signals[name], on_signal)
    if options.ready:
        with open(options.ready, "w") as fifo:
            fifo.write(f"ready (pid: {os.getpid()})\n")
    while options.hold:
        signal.pause()
    return int(options.exit)


def install(directory: Path, name: str, *args: str) -> Path:
    """An executable `directory/name` that runs this helper with `args` (the directory is created)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tests.helpers.script {shlex.join(args)}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
