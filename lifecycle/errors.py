"""The one exception type, and every exit code lifecycle can return, each with its source."""

from __future__ import annotations

EX_OK = 0  # success
EX_FAILURE = 1  # generic failure (tini: bad argument)
EX_USAGE = 64  # sysexits.h EX_USAGE: bad command-line option before the mode
EX_PRE_LAUNCH = 69  # sysexits.h EX_UNAVAILABLE: a pre-launch script failed or timed out (a support program failed)
EX_SOFTWARE = 70  # sysexits.h EX_SOFTWARE: an internal error (a bug in lifecycle)
EX_OSERR = 71  # sysexits.h EX_OSERR: the OS refused something lifecycle needs (fork, pipe, exec: other errno)
EX_CONFIG = 78  # sysexits.h EX_CONFIG: invalid configuration (environment variables)
EXIT_NOT_EXECUTABLE = 126  # tini/bash: the command exists but cannot be executed (EACCES, ENOEXEC)
EXIT_NOT_FOUND = 127  # tini/bash: the command was not found (ENOENT)
EXIT_SIGNAL_BASE = 128  # bash/tini: a child killed by signal N exits 128+N

# The preStop decommission command (lifecycle-decommission) has its own codes; see decommission.py.
DECOM_DRAINED = 0  # the executor JVM exited after the decommission signal
DECOM_NOT_FOUND = 3  # no executor JVM was found in this PID namespace
DECOM_AMBIGUOUS = 4  # several executor JVMs were found; none was signalled
DECOM_DEADLINE = 5  # LIFECYCLE_DECOMMISSION_TIMEOUT passed before the JVM exited
DECOM_NOT_PERMITTED = 6  # the JVM could not be signalled (EPERM) or its identity could not be checked
DECOM_DECLINED = 7  # lifecycle runs a standalone master, which has no decommission: nothing was signalled


class LifecycleError(Exception):
    """An error shown to the user as one line, ending the run with a documented exit code."""

    def __init__(self, message: str, exit_code: int = EX_CONFIG, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.tail = tail  # lines for the termination message (a failed pre-launch script's last output)

    def __str__(self) -> str:
        return self.message


class ConfigError(LifecycleError):
    """One or more configuration problems, each a line naming the variable; exits EX_CONFIG."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), EX_CONFIG)
        self.problems = problems
