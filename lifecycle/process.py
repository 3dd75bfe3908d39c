"""Processes once they run: pidfds, exit statuses, reaping, descendants, signalling (the supervisor and the
preStop command; starting the child is lifecycle/launch/spawn.py, a script lifecycle/scripts.py)."""

from __future__ import annotations

import os

from lifecycle.errors import EXIT_SIGNAL_BASE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def exit_code(status: int) -> tuple[int, int | None]:
    """(shell-style exit code, signal number or None) from a waitpid status: 128+N for signal N."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return EXIT_SIGNAL_BASE + sig, sig
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    return EXIT_SIGNAL_BASE, None  # stopped/continued never reach here: waitpid without WUNTRACED


def open_pidfd(pid: int) -> int | None:
    """A pidfd (Linux >= 5.3) or None where the kernel, seccomp or fd limits refuse one (then SIGCHLD only)."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:  # ENOSYS, EPERM (seccomp), EMFILE, ESRCH: fall back (ok to proceed)
        return None


def reap(main_pid: int) -> tuple[list[int], int | None]:
    """Reap every exited child without blocking: (pids reaped, the main child's status if it was one)."""
    statuses = reap_all()
    return list(statuses), statuses.get(main_pid)


def reap_all() -> dict[int, int]:
    """Reap every exited child without blocking: {pid: wait status}, in the order reaped."""
    statuses: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children left (ok to proceed)
            break
        if pid == 0:
            break
        statuses[pid] = status
    return statuses


# Descendants come from psutil, imported here (and in supervise/drain.py) only lazily: in the lean supervisor it
# costs ~15 ms and ~1.9 MiB RSS (14.5 -> 16.4 MiB: 20 modules, among them subprocess, socket, datetime), so it must
# stay out of the steady state. Its callers run at the end only: leftovers.py once the main child has exited and
# it still has children, peers.entered_commands as PID 1 waiting for preStop commands, a standalone worker's drain
# (issue #16) from its decommission request on; and parent_map answers from a listdir when no other process
# exists (PID 1 exiting alone imports nothing).
STATUS_GONE = ("zombie", "dead")  # psutil.STATUS_ZOMBIE, STATUS_DEAD: exited already, only not reaped yet


def parent_map() -> dict[int, int]:
    """pid → ppid for every live process in /proc (this PID namespace when /proc is its own: the caller checks).

    Zombies are left out: they are dead already, and one whose parent never reaps it must not hold up
    the wait for descendants (an exited process's children are reparented at once, so none is lost).
    """
    me = os.getpid()
    try:
        alone = all(name == str(me) for name in os.listdir("/proc") if name.isdigit())
    except OSError:  # no /proc: nothing to list
        return {}
    if alone:
        return {me: os.getppid()}
    import psutil

    parents = {}
    for process in psutil.process_iter(["ppid", "status"]):  # skips processes that exit while listed
        ppid, status = process.info["ppid"], process.info["status"]
        if ppid is not None and status not in STATUS_GONE:
            parents[process.pid] = ppid
    return parents


def descendants(root: int) -> list[int]:
    """Every live descendant of `root` (children, grandchildren …), sorted; zombies left out (parent_map's
    reason). psutil's walk also drops a PID that is older than `root`: one reused after a descendant exited.

    ~50 µs a descendant against ~16 µs for a hand-written /proc parse (500 descendants: ~33 ms a scan against
    ~8 ms): paid at exit only, where leftovers.py rescans while freezing; worth one tested walk of the tree.
    """
    import psutil

    try:
        found = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:  # root itself has gone: it has no descendants left to find
        return []
    live = []
    for process in found:
        try:
            if process.status() not in STATUS_GONE:
                live.append(process.pid)
        except psutil.Error:  # exited while listed, or not ours to read (ok to proceed: as before, left out)
            continue
    return sorted(live)


def send_signal(pid: int, sig: int, group: bool = False) -> bool:
    """kill(2) to a pid or (group=True) its process group and the pid itself; False if it is already gone.

    With group=True the pid is signalled on its own too when it has left the group it was started in (a
    child that called setsid or setpgid would otherwise miss a deadline's SIGKILL). PermissionError
    (EPERM: the process became another user) is the caller's to handle.
    """
    try:
        if not group:
            os.kill(pid, sig)
            return True
        os.killpg(pid, sig)
    except ProcessLookupError:  # already exited, or (group) the group is empty (ok to proceed)
        if not group:
            return False
    try:
        if os.getpgid(pid) != pid:
            os.kill(pid, sig)
    except ProcessLookupError:  # exited (ok to proceed)
        return False
    return True


def signal_quietly(pid: int, sig: int) -> bool:
    """kill(2) that never raises: for leftover descendants, where one refusal must not stop the others."""
    try:
        os.kill(pid, sig)
    except OSError:  # gone (ESRCH) or another user's now (EPERM): nothing more to do for this one
        return False
    return True


def catches_signal(pid: int, sig: int) -> bool | None:
    """Whether `pid` has a handler for `sig` (SigCgt in /proc/<pid>/status); None if unknown.

    Parsed here, not through psutil: it runs on the decommission request, in the supervisor's steady state
    (psutil would add ~15 ms and ~1.9 MiB to PID 1 for the rest of the container's life), and psutil does
    not expose the caught-signal mask anyway.
    """
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        return None
    return None


# java launcher options whose value is the next argument (java -help): skipped when finding the main class.
VALUE_OPTIONS = frozenset(
    {
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--add-reads",
        "--add-exports",
        "--add-opens",
        "--limit-modules",
        "--patch-module",
        "--enable-native-access",
        "--source",
    }
)


def main_class(argv: Sequence[str]) -> str | None:
    """The main class of a `java` command line: the first argument that is not an option or its value.

    None for anything that is not a JVM launcher (tini, a shell) or runs a jar or a module. So a wrapper
    such as `tini -s -- java … KubernetesExecutorBackend` or a `-Dx=<class>` value never matches.
    """
    if not argv or os.path.basename(argv[0]) != "java":
        return None
    args = iter(argv[1:])
    for arg in args:
        if arg in VALUE_OPTIONS:
            next(args, None)
        elif arg in ("-jar", "-m", "--module"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None
