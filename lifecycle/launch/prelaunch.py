"""The pre-launch state's work in the start-up stage: each script of LIFECYCLE_PRE_LAUNCH_DIR in turn, bounded, its
exports applied to lifecycle's own environment, so that the settings validated next (and the child) see them.

Signals: the start-up stage runs with every signal blocked (cli.main), so that nothing sent before the supervisor's
handlers exist is lost. While the scripts run, SIGTERM and SIGINT (a stop: the pod deleted) and SIGCHLD (a script's
exit, where pidfds are refused) get enqueue-only handlers and are unblocked; every other signal stays blocked and
pending, as before: SIGPWR (a decommission request) is acted on once the child runs, others reach the child. A
stop is sent on to the running script's process group, and nothing is launched.
"""

from __future__ import annotations

import os
import select
import signal
import time
from types import TracebackType
from typing import TYPE_CHECKING

from lifecycle import knobs, scripts
from lifecycle.errors import EX_OSERR, EX_PRE_LAUNCH, ConfigError, LifecycleError
from lifecycle.launch import exports
from lifecycle.log import Log
from lifecycle.process import reap_all
from lifecycle.redaction import Redactor, is_secret_name, known_secrets
from lifecycle.scratch import ScratchFile
from lifecycle.signals import SignalInbox

if TYPE_CHECKING:
    from lifecycle.knobs import Knobs

STOPS = (signal.SIGTERM, signal.SIGINT)


class StartUpHost:
    """The start-up stage's side of a scripts.Runner: one poll over the script's descriptors, the stop signals and
    our stderr (while output waits for it); reaping (as PID 1, what a script leaves behind is reparented to us)."""

    def __init__(self, log: Log, trigger: int) -> None:
        self.log = log
        self.stops = {int(sig) for sig in STOPS} - {trigger}  # a stop signal chosen as the trigger stays a request
        self.handled = [*self.stops, int(signal.SIGCHLD)]
        self.inbox = SignalInbox()
        self.stopped: int | None = None

    def __enter__(self) -> StartUpHost:
        self.inbox.install(self.handled)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.handled)  # one sent earlier is delivered now: a stop
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.handled)  # from here on pending again, for the child
        for sig in self.inbox.drain():  # a stop that came after the last script's end: not lost, but pending
            if sig in self.stops and self.stopped is None:  # again, so it reaches the child as any signal sent
                os.kill(os.getpid(), sig)  # during the rest of start-up does (blocked: never dropped, PID 1 or not)
        self.inbox.restore()
        os.close(self.inbox.read_fd)
        os.close(self.inbox.write_fd)

    def wait(self, fds: list[int], timeout: float | None) -> None:
        poller = select.poll()
        for fd in [*fds, self.inbox.read_fd]:
            poller.register(fd, select.POLLIN)
        if self.log.out.waiting():
            poller.register(self.log.out.fd, select.POLLOUT)
        try:
            poller.poll(knobs.wait_ms(timeout))
        except InterruptedError:  # a signal: its handler queued it (ok to proceed)
            pass
        self.stop_signal()
        self.log.out.flush()

    def reaped(self, pid: int) -> int | None:
        # Only the running script's status is wanted (scripts run one at a time); orphans' are dropped, so what a
        # script's descendants leave behind costs no memory however many there are.
        return reap_all().get(pid)

    def stop_signal(self) -> int | None:
        for sig in self.inbox.drain():
            if sig in self.stops and self.stopped is None:
                self.stopped = sig
        return self.stopped


def run_all(log: Log, found: list[scripts.Script], early: Knobs, mask: set[int], mode: str) -> tuple[
        list[scripts.Result], int | None]:  # fmt: skip
    """Run the scripts in order: (their results, the stop signal that ended the run early, if one did). A failure
    under LIFECYCLE_PRE_LAUNCH_FAILURE=stop, a bad export or no place for LIFECYCLE_ENV_FILE raise LifecycleError."""
    results: list[scripts.Result] = []
    with StartUpHost(log, early.decommission_trigger) as host:
        runner = scripts.Runner(log, scripts.PRE_LAUNCH, host, early.kill_grace, mask, live=False)
        for script in found:
            if host.stop_signal() is not None:
                return results, host.stopped
            result = run_one(log, runner, script, early, mode)
            results.append(result)
            if result.stopped is not None:
                return results, result.stopped
    return results, None


def run_one(log: Log, runner: scripts.Runner, script: scripts.Script, early: Knobs, mode: str) -> scripts.Result:
    """One script with a LIFECYCLE_ENV_FILE of its own; then its output logged (its secrets known by then), its
    end reported, and its exports applied if it succeeded."""
    try:
        scratch = ScratchFile.create("env")
    except OSError as exc:
        raise LifecycleError(f"cannot create {scripts.ENV_FILE} for pre-launch script {script.name}: "
                             f"{exc.strerror or exc}", EX_OSERR) from None  # fmt: skip
    try:
        env = {**os.environ, scripts.ENV_FILE: scratch.path, scripts.MODE: mode}
        timeout = early.pre_launch_timeout
        result = runner.run(script, env, time.monotonic() + timeout, (timeout, knobs.PRE_LAUNCH_TIMEOUT),
                            scratch.fd if scratch.inherit else None)  # fmt: skip
        data, whole = scratch.read(exports.LIMIT)
    finally:
        scratch.close()
    where = f"{scripts.ENV_FILE} of pre-launch script {script.name},"  # no `NAME:`: it reads as `key: value`
    # A file too large is refused whole, but what its first MiB exports under a secret-looking name is redacted all
    # the same (below): the script may have printed the token it wrote before the garbage that made it too large.
    found, problems = exports.parse(data, where)
    if not whole:
        problems = [f"{where} more than {exports.LIMIT} bytes (at most {exports.LIMIT} are read)"]
    # What it exported under a secret-looking name is a known secret before a line of its output is logged,
    # whether or not the exports are applied: a script that prints a token and then fails must not show it.
    redactor = Redactor([*known_secrets(os.environ), *(value for name, value in found if is_secret_name(name))])
    log.redact = redactor.text
    runner.report(result)
    result.tail = tuple(redactor.text(line) for line in result.tail)
    if result.stopped is not None:
        return result
    if result.refused:  # the OS's refusal, not the script's failure: LIFECYCLE_PRE_LAUNCH_FAILURE does not apply
        raise LifecycleError(f"pre-launch script {script.name} {result.status()}: nothing launched", EX_OSERR)
    if not result.ok:
        message = f"pre-launch script {script.name} {result.status()}"
        if early.pre_launch_failure == "stop":
            raise LifecycleError(f"{message}: nothing launched ({knobs.PRE_LAUNCH_FAILURE}=stop)", EX_PRE_LAUNCH,
                                 tail=result.tail)  # fmt: skip
        log.warning("pre-launch", f"{message}; going on without its exports ({knobs.PRE_LAUNCH_FAILURE}=warn)",
                    script=script.name)  # fmt: skip
        return result
    if problems:
        raise ConfigError(problems)
    for name, value in found:
        os.environ[name] = value
    shown, secret = exports.describe(found)
    if found:
        names = ", ".join(shown) + (f"{' and ' if shown else ''}{secret} secret-named variable(s)" if secret else "")
        log.info("exports", f"{script.name} exported {names}", script=script.name, names=shown, secret_names=secret)
    log.redact = Redactor.from_environ().text
    return result
