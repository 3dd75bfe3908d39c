"""Supervise mode's launch: spawn the child, then re-exec into the lean supervisor.

The start-up process has pydantic-settings loaded (~36 MB resident). Once the plan is built and the
child spawned, lifecycle execs a fresh interpreter that imports only the stdlib and `transitions`
(lifecycle.supervise). Every signal stays blocked across that exec (the mask survives execve and pending
signals stay pending), so nothing sent in between is lost: the supervisor installs its handlers, then
unblocks. The PID does not change, so the child stays our child and nothing can reap it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from lifecycle import control
from lifecycle.launch.spawn import exec_error, spawn
from lifecycle.oom import OomWatch
from lifecycle.output import shares_description
from lifecycle.redaction import display_arg

if TYPE_CHECKING:
    from lifecycle.launch.actions import LaunchActions
    from lifecycle.launch.plan import LaunchPlan

PR_SET_CHILD_SUBREAPER = 36  # prctl(2); kept across execve, not inherited by children
PIPE_SIZE = 1 << 20  # the stderr capture pipe holds 1 MiB, so a busy supervisor never slows the child


def become_subreaper() -> str | None:
    """When not PID 1, adopt orphaned descendants (prctl PR_SET_CHILD_SUBREAPER); an error text if refused."""
    if os.getpid() == 1:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def stderr_capture() -> tuple[int, int] | tuple[None, None]:
    """A pipe for the child's stderr, unless our stderr is a terminal (the child keeps the terminal then).

    Through the pipe, the child never shares lifecycle's stderr: lifecycle can make its own writes there
    non-blocking (output.py) without the child ever seeing the flag, and keeps the tail for the termination
    message. Close-on-exec until the child exists: the child must not inherit the read end.
    """
    if os.isatty(2):
        return None, None
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe still works (ok to proceed)
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


def hand_over(launcher: LaunchActions, plan: LaunchPlan) -> None:
    """Spawn the plan's command and become its supervisor (in a lean interpreter when possible)."""
    refused = become_subreaper()
    if refused:
        launcher.log.warning(
            "subreaper",
            f"not PID 1 and cannot become a child subreaper ({refused}): "
            "orphaned descendants will not be reaped by lifecycle",
        )
    read_fd, write_fd = stderr_capture()
    # Whether fd 2's description is ours alone once the child runs (its stdout is not the same description).
    exclusive = read_fd is not None and not shares_description(2, (0, 1))
    oom_watch = OomWatch.start()  # before the child exists: any OOM kill from here on is counted
    label = plan.mode if plan.mode != "pass-through" else display_arg(os.path.basename(plan.argv[0]))
    # The decommission channel listens before the child starts: a preStop command that comes while the
    # lean supervisor is still starting waits in the backlog instead of finding no supervisor. A driver is
    # never decommissioned and must not take the name from an executor's lifecycle beside it. When the name is
    # held by anything but another lifecycle of this container, a private name (logged as an error).
    listener, _ = control.listen(launcher.log) if label != "driver" else (None, None)
    control_fd = listener.detach() if listener is not None else None
    try:
        pid = spawn(plan.argv, plan.env, plan.cwd, launcher.mask, launcher.ignored, write_fd, launcher.inherited)
    except OSError as exc:
        if read_fd is not None:
            os.close(read_fd)
        raise exec_error(display_arg(plan.argv[0]), exc, launcher.hint()) from None
    finally:
        if write_fd is not None:
            os.close(write_fd)
    if control_fd is not None:
        os.set_inheritable(control_fd, True)  # after the spawn: for the lean supervisor, never the child
    if read_fd is not None:
        os.set_inheritable(read_fd, True)  # likewise
    try:
        supervise(launcher, pid, label, control_fd, read_fd, exclusive, oom_watch)
    except Exception as exc:  # the child runs: whatever failed here, it must not be left unsupervised
        from lifecycle.supervise.main import fallback

        fallback(pid, exc)


def supervise(
    launcher: LaunchActions,
    pid: int,
    label: str,
    control_fd: int | None,
    read_fd: int | None,
    exclusive: bool,
    oom_watch: OomWatch,
) -> NoReturn:
    """Exec the lean supervisor with everything it needs in one JSON argument (in place if that fails)."""
    out = launcher.log.out
    out.flush()
    payload = {
        "pid": pid,
        "label": label,
        "mode": launcher.plan.mode if launcher.plan is not None else "",
        "control_fd": control_fd,
        "control_name": control.published_name(control_fd),  # where lifecycle-decommission finds the channel
        "started": launcher.started,
        "stderr_fd": read_fd,
        "knobs": launcher.knobs.to_json_dict(),
        "oom": [oom_watch.before, oom_watch.where],
        "stderr_exclusive": exclusive,
        # start-up's log lines that a stalled stderr has not taken yet: the supervisor writes them first
        "output": {"pending": out.buffer.decode("latin-1"), "dropped": out.dropped_bytes, "writes": out.dropped_writes},
    }
    text = json.dumps(payload)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # of lifecycle/
    boot = (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        f"{control.SUPERVISOR_ENTRY}; main(sys.argv[1], exit_now=True)"
    )
    assert launcher.model is not None
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.execv(sys.executable, [sys.executable, "-I", "-c", boot, text])
    except OSError as exc:  # no interpreter to exec: supervise from this process instead (more memory)
        launcher.log.warning("handover", f"cannot exec the lean supervisor ({exc.strerror}); supervising in place")
    from lifecycle.supervise.main import main

    launcher.exit_code = main(text)
    raise SystemExit(launcher.exit_code)
