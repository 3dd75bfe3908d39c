"""Supervise mode's launch: spawn the child, then re-exec into the lean supervisor.

The start-up process has pydantic-settings loaded (~36 MB resident). Once the plan is built and the
child spawned, lifecycle execs a fresh interpreter that imports only the stdlib and `transitions`
(supervisor.py). Every signal stays blocked across that exec (the mask survives execve and pending
signals stay pending), so nothing sent in between is lost: the supervisor installs its handlers, then
unblocks. The PID does not change, so the child stays our child and nothing can reap it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys

from lifecycle import control, termination
from lifecycle.oom import OomWatch
from lifecycle.process import exec_error, spawn

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


def stderr_capture(path: str) -> tuple[int, int] | tuple[None, None]:
    """A pipe for the child's stderr when a termination message will be written, else nothing at all."""
    if not termination.usable(path):
        return None, None
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe still works (ok to proceed)
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_inheritable(read_fd, True)
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


def hand_over(launcher: object, plan: object) -> None:
    """Spawn the plan's command and become its supervisor (in a lean interpreter when possible)."""
    from lifecycle.actions import Launcher
    from lifecycle.plan import LaunchPlan

    assert isinstance(launcher, Launcher) and isinstance(plan, LaunchPlan)
    refused = become_subreaper()
    if refused:
        launcher.log.warning(
            "subreaper",
            f"not PID 1 and cannot become a child subreaper ({refused}): "
            "orphaned descendants will not be reaped by lifecycle",
        )
    read_fd, write_fd = stderr_capture(launcher.knobs.termination_log)
    oom_watch = OomWatch.start()  # before the child exists: any OOM kill from here on is counted
    label = plan.mode if plan.mode != "pass-through" else os.path.basename(plan.argv[0])
    # The decommission channel listens before the child starts: a preStop command that comes while the
    # lean supervisor is still starting waits in the backlog instead of finding no supervisor. A driver is
    # never decommissioned and must not take the name from an executor's lifecycle beside it.
    listener = control.listen() if label != "driver" else None
    control_fd = listener.detach() if listener is not None else None
    try:
        pid = spawn(plan.argv, plan.env, plan.cwd, launcher.mask, launcher.ignored, write_fd)
    except OSError as exc:
        if read_fd is not None:
            os.close(read_fd)
        raise exec_error(plan.argv[0], exc, launcher._hint()) from None
    finally:
        if write_fd is not None:
            os.close(write_fd)
    if control_fd is not None:
        os.set_inheritable(control_fd, True)  # after the spawn: for the lean supervisor, never the child
    payload = {
        "pid": pid,
        "label": label,
        "control_fd": control_fd,
        "started": launcher.started,
        "stderr_fd": read_fd,
        "knobs": launcher.knobs.to_json_dict(),
        "oom": [oom_watch.before, oom_watch.where],
    }
    text = json.dumps(payload)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    boot = (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        "from lifecycle.supervisor import main; sys.exit(main(sys.argv[1]))"
    )
    assert launcher.model is not None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-I", "-c", boot, text])
    except OSError as exc:  # no interpreter to exec: supervise from this process instead (more memory)
        launcher.log.warning("handover", f"cannot exec the lean supervisor ({exc.strerror}); supervising in place")
    from lifecycle.supervisor import main

    launcher.exit_code = main(text)
    raise SystemExit(launcher.exit_code)
