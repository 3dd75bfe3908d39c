"""Finding the executor JVM when no lifecycle supervises this container (tini, a shell, a vendor entrypoint):
by an argv element exactly equal to its main class, never a substring (decom.sh's `grep Executor` also matches
`-D` values and tini's own argv), with what identifies it (start time, argv) for the re-check after the pidfd
is open. Off the preStop command's fast path: loaded only when it finds the JVM itself (or, for `cmdline`, when
the supervisor's well-known channel failed).

The process facts come from psutil, imported on first use, so never on the fast path (whose import set the
README lists). Its cost here, measured on 2 cores with ~90 processes: find_executors takes ~30 ms against ~2 ms
for the hand-written /proc parse it replaced, nearly all of it psutil's import (~25 ms: subprocess, socket,
datetime …), on a path that already spends ~45 ms (bench decommission, pause → tini) importing the machine and
redaction and waiting for nsenter. Taken for one maintained reading of argv and start time, used for the pidfd
re-check too.
"""

from __future__ import annotations

import os

from lifecycle.process import VALUE_OPTIONS, main_class  # noqa: F401  (shared with the supervisor's drain)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import psutil

EXECUTOR_CLASSES = (
    "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",  # Spark 3.3+ (SPARK-36058)
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",  # Spark 2.3-3.2
)


class Target:
    """An executor JVM found by scanning the processes, with what identifies it."""

    __slots__ = ("cmdline", "pid", "start_time")

    def __init__(self, pid: int, start_time: float, cmdline: tuple[str, ...]) -> None:
        self.pid, self.start_time, self.cmdline = pid, start_time, cmdline


def started(process: psutil.Process) -> float:
    """psutil's create_time: the start in clock ticks after boot (/proc/<pid>/stat field 22) over CLK_TCK, plus
    the boot time. Equal floats for the same start, so the re-check compares exactly; a clock step between scan
    and re-check (the boot time is re-read) makes it differ, and the hook refuses: the safe side."""
    return float(process.create_time())


def arguments(process: psutil.Process) -> tuple[str, ...]:
    """The argv as psutil reads it, each element decoded as before: UTF-8, U+FFFD for what is not (psutil's
    surrogate escapes back to the bytes first, so a log line never meets a lone surrogate).

    psutil splits a single NUL-terminated element that holds spaces (a title rewritten by setproctitle,
    giampaolo/psutil#1179). So a process whose whole argv is the one string `java … KubernetesExecutorBackend`
    counts as an executor here where the hand-written parse did not. Such an argv is written on purpose, and any
    process can as easily write the NUL-separated form: argv never authenticated the JVM (the pid, start time and
    argv re-check only keeps a recycled PID from being signalled).
    """
    return tuple(os.fsencode(part).decode("utf-8", "replace") for part in process.cmdline())


def start_time(pid: int) -> float | None:
    """With the PID, identifies a process (`started`); None once it has gone."""
    import psutil

    try:
        return started(psutil.Process(pid))
    except psutil.Error:  # gone (NoSuchProcess), or not ours to read
        return None


def cmdline(pid: int) -> tuple[str, ...]:
    """The process's argv (`arguments`); () once it has gone, or for a zombie or a kernel thread."""
    import psutil

    try:
        return arguments(psutil.Process(pid))
    except psutil.Error:  # gone, a zombie (ZombieProcess), or not ours to read (AccessDenied)
        return ()


def find_executors() -> tuple[list[Target], list[str]]:
    """(executor JVMs, a short description of every other process seen): a java process whose main class
    is exactly the executor's, never a substring of its command line (decom.sh's `grep Executor`)."""
    import psutil

    found, seen = [], []
    me = os.getpid()
    for process in psutil.process_iter():  # skips processes that exit while listed
        if process.pid == me:
            continue
        try:
            argv = arguments(process)
            if not argv:  # a kernel thread or a zombie
                continue
            if main_class(argv) in EXECUTOR_CLASSES:
                found.append(Target(process.pid, started(process), argv))
            else:
                seen.append(f"{process.pid} {os.path.basename(argv[0])}")
        except psutil.Error:  # exited meanwhile, a zombie, or not ours to read (ok to proceed: not an executor)
            continue
    return found, seen


def describe(target: Target) -> str:
    """pid and argv without the classpath value (long, and not what tells executors apart)."""
    argv = list(target.cmdline)
    for flag in ("-cp", "-classpath", "--class-path"):
        if flag in argv[:-1]:
            argv[argv.index(flag) + 1] = "…"
    return f"pid {target.pid}: {' '.join(argv)[:300]}"
