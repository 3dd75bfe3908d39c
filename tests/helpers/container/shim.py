"""A container shim (containerd-shim's job, reduced): the parent that stays while a detached runc process runs.

`python -I shim.py RESULT PIDFILE -- runc … run|exec -d --pid-file PIDFILE …`: become a child subreaper
(prctl(2) PR_SET_CHILD_SUBREAPER), start the runc command, which exits once the container's PID 1 (`run`) or
the exec'd process (`exec`) has started; that process is then reparented here (the kernel picks the nearest
subreaper ancestor, kernel/exit.c find_new_reaper). Wait for it, write RESULT (JSON: the status as containerd
reports it, 128+N for signal N, and when it was reaped, on CLOCK_MONOTONIC and the wall clock, so the test can
order a hook's exit against PID 1's) and exit with that status.

Stdin, stdout and stderr are the container process's own: runc -d passes its stdio through (runc's
inheritStdio), as the shim passes its own. Standard library only; a script, not a module to import.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def status_code(status: int) -> int:
    """containerd's exit status: the code, or 128+N for a process killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def reap_until(target: int) -> int:
    """Reap children (runc's leftovers included) until `target` is reaped; its wait status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == target:
            return status


def run(result_path: str, pid_path: str, command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    started = time.monotonic()
    runc = os.posix_spawn(command[0], command, os.environ)
    _, status = os.waitpid(runc, 0)
    runc_code = status_code(status)
    result: dict[str, object] = {"started_at": started, "runc_returned_at": time.monotonic(), "runc_code": runc_code}
    if runc_code != 0:
        result.update(status=None, exited_at=time.monotonic(), exited_wall=time.time())
        code = runc_code
    else:
        with open(pid_path, encoding="ascii") as handle:
            target = int(handle.read().strip())
        result["pid"] = target
        status = reap_until(target)
        code = status_code(status)
        result.update(status=code, exited_at=time.monotonic(), exited_wall=time.time())
    with open(result_path + ".part", "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.rename(result_path + ".part", result_path)  # the test never reads half a result
    return code


def main(argv: list[str]) -> int:
    result_path, pid_path, separator, *command = argv
    if separator != "--" or not command:
        print("usage: shim.py RESULT PIDFILE -- COMMAND…", file=sys.stderr)
        return 64
    return run(result_path, pid_path, command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
