"""Pre-launch and post-exit scripts: finding them in their directory, running one bounded, its output as log lines.

Shared by the start-up stage (pre-launch, launch/prelaunch.py) and the lean supervisor (post-exit,
supervise/postexit.py), which each give the Runner a `Host`: the process's own one poll (for the supervisor,
also the child's stderr, the preStop channel and its reaping) and its own signals. Stdlib only.

A script is started by fork and exec (script_spawn.py): in a process group of its own, stdin at end of file, stdout
and stderr one pipe to lifecycle, the signal mask lifecycle was started with and every signal at its default, and
no descriptor of lifecycle's but the scratch file it is given. The Runner never blocks but in the host's poll: it
reads the pipe without blocking, at most OUTPUT_LIMIT bytes of it become log lines, and at the deadline the
script's process group gets SIGTERM, then SIGKILL after LIFECYCLE_KILL_GRACE.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import time

from lifecycle.errors import EX_CONFIG, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, LifecycleError
from lifecycle.knobs import signal_name
from lifecycle.log import Log, printable
from lifecycle.process import exit_code, open_pidfd, send_signal
from lifecycle.script_output import Lines
from lifecycle.script_spawn import StartError, spawn_script

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Host(Protocol):
        """What the process running the scripts does while it waits for one."""

        def wait(self, fds: list[int], timeout: float | None) -> None:
            """One poll: these descriptors (POLLIN) and whatever the process serves meanwhile."""

        def reaped(self, pid: int) -> int | None:
            """The wait status of `pid` once it has exited (reaped here or by the host), else None."""

        def stop_signal(self) -> int | None:
            """A signal that asks to stop the run (pre-launch: SIGTERM, SIGINT), once one has come."""


PRE_LAUNCH, POST_EXIT = "pre-launch", "post-exit"
# What lifecycle gives a script in its environment (README, Scripts), besides the container's own variables.
ENV_FILE = "LIFECYCLE_ENV_FILE"  # pre-launch: where to write NAME=value lines (launch/exports.py)
MODE = "LIFECYCLE_MODE"  # driver, executor, master, worker or pass-through
CHILD_EXIT_CODE = "LIFECYCLE_CHILD_EXIT_CODE"  # post-exit: the child's code, 128+N for signal N
CHILD_SIGNAL = "LIFECYCLE_CHILD_SIGNAL"  # post-exit: the signal that ended it (SIGTERM), or empty
EXIT_CODE = "LIFECYCLE_EXIT_CODE"  # post-exit: the code lifecycle exits with (after LIFECYCLE_EXIT_REMAP)
EXIT_REASON = "LIFECYCLE_EXIT_REASON"  # post-exit: completed, failed, killed, oom-killed, decommissioned, deadline
EXIT_MESSAGE = "LIFECYCLE_EXIT_MESSAGE"  # post-exit: the reason as the termination message's first line says it
CHILD_STDERR = "LIFECYCLE_CHILD_STDERR"  # post-exit: a file with the child's last stderr lines, secrets redacted
SCRIPT_VARIABLES = (ENV_FILE, MODE, CHILD_EXIT_CODE, CHILD_SIGNAL, EXIT_CODE, EXIT_REASON, EXIT_MESSAGE, CHILD_STDERR)



class Script:
    """An executable found in a script directory: `name` as every message shows it (display_name), `path` as
    found."""

    __slots__ = ("name", "path")

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = display_name(name), path

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


def display_name(name: str) -> str:
    """A file name as one piece of one line: bytes that are not UTF-8 as \\xNN (printable), and every character that
    is not printable (a newline, or \\x1c, \\x85, \\u2028, which str.splitlines also splits at) as its escape, so
    that a name can neither split an error into two nor cut the termination message's first line short."""
    shown = printable(name)
    if shown.isprintable():
        return shown
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in shown)


