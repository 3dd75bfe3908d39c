"""The post-exit state's work in the lean supervisor: each script of LIFECYCLE_POST_EXIT_DIR in turn, once the main
child has exited, with how it ended in the environment, all of them within LIFECYCLE_POST_EXIT_TIMEOUT.

PID 1 stays PID 1 meanwhile: the Runner waits only in the supervisor's own poll (SupervisorActions.wake: the
script's pidfd and output, signals, the child's stderr pipe that descendants may still write to, stderr's
backlog, preStop commands arriving), and every exited child is reaped as it goes. Signals are not sent on: the
child they were for has exited, and a script is bounded by its deadline instead (the kubelet's SIGTERM comes as
soon as the preStop command returns, and must not cut an upload short). A script's failure is logged and never
changes lifecycle's exit code.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from lifecycle import knobs, scripts
from lifecycle.knobs import signal_name
from lifecycle.log import printable
from lifecycle.process import reap_all
from lifecycle.redaction import Redactor
from lifecycle.scratch import ScratchFile

if TYPE_CHECKING:
    from lifecycle.supervise.actions import SupervisorActions

Outcome = tuple[int, "int | None", str, list[str]]


class SupervisorHost:
    """The supervisor's side of a scripts.Runner."""

    def __init__(self, actions: SupervisorActions) -> None:
        self.actions = actions

    def wait(self, fds: list[int], timeout: float | None) -> None:
        self.actions.wake(fds, timeout)

    def reaped(self, pid: int) -> int | None:
        # Orphans too (whatever a script leaves behind is ours: PID 1, subreaper); only the running script's status
        # is kept (one at a time), so many orphans cost no memory.
        return reap_all().get(pid)

    def stop_signal(self) -> int | None:
        return None


def environment(actions: SupervisorActions, outcome: Outcome) -> dict[str, str]:
    """The container's environment (with what pre-launch scripts exported) and how the child ended."""
    code, sig, reason, _ = outcome
    exit_code, _ = actions.remapped(code, reason)
    return {
        **os.environ,
        scripts.MODE: actions.mode,
        scripts.CHILD_EXIT_CODE: str(code),
        scripts.CHILD_SIGNAL: signal_name(sig) if sig else "",
        scripts.EXIT_CODE: str(exit_code),
        scripts.EXIT_REASON: actions.exit_reason(code, sig),
        scripts.EXIT_MESSAGE: printable(Redactor.from_environ().text(reason)),
    }


def stderr_file(actions: SupervisorActions) -> ScratchFile | None:
    """A fresh scratch file with the child's last stderr lines (secrets redacted), for one script."""
    try:
        scratch = ScratchFile.create("child-stderr")
    except OSError as exc:
        actions.log.warning("post-exit", f"no {scripts.CHILD_STDERR} for the post-exit scripts: {exc.strerror or exc}")
        return None
    lines = actions.tail.lines(count=10**6) if actions.tail is not None else []
    try:
        scratch.write("".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape"))
    except OSError as exc:  # a full tmpfs: the script gets what was written (ok to proceed)
        actions.log.warning("post-exit", f"{scripts.CHILD_STDERR}: {exc.strerror}")
    os.lseek(scratch.fd, 0, os.SEEK_SET)
    return scratch


def run_all(actions: SupervisorActions, found: list[scripts.Script], outcome: Outcome) -> list[scripts.Result]:
    """Run the scripts in order until each has ended or LIFECYCLE_POST_EXIT_TIMEOUT has passed (the one running
    then gets SIGTERM, SIGKILL after LIFECYCLE_KILL_GRACE; the ones after it are skipped, each with a warning)."""
    timeout = actions.knobs.post_exit_timeout
    deadline = time.monotonic() + timeout
    runner = scripts.Runner(actions.log, scripts.POST_EXIT, SupervisorHost(actions), actions.knobs.kill_grace,
                            actions.mask, live=True)  # fmt: skip
    base = environment(actions, outcome)
    results = []
    for script in found:
        if time.monotonic() >= deadline:
            actions.log.warning("script", f"post-exit script {script.name} skipped: {knobs.POST_EXIT_TIMEOUT} "
                                f"({timeout:g}s) has passed", script=script.name, stage=scripts.POST_EXIT)  # fmt: skip
            continue
        scratch = stderr_file(actions)
        env = dict(base) if scratch is None else {**base, scripts.CHILD_STDERR: scratch.path}
        try:
            keep = scratch.fd if scratch is not None and scratch.inherit else None
            results.append(runner.run(script, env, deadline, (timeout, knobs.POST_EXIT_TIMEOUT), keep))
        finally:
            if scratch is not None:
                scratch.close()
    return results
