"""A memory cgroup of the test's own with a limit, for OOM kills: lifecycle and its child started inside it share
it as they share a container's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle import oom
from tests.helpers.processes import wait_exited

LIMIT = 192 << 20  # lifecycle (~35 MiB at start-up) must stay the smaller process: the kernel kills the biggest


def own_memory_cgroup() -> tuple[str, str] | None:
    where = oom.memory_cgroup_dir()
    if where is None or not os.access(where[0], os.W_OK):
        return None
    return where


needs_cgroup = pytest.mark.skipif(
    os.geteuid() != 0 or own_memory_cgroup() is None, reason="needs root and a writable memory cgroup"
)


@contextlib.contextmanager
def limited_memory_cgroup() -> Iterator[Path]:
    """A child memory cgroup limited to LIMIT bytes; every process left in it is SIGKILLed, then it is removed."""
    where = own_memory_cgroup()
    assert where is not None
    directory, version = where
    path = Path(directory) / f"lifecycle-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        if version == "v1":
            (path / "memory.limit_in_bytes").write_text(str(LIMIT))
            try:  # no swap, so the limit is reached at once (not every kernel has the knob)
                (path / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
            except OSError:
                (path / "memory.swappiness").write_text("0")
        else:
            (path / "memory.max").write_text(str(LIMIT))
            (path / "memory.swap.max").write_text("0")
        yield path
    finally:
        leftover = [os.pidfd_open(int(pid)) for pid in (path / "cgroup.procs").read_text().split()]
        for pidfd in leftover:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        wait_exited(leftover)
        for pidfd in leftover:
            os.close(pidfd)
        path.rmdir()