def find(directory: str, variable: str) -> tuple[list[Script], list[str]]:
    """(the executables in `directory`, in lexical order of their names' bytes; the names skipped because they are
    not executable). Names starting with `.` and subdirectories are left out; a missing directory holds none. A
    path that is not a directory, or one that cannot be read, is a configuration error naming `variable`."""
    if not directory:
        return [], []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # no directory: no scripts (the default paths exist only in images that use them)
        return [], []
    except NotADirectoryError:
        raise LifecycleError(f"{variable}: {directory!r} is not a directory (expected a directory of executables, "
                             "or empty for none)", EX_CONFIG) from None  # fmt: skip
    except OSError as exc:
        raise LifecycleError(f"{variable}: cannot list {directory!r}: {exc.strerror} (expected a directory "
                             "lifecycle's user can read, or empty for none)", EX_CONFIG) from None  # fmt: skip
    scripts, skipped = [], []
    for name in sorted(names, key=os.fsencode):  # byte order, as run-parts(8) in the C locale
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.stat(path).st_mode
        except OSError:  # a dangling symlink, or gone meanwhile
            skipped.append(display_name(name))
            continue
        if stat.S_ISDIR(mode):
            continue
        if stat.S_ISREG(mode) and os.access(path, os.X_OK):
            scripts.append(Script(name, path))
        else:
            skipped.append(display_name(name))
    return scripts, skipped


class Result:
    """How one script ended."""

    def __init__(self, script: Script, stage: str, duration: float) -> None:
        self.script, self.stage, self.duration = script, stage, duration
        self.code: int | None = None  # shell-style: 128+N for signal N; 126/127 when it could not be executed
        self.signal: int | None = None
        self.error = ""  # why it could not be executed
        self.refused = False  # the OS refused to start it (StartError): not the script's failure
        self.timed_out: float | None = None  # the timeout it ran past, in seconds
        self.timeout_knob = ""
        self.stopped: int | None = None  # the stop signal it was sent
        self.abandoned = False  # it could not be ended (another user's now, or it outlived SIGKILL): left running
        self.tail: tuple[str, ...] = ()
        self.lines: Lines | None = None  # its output, until reported

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.timed_out is None and self.stopped is None

    @property
    def outcome(self) -> str:
        if self.stopped is not None:
            return "stopped"
        if self.timed_out is not None:
            return "timed-out"
        return "ok" if self.ok else "failed"

    def status(self) -> str:
        """What happened, as a log line or the termination message says it."""
        if self.refused:
            return f"could not be started: {self.error}"
        if self.error:
            return f"cannot be executed: {self.error}"
        ended = f"was killed by {signal_name(self.signal)}" if self.signal else f"exited with code {self.code}"
        if self.abandoned:
            ended = ("could not be ended (it became another user, or outlived SIGKILL): left running, no longer "
                     "waited for")
        if self.stopped is not None:
            return f"was sent {signal_name(self.stopped)} (lifecycle was asked to stop) and {ended}"
        if self.timed_out is not None:
            return f"timed out after {self.timed_out:g}s ({self.timeout_knob}) and {ended}"
        return ended

    def record(self) -> dict[str, Any]:
        """The script's fields in the JSON log (its own line, and the transition that leaves its state)."""
        return {
            "script": self.script.name,
            "outcome": self.outcome,
            "exit_code": self.code,
            "signal": signal_name(self.signal) if self.signal else None,
            "duration_ms": round(self.duration * 1000.0, 3),
        }


