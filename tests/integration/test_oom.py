"""OOM kills told apart from other SIGKILLs: a real memory cgroup with a limit, a child that overruns it.

Each test makes a child memory cgroup under the test's own (cgroup v1 here; v2 where that is the layout),
sets a limit, and starts lifecycle inside it (`sh` writes its PID to cgroup.procs, then execs lifecycle), so
lifecycle and its child share the cgroup as they share a container's. The kernel's OOM killer picks the
child (the biggest process); lifecycle must exit 137 and say OOMKilled in its log and termination message.
A plain `kill -9` of the child in the same cgroup must not be called an OOM kill. The parsing of
/proc/self/cgroup and mountinfo is checked on synthetic files for the layouts this machine does not have.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifecycle import oom
from tests.helpers.cgroups import LIMIT, needs_cgroup
from tests.helpers.processes import Lines, communicate_bounded
from tests.helpers.supervised import LIFECYCLE, READY, SYSTEM_PATH, env_for

TIMEOUT = 60.0
JAVA = shutil.which("java", path=SYSTEM_PATH)


def run_in(cgroup: Path, command: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    """lifecycle COMMAND, started inside the cgroup, with a termination log in tmp_path."""
    log = tmp_path / "termination-log"
    log.touch()
    inner = " ".join(["exec", LIFECYCLE, *(f"'{arg}'" for arg in command)])
    return subprocess.Popen(
        ["/bin/sh", "-c", f"echo $$ > {cgroup}/cgroup.procs && {inner}"],
        env=env_for(LIFECYCLE_TERMINATION_LOG=str(log)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


ALLOCATE = [sys.executable, "-c", "b = bytearray(512 << 20); b[::4096] = b'x' * len(b[::4096])"]
JVM_OVER_LIMIT = [str(JAVA), "-Xms512m", "-Xmx512m", "-XX:+AlwaysPreTouch", "-XX:+UseSerialGC", "-version"]


@pytest.mark.integration
@needs_cgroup
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(ALLOCATE, id="python-allocates-512MiB"),
        pytest.param(
            JVM_OVER_LIMIT,
            id="jvm-heap-512MiB-pretouched",
            marks=[pytest.mark.jvm, pytest.mark.skipif(JAVA is None, reason="needs java")],
        ),
    ],
)
def test_oom_killed_child_is_reported_as_oomkilled_with_137(
    memory_cgroup: Path, tmp_path: Path, command: list[str]
) -> None:
    """A child over the memory limit should end lifecycle with 137 and OOMKilled in the log and the message."""
    process = run_in(memory_cgroup, command, tmp_path)
    _, err = communicate_bounded(process, TIMEOUT)
    message = (tmp_path / "termination-log").read_text()
    assert process.returncode == 137, err
    assert "OOMKilled" in message and "exit code: 137" in message and "signal: SIGKILL" in message, message
    assert f"memory limit {LIMIT >> 20} MiB" in message, message
    assert "warning:" in err and "OOMKilled" in err, err
    assert "Traceback" not in err


@pytest.mark.integration
@needs_cgroup
def test_kill_9_of_the_child_is_not_called_an_oom_kill(memory_cgroup: Path, tmp_path: Path) -> None:
    """A child SIGKILLed by someone (not the OOM killer) should give 137 with no OOMKilled anywhere."""
    process = run_in(memory_cgroup, [sys.executable, "-m", "tests.helpers.print_signals"], tmp_path)
    assert process.stdout is not None
    line = Lines(process.stdout.fileno()).next(time.monotonic() + TIMEOUT)
    match = READY.search(line or "")
    assert match, line
    os.kill(int(match.group(1)), signal.SIGKILL)
    _, err = communicate_bounded(process, TIMEOUT)
    message = (tmp_path / "termination-log").read_text()
    assert process.returncode == 137, err
    assert "signal: SIGKILL" in message and "OOMKilled" not in message and "OOMKilled" not in err, message


# --- finding the cgroup: layouts this machine may not have, on synthetic /proc files ------------------------


def fake_proc(tmp_path: Path, cgroup: str, mountinfo: str) -> str:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo)
    return str(proc)


def make_cgroup_dir(base: Path, version: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    if version == "v1":
        (base / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
        (base / "memory.limit_in_bytes").write_text(f"{128 << 20}\n")
    else:
        (base / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n")
        (base / "memory.max").write_text("max\n")
    return base


def test_v1_runc_bind_mount_is_the_mount_point_itself(tmp_path: Path) -> None:
    """runc on cgroup v1 bind-mounts the container's cgroup: /proc/self/cgroup names the mount's own root."""
    mount = make_cgroup_dir(tmp_path / "sys" / "memory", "v1")
    proc = fake_proc(
        tmp_path,
        "12:pids:/ctr\n4:memory:/runc/ctr\n0::/\n",
        f"40 30 0:40 /runc/ctr {mount} ro,nosuid - cgroup cgroup rw,memory\n",
    )
    where = oom.memory_cgroup_dir(proc)
    assert where == (str(mount), "v1")
    assert oom.oom_kills(where) == 3 and oom.memory_limit(where) == 128 << 20


def test_v1_host_nested_path_is_joined_under_the_mount(tmp_path: Path) -> None:
    """On a host, the memory hierarchy is mounted at its root and our cgroup is a path below it."""
    mount = tmp_path / "sys" / "memory"
    nested = make_cgroup_dir(mount / "kubepods" / "pod1", "v1")
    proc = fake_proc(
        tmp_path,
        "4:memory:/kubepods/pod1\n",
        f"40 30 0:40 / {mount} rw - cgroup cgroup rw,memory\n41 30 0:41 / {tmp_path} rw - tmpfs tmpfs rw\n",
    )
    assert oom.memory_cgroup_dir(proc) == (str(nested), "v1")


def test_v2_with_a_cgroup_namespace_and_no_limit(tmp_path: Path) -> None:
    """cgroup v2 in a cgroup namespace (`0::/`): the counter is read, `max` means no limit."""
    mount = make_cgroup_dir(tmp_path / "sys" / "fs" / "cgroup", "v2")
    proc = fake_proc(tmp_path, "0::/\n", f"50 30 0:50 / {mount} ro - cgroup2 cgroup2 rw\n")
    where = oom.memory_cgroup_dir(proc)
    assert where == (str(mount), "v2")
    assert oom.oom_kills(where) == 2 and oom.memory_limit(where) is None


def test_a_mount_point_with_a_space_is_unescaped(tmp_path: Path) -> None:
    """mountinfo writes a space as \\040: the directory must still be found."""
    mount = make_cgroup_dir(tmp_path / "with space", "v2")
    escaped = str(mount).replace(" ", "\\040")
    proc = fake_proc(tmp_path, "0::/\n", f"50 30 0:50 / {escaped} ro - cgroup2 cgroup2 rw\n")
    assert oom.memory_cgroup_dir(proc) == (str(mount), "v2")


@pytest.mark.parametrize(
    ("cgroup", "mountinfo"),
    [
        ("", ""),  # no cgroups at all
        ("4:memory:/elsewhere\n", "40 30 0:40 /ctr /nowhere rw - cgroup cgroup rw,memory\n"),  # not under the mount
        ("garbage\n", "garbage\n"),
    ],
)
def test_no_usable_cgroup_means_unknown(tmp_path: Path, cgroup: str, mountinfo: str) -> None:
    """When the cgroup cannot be found, OOM detection is off (None), never an error."""
    where = oom.memory_cgroup_dir(fake_proc(tmp_path, cgroup, mountinfo))
    assert where is None
    assert oom.oom_kills(where) is None
    assert oom.OomWatch(None, None).killed() is None


def test_unreadable_proc_means_unknown(tmp_path: Path) -> None:
    """No /proc (or no permission) turns detection off quietly."""
    assert oom.memory_cgroup_dir(str(tmp_path / "missing")) is None


def test_watch_says_oomkilled_only_when_the_counter_went_up(tmp_path: Path) -> None:
    """The reason names the limit and the counter's change; an unchanged counter is no OOM kill."""
    directory = make_cgroup_dir(tmp_path / "cg", "v1")
    where = (str(directory), "v1")
    assert oom.OomWatch(3, where).killed() is None
    reason = oom.OomWatch(2, where).killed()
    assert reason is not None and reason.startswith("OOMKilled:") and "memory limit 128 MiB" in reason
    assert "2 -> 3" in reason


