"""Process helpers shared by the integration tests and the benchmarks: bounded waits, clean-up by PID."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable
from typing import AnyStr

import psutil


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant it still has, by PID."""
    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:  # already gone: nothing to kill
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:  # exited meanwhile
            pass


def kill_by_pidfd(pids: Iterable[int]) -> None:
    """SIGKILL each process through a pidfd, so a PID recycled meanwhile is never hit."""
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # exited meanwhile
            continue
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:  # exited meanwhile
            pass
        finally:
            os.close(pidfd)


def communicate_bounded(process: subprocess.Popen[AnyStr], timeout: float) -> tuple[AnyStr, AnyStr]:
    """communicate() with a bound; whatever is left of the process tree is killed by PID either way."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.communicate()
        raise
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