class Runner:
    """Runs scripts one at a time for a host process, each bounded by a deadline, and reports each one's end."""

    def __init__(self, log: Log, stage: str, host: Host, kill_grace: float, mask: set[int], live: bool) -> None:
        self.log, self.stage, self.host, self.kill_grace = log, stage, host, kill_grace
        self.mask, self.live = mask, live

    def run(self, script: Script, env: dict[str, str], deadline: float | None, timeout: tuple[float, str],
            keep: int | None = None) -> Result:  # fmt: skip
        """Run one script to its end (or the deadline's SIGTERM and the kill grace's SIGKILL); `timeout` is what
        the deadline came from (seconds, the knob), for the messages; `keep`, the one descriptor of lifecycle's the
        script gets (its scratch file's). Its output goes through `Lines`."""
        started = time.monotonic()
        lines = Lines(self.log, script, self.stage, self.live)
        result = Result(script, self.stage, 0.0)
        try:
            pid, read_fd = spawn_script(script.path, env, self.mask, keep)
        except OSError as exc:
            result.refused = isinstance(exc, StartError)
            result.code = EXIT_NOT_FOUND if exc.errno in (errno.ENOENT, errno.ENOTDIR) else EXIT_NOT_EXECUTABLE
            result.error = os.strerror(exc.errno) if exc.errno else str(exc)
            result.duration = time.monotonic() - started
            return self.ended(result, lines)
        self.log.info("script", f"{self.stage} script {script.name} started (pid {pid})", script=script.name,
                      stage=self.stage, script_pid=pid)  # fmt: skip
        status = self.wait_for(pid, read_fd, lines, result, deadline, timeout)
        result.duration = time.monotonic() - started
        if status is not None:
            result.code, result.signal = exit_code(status)
        return self.ended(result, lines)

    def wait_for(self, pid: int, fd: int, lines: Lines, result: Result, deadline: float | None,
                 timeout: tuple[float, str]) -> int | None:  # fmt: skip
        """The script's wait status, pumping its output meanwhile; SIGTERM at the deadline or on a stop signal,
        SIGKILL after the kill grace. None when it cannot be ended: SIGKILL was refused (EPERM: it became another
        user, a setuid program) or it outlived SIGKILL by another kill grace (a task stuck in the kernel); waiting
        for it would hold the start-up (or the post-exit state) for ever."""
        pidfd = open_pidfd(pid)
        read_fd: int | None = fd
        kill_at: float | None = None
        give_up_at: float | None = None
        try:
            while True:
                status = self.host.reaped(pid)
                if status is not None:
                    break
                now = time.monotonic()
                if give_up_at is not None and now >= give_up_at:
                    result.abandoned = True
                    name = result.script.name
                    self.log.warning("script", f"{self.stage} script {name} (pid {pid}) could not be ended: no longer "
                                     "waited for, left running", script=name)  # fmt: skip
                    break
                stop = self.host.stop_signal()
                if stop is not None and result.stopped is None:
                    result.stopped, kill_at = stop, now + self.kill_grace
                    self.signal(pid, stop)
                if deadline is not None and now >= deadline and result.timed_out is None and result.stopped is None:
                    result.timed_out, result.timeout_knob = timeout
                    kill_at = now + self.kill_grace
                    self.log.warning("script", f"{self.stage} script {result.script.name} ran past {timeout[0]:g}s "
                                     f"({timeout[1]}): SIGTERM, then SIGKILL after {self.kill_grace:g}s",
                                     script=result.script.name)  # fmt: skip
                    self.signal(pid, signal.SIGTERM)
                if kill_at is not None and now >= kill_at:
                    kill_at = None
                    give_up_at = now + (self.kill_grace if self.signal(pid, signal.SIGKILL) else 0.0)
                pending = [t for t in (kill_at, give_up_at, deadline if result.timed_out is None else None)
                           if t is not None]  # fmt: skip
                wake = min(pending) - now if pending else None
                self.host.wait([f for f in (pidfd, read_fd) if f is not None], None if wake is None else max(wake, 0))
                if read_fd is not None and not lines.pump(read_fd):
                    os.close(read_fd)
                    read_fd = None
        finally:
            if pidfd is not None:
                os.close(pidfd)
            if read_fd is not None:
                lines.pump(read_fd, chunks=64)  # what it wrote last; a process it left behind cannot hold us
                os.close(read_fd)
        return status

    def signal(self, pid: int, sig: int) -> bool:
        """To the script's process group (what it started goes too), and to the script if it left the group;
        False when that was not permitted."""
        try:
            send_signal(pid, sig, group=True)
        except PermissionError:  # it became another user (a setuid program): the deadline cannot end it
            self.log.warning("script", f"not permitted to send {signal_name(sig)} to {self.stage} script (pid {pid})")
            return False
        return True

    def ended(self, result: Result, lines: Lines) -> Result:
        result.lines = lines
        if self.live:
            self.report(result)
        return result

    def report(self, result: Result) -> None:
        """Log the script's output (if it waited) and how it ended, with its timing (the `script` record)."""
        if result.lines is not None:
            result.lines.finish()
            result.tail = tuple(result.lines.tail)
            result.lines = None
        name = result.script.name
        level = "info" if result.ok or self.stage == PRE_LAUNCH else "warning"  # pre-launch: the caller's policy
        self.log.emit(level, "script", f"{self.stage} script {name} {result.status()} in {result.duration:.3f}s",
                      stage=self.stage, **result.record())  # fmt: skip