@pytest.mark.parametrize(("content", "expected"), [("1\n", True), ("0\n", False), (None, None)])
def test_memory_oom_group_is_read_on_cgroup_v2(tmp_path: Path, content: str | None, expected: bool | None) -> None:
    """The kubelet (1.28+) writes memory.oom.group=1 on cgroup v2: then an OOM kill takes lifecycle too, and
    lifecycle says so instead of promising an OOMKilled termination message it cannot write."""
    mount = make_cgroup_dir(tmp_path / "sys" / "fs" / "cgroup", "v2")
    if content is not None:
        (mount / "memory.oom.group").write_text(content)
    where = oom.memory_cgroup_dir(fake_proc(tmp_path, "0::/\n", f"50 30 0:50 / {mount} ro - cgroup2 cgroup2 rw\n"))
    assert oom.oom_group(where) is expected
    described = oom.describe_oom_group(oom.oom_group(where))
    assert ("lifecycle included" in described) is (expected is True)


def test_memory_oom_group_does_not_exist_on_cgroup_v1(tmp_path: Path) -> None:
    mount = make_cgroup_dir(tmp_path / "sys" / "memory", "v1")
    (mount / "memory.oom.group").write_text("1\n")  # no such file on v1: even if one were there, it means nothing
    where = oom.memory_cgroup_dir(
        fake_proc(tmp_path, "4:memory:/runc/ctr\n", f"40 30 0:40 /runc/ctr {mount} ro - cgroup cgroup rw,memory\n")
    )
    assert oom.oom_group(where) is None
    assert "not applicable" in oom.describe_oom_group(None)


def test_dry_run_says_which_oom_case_applies_here() -> None:
    """This host is cgroup v1 (hybrid): the dry run says lifecycle reports OOMKilled itself."""
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("lifecycle")), "--dry-run", "true"],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "LIFECYCLE_TERMINATION_LOG": ""},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    expected = oom.describe_oom_group(oom.oom_group(oom.memory_cgroup_dir()))
    assert f"memory: {expected}" in shown.stdout
