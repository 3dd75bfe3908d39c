"""The worker drain's bookkeeping (lifecycle/supervise/drain.py) against real JVMs: which children count as the
Worker's executors, each exit seen on its pidfd, an executor that starts during the drain, and the look-again
path for an executor no pidfd could be opened on.

The "Worker" is this test process (the executors are its children, as a Worker's are); each "executor" is a real
JVM whose main class is a stand-in `org.apache.spark.executor.CoarseGrainedExecutorBackend` that blocks. Waits
are on pidfds through the same poll the supervisor uses; every JVM is killed at the end.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.log import Log
from lifecycle.supervise import drain
from lifecycle.supervise.drain import EXECUTOR_CLASS, Drain, worker_executors

pytestmark = [pytest.mark.integration, pytest.mark.jvm, pytest.mark.timeout(120)]

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
JAVA, JAVAC = shutil.which("java", path=SYSTEM_PATH), shutil.which("javac", path=SYSTEM_PATH)
STUB = """\
package org.apache.spark.executor;

public class CoarseGrainedExecutorBackend {
    public static void main(String[] args) throws Exception {
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ")");
        System.out.flush();
        Thread.sleep(600_000);
    }
}
"""
OTHER = """\
public class Sleeper {
    public static void main(String[] args) throws Exception {
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ")");
        System.out.flush();
        Thread.sleep(600_000);
    }
}
"""
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if JAVA is None or JAVAC is None:
        pytest.skip("needs a JDK")
    out = tmp_path_factory.mktemp("stub")
    sources = [out / "CoarseGrainedExecutorBackend.java", out / "Sleeper.java"]
    sources[0].write_text(STUB)
    sources[1].write_text(OTHER)
    subprocess.run([JAVAC, "-d", str(out), *map(str, sources)], check=True, timeout=120, stdin=subprocess.DEVNULL)
    return out


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The JVMs a test starts, killed and reaped at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def start(started: list[subprocess.Popen[bytes]], argv: list[str]) -> subprocess.Popen[bytes]:
    """A JVM (or another process) as this process's child; returns once a JVM has said `ready`."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    started.append(process)
    if os.path.basename(argv[0]) == "java":
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"ready (pid: ")
    return process


def executor(classes: Path, *options: str) -> list[str]:
    assert JAVA is not None
    return [JAVA, *options, "-cp", str(classes), EXECUTOR_CLASS]


def reap_exit(process: subprocess.Popen[bytes], poller: select.poll, tracked: Drain) -> int:
    """Kill `process`, wait for its pidfd in the poll the drain registered it in; the pid the drain reports."""
    process.kill()
    process.wait(timeout=30)
    ready = [fd for fd, _ in poller.poll(TIMEOUT_MS) if fd in tracked]
    assert len(ready) == 1
    return tracked.reaped(ready[0])


def test_the_drain_finds_exactly_the_workers_executor_jvms(
    classes: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """Only children running java with the executor class as the main class count: not a JVM that only names it
    in a -D value, not a process that is not java."""
    one = start(started, executor(classes))
    two = start(started, executor(classes, "-Xmx64m", "-Dspark.app=x"))
    assert JAVA is not None
    start(started, [JAVA, f"-Dfake={EXECUTOR_CLASS}", "-cp", str(classes), "Sleeper", EXECUTOR_CLASS])
    start(started, ["sleep", "600", EXECUTOR_CLASS])
    assert worker_executors(os.getpid()) == sorted([one.pid, two.pid])


def test_each_executor_exit_is_seen_on_its_pidfd_and_a_late_one_is_found_again(
    classes: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """Each executor's exit wakes the poll; one started during the drain is found by the scan that follows the
    last exit, and the drain ends only when a scan finds none."""
    poller = select.poll()
    first, second = start(started, executor(classes)), start(started, executor(classes))
    tracked = Drain(Log("json", "error", 0.0), os.getpid(), poller)
    assert tracked.scan() == sorted([first.pid, second.pid])
    assert reap_exit(first, poller, tracked) == first.pid and tracked.left() == 1
    late = start(started, executor(classes))  # launched by the Worker while it drains
    assert reap_exit(second, poller, tracked) == second.pid and tracked.left() == 0
    assert tracked.scan() == [late.pid]
    assert reap_exit(late, poller, tracked) == late.pid
    assert tracked.left() == 0 and tracked.scan() == [] and tracked.exited == 3
    tracked.close()


def test_an_executor_without_a_pidfd_is_looked_for_again(
    classes: Path, started: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no pidfd can be opened (EMFILE), the drain wakes every BLIND_RESCAN and sees the executor gone."""
    blind = start(started, executor(classes))

    def refuse(pid: int, flags: int = 0) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(drain.os, "pidfd_open", refuse)
    tracked = Drain(Log("json", "error", 0.0), os.getpid(), select.poll())
    assert tracked.scan() == [blind.pid]
    assert tracked.left() == 1 and tracked.wake_in() == drain.BLIND_RESCAN
    assert tracked.look_again() == []
    blind.kill()
    blind.wait(timeout=30)
    assert tracked.look_again() == [blind.pid]
    assert tracked.left() == 0 and tracked.wake_in() is None
