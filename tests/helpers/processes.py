"""Process helpers shared by the integration tests: clean-up by PID."""

from __future__ import annotations

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
