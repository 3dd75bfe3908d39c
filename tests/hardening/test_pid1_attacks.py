"""PID 1 under a hostile or broken environment: a stalled log reader, closed stdio, a child that becomes
root, a child that leaves its process group, internal errors inside the running loop (issue #12).

Each test runs the installed console script as PID 1 of a new PID namespace and as a child subreaper (the
`pid1` fixture), with real child processes; nothing is faked but the fault itself.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import kill_tree
from tests.helpers.supervised import LIFECYCLE, REPO_ROOT, UNSHARE, Runs, env_for, needs_unshare, no_traceback

pytestmark = [pytest.mark.integration, pytest.mark.hardening]

TIMEOUT = 20.0

# A child that fills its stderr with `MIB` MiB, says so on stdout, then reports SIGPWR/SIGTERM and exits.
CHATTY = r"""
import os, signal, sys
def on(sig, frame):
    os.write(1, f"got {signal.Signals(sig).name}\n".encode())
    os._exit(0 if sig == signal.SIGPWR else 143)
signal.signal(signal.SIGPWR, on)
signal.signal(signal.SIGTERM, on)
line = b"x" * 1023 + b"\n"
for _ in range(int(sys.argv[1]) * 1024):
    os.write(2, line)
os.write(1, b"wrote\n")
while True:
    signal.pause()
"""


class Stalled:
    """lifecycle with its stderr a pipe that the test does not read until it chooses to."""

    def __init__(self, argv: list[str], env: dict[str, str], pid1: bool) -> None:
        self.err_read, err_write = os.pipe()
        prefix = [UNSHARE, "--pid", "--fork", "--mount-proc", "--kill-child"] if pid1 else []
        self.process = subprocess.Popen(
            [*prefix, LIFECYCLE, *argv], env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=err_write,
        )  # fmt: skip
        os.close(err_write)
        assert self.process.stdout is not None
        self.out = self.process.stdout.fileno()
        self.pid1 = pid1
        self.stderr = b""

    def lifecycle_pid(self) -> int:
        if not self.pid1:
            return self.process.pid
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # unshare forks lifecycle at once; its children file appears then
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as handle:
                found = handle.read().split()
            if found:
                return int(found[0])
            select.select([], [], [], 0.01)
        raise AssertionError("unshare never forked lifecycle")

    def expect(self, text: str, timeout: float = TIMEOUT) -> None:
        seen = b""
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on stdout; got {seen!r}"
            if select.select([self.out], [], [], left)[0]:
                chunk = os.read(self.out, 4096)
                assert chunk, f"stdout closed before {text!r}; got {seen!r}"
                seen += chunk

    def read_stderr_until(self, pattern: bytes, timeout: float = TIMEOUT) -> None:
        """Start reading the stalled pipe; bounded."""
        deadline = time.monotonic() + timeout
        while re.search(pattern, self.stderr) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} on stderr; tail {self.stderr[-500:]!r}"
            if select.select([self.err_read], [], [], left)[0]:
                chunk = os.read(self.err_read, 1 << 16)
                if not chunk:
                    break
                self.stderr += chunk

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.process.wait(timeout)
        while chunk := os.read(self.err_read, 1 << 16):
            self.stderr += chunk
        return code

    def close(self) -> None:
        kill_tree(self.process.pid)
        self.process.wait(TIMEOUT)
        os.close(self.err_read)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def stalled() -> Iterator[list[Stalled]]:
    runs: list[Stalled] = []
    yield runs
    for run in runs:
        run.close()


def chatty_env(tmp_path: Path, **more: str) -> dict[str, str]:
    log = tmp_path / "termination-log"
    log.write_text("")
    return env_for(LIFECYCLE_TERMINATION_LOG=str(log), **more)


@pytest.mark.parametrize("sig, code", [(signal.SIGPWR, 0), (signal.SIGTERM, 143)], ids=["decommission", "sigterm"])
def test_a_stalled_stderr_reader_does_not_stop_signals_or_the_drain(
    stalled: list[Stalled], pid1: bool, tmp_path: Path, sig: int, code: int
) -> None:
    run = Stalled([sys.executable, "-c", CHATTY, "8"], chatty_env(tmp_path), pid1)
    stalled.append(run)
    run.expect("wrote")  # 8 MiB written past a 64 KiB pipe nobody reads: the child was never held up
    os.kill(run.lifecycle_pid(), sig)
    run.expect(f"got {signal.Signals(sig).name}", timeout=5.0)
    assert run.finish(timeout=10.0) == code
    assert b"Traceback" not in run.stderr
    message = (tmp_path / "termination-log").read_text()
    assert f"exit code: {code}" in message


def test_output_dropped_while_stalled_is_counted_once_the_reader_comes_back(
    stalled: list[Stalled], pid1: bool, tmp_path: Path
) -> None:
    run = Stalled([sys.executable, "-c", CHATTY, "8"], chatty_env(tmp_path), pid1)
    stalled.append(run)
    run.expect("wrote")
    run.read_stderr_until(rb"dropped (\d+) bytes of output")
    dropped = int(re.search(rb"dropped (\d+) bytes of output", run.stderr).group(1))  # type: ignore[union-attr]
    kept = run.stderr.count(b"x" * 1023 + b"\n")
    assert dropped > 0
    assert kept * 1024 + dropped >= 8 << 20  # every byte the child wrote was either passed on or counted
    os.kill(run.lifecycle_pid(), signal.SIGTERM)
    assert run.finish() == 143


# ---- descriptors -----------------------------------------------------------------------------------

LIST_FDS = r"""
import os, sys
fds = {}
for name in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        fds[name] = os.readlink(f"/proc/self/fd/{name}")
    except OSError:
        pass
with open(sys.argv[1], "w") as out:
    out.write(repr(fds))
sys.exit(5)
"""


def child_fds(tmp_path: Path) -> dict[str, str]:
    found: dict[str, str] = eval((tmp_path / "fds").read_text())  # a dict literal the child wrote
    return {fd: target for fd, target in found.items() if not target.startswith("/proc/")}  # listdir's own


def test_child_inherits_only_stdio_and_what_lifecycle_was_started_with(pid1: bool, tmp_path: Path) -> None:
    inherited = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # an fd the caller passes on, as to tini
    prefix = [UNSHARE, "--pid", "--fork", "--mount-proc", "--kill-child"] if pid1 else []
    try:
        process = subprocess.Popen([*prefix, LIFECYCLE, sys.executable, "-c", LIST_FDS, str(tmp_path / "fds")],
                                   env=chatty_env(tmp_path), cwd=REPO_ROOT, pass_fds=[inherited],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            _, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            kill_tree(process.pid)
            process.wait(TIMEOUT)
    finally:
        os.close(inherited)
    assert process.returncode == 5, stderr
    fds = child_fds(tmp_path)
    assert set(fds) == {"0", "1", "2", str(inherited)}, fds
    assert fds[str(inherited)] == str(tmp_path)
    assert fds["2"].startswith("pipe:"), fds  # lifecycle's capture pipe: the write end only


def test_closed_stdio_gives_the_child_dev_null_not_lifecycle_files(runs: Runs, pid1: bool, tmp_path: Path) -> None:
    close_all = ["/bin/sh", "-c", 'exec 0<&- 1>&- 2>&- "$@"', "closer", LIFECYCLE]
    runs.run([sys.executable, "-c", LIST_FDS, str(tmp_path / "fds")], chatty_env(tmp_path), pid1=pid1,
             wrapper=close_all)
    fds = child_fds(tmp_path)
    assert fds["0"] == "/dev/null" and fds["1"] == "/dev/null", fds
    assert set(fds) == {"0", "1", "2"}, fds
    message = (tmp_path / "termination-log").read_text()
    assert "exit code: 5" in message, message


# ---- signals ---------------------------------------------------------------------------------------

SETUID_SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    if (setresuid(0, 0, 0) != 0) { perror("setresuid"); return 2; }
    printf("ready (pid: %d)\n", getpid());
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) return 3;
    return 7;
}
"""


@pytest.fixture(scope="module")
def setuid_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A setuid-root program that makes itself root for good (real uid too), then waits for a line."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or os.geteuid() != 0:
        pytest.skip("needs root and a C compiler")
    where = Path("/var/tmp") / f"lifecycle-setuid-{os.getpid()}"  # not /tmp: it may be mounted nosuid
    where.mkdir(mode=0o755, exist_ok=True)
    (where / "root.c").write_text(SETUID_SOURCE)
    subprocess.run([compiler, "-o", str(where / "root"), str(where / "root.c")], check=True, timeout=60)
    os.chmod(where / "root", 0o4755)
    return str(where / "root")


@pytest.mark.pid1
@needs_unshare
def test_a_child_that_becomes_root_cannot_be_signalled_and_lifecycle_says_so_once(
    anonymous_lifecycle: str, setuid_root: str
) -> None:
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [UNSHARE, "--pid", "--fork", "--mount-proc", "--kill-child", "setpriv", "--reuid=1000770000",
         "--regid=0", "--clear-groups", anonymous_lifecycle, setuid_root],
        env=env_for(LIFECYCLE_TERMINATION_LOG=""), stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(read_end)
    try:
        assert process.stdout is not None
        assert b"ready" in process.stdout.readline()
        supervisor = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGTERM):
            os.kill(supervisor, sig)
        os.write(write_end, b"go\n")
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(write_end)
        kill_tree(process.pid)
        process.wait(TIMEOUT)
    text = stderr.decode()
    assert process.returncode == 7, text
    assert "Traceback" not in text
    assert text.count("not permitted to send") == 1, text


ESCAPER = r"""
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.setpgid(0, os.getpgid(os.getppid()))  # leave the group lifecycle started it in: join lifecycle's
os.write(1, b"ready (pid: %d)\n" % os.getpid())
while True:
    signal.pause()
"""


def test_group_escalation_kills_a_child_that_left_its_process_group(runs: Runs, pid1: bool, tmp_path: Path) -> None:
    run = runs.start([sys.executable, "-c", ESCAPER], chatty_env(
        tmp_path, LIFECYCLE_SIGNAL_GROUP="1", LIFECYCLE_DECOMMISSION_TIMEOUT="200ms", LIFECYCLE_KILL_GRACE="200ms",
        LIFECYCLE_DECOMMISSION_SIGNAL="TERM"), pid1=pid1)  # fmt: skip
    run.ready()
    run.send(signal.SIGPWR)
    outcome = run.finish()
    no_traceback(outcome.stderr)
    assert outcome.code == 137, outcome.stderr
    assert "sent SIGKILL" in outcome.stderr


# ---- the loop's guard ------------------------------------------------------------------------------

# Runs the real lean supervisor (lifecycle.supervise.main with a real hand-over payload, a real child), with one
# method made to fail: what PID 1 does when a turn of its loop raises. The fault is injected; nothing else
# is replaced.
FAULTY = r"""
import json, os, sys, time
from lifecycle.knobs import Knobs
from lifecycle.supervise import loop, main
from lifecycle.launch.spawn import spawn
from lifecycle.signals import block_all

mode = sys.argv[1]
mask = block_all()
pid = spawn(("sleep", "30") if mode != "once" else (sys.executable, "-c", "import time; time.sleep(0.5)"),
            dict(os.environ), os.getcwd(), mask, set())
calls = 0
original = loop.Loop.watch_output
def watch_output(self):
    global calls
    calls += 1
    if mode == "always" or calls == 1:
        raise OSError(24, "Too many open files (injected)")
    return original(self)
loop.Loop.watch_output = watch_output
payload = {"pid": pid, "label": "sleep", "control_fd": None, "started": time.monotonic(), "stderr_fd": None,
           "knobs": Knobs(termination_log=os.environ["LIFECYCLE_TERMINATION_LOG"]).to_json_dict(), "oom": [None, None]}
sys.exit(main.main(json.dumps(payload)))
"""


@pytest.mark.parametrize("mode, code", [("once", 0), ("always", 70)])
def test_an_error_inside_the_loop_is_one_line_and_never_a_traceback(
    runs: Runs, pid1: bool, tmp_path: Path, mode: str, code: int
) -> None:
    outcome = runs.run([sys.executable, "-c", FAULTY, mode], chatty_env(tmp_path, LIFECYCLE_ORPHAN_GRACE="1"),
                       pid1=pid1, wrapper=[])  # fmt: skip
    no_traceback(outcome.stderr)
    assert outcome.code == code, outcome.stderr
    assert "internal error in the supervisor (1 so far): OSError" in outcome.stderr
    if mode == "always":  # gave up: the child was stopped, the message says 70
        assert "exit code: 70" in (tmp_path / "termination-log").read_text()


# ---- knob values at their extremes -----------------------------------------------------------------


def test_durations_beyond_what_poll_accepts_still_drain_and_exit(runs: Runs, pid1: bool, tmp_path: Path) -> None:
    """99,999,999 s is more than poll()'s int of milliseconds: passed through, poll raised OverflowError in
    every turn of the loop (so the guard gave up: exit 70 with the child killed). Clamped, it is just long."""
    huge = "99999999"
    run = runs.start([sys.executable, "-c", CHATTY, "0"], chatty_env(
        tmp_path, LIFECYCLE_DECOMMISSION_TIMEOUT=huge, LIFECYCLE_KILL_GRACE=huge, LIFECYCLE_ORPHAN_GRACE=huge,
        LIFECYCLE_HOOK_GRACE=huge), pid1=pid1)  # fmt: skip
    run.expect("wrote")
    run.send(signal.SIGPWR)
    outcome = run.finish()
    no_traceback(outcome.stderr)
    assert outcome.code == 0, outcome.stderr
    assert "internal error" not in outcome.stderr


# The lean supervisor started with a payload it cannot build a supervisor from (a knob it does not know, as a
# newer start-up stage could send): the child is spawned already and must still be supervised.
UNBUILDABLE = r"""
import json, os, sys, time
from lifecycle.launch.spawn import spawn
from lifecycle.supervise import main
from lifecycle.signals import block_all

mask = block_all()
pid = spawn((sys.executable, "-m", "tests.helpers.print_signals", "--exit-on", "TERM:143"), dict(os.environ),
            os.getcwd(), mask, set())
payload = {"pid": pid, "label": "child", "control_fd": None, "started": time.monotonic(), "stderr_fd": None,
           "knobs": {"no_such_knob": 1}, "oom": [None, None]}
main.main(json.dumps(payload), exit_now=True)
"""


def test_a_supervisor_that_cannot_be_built_still_forwards_signals_and_exits_with_the_childs_status(
    runs: Runs, pid1: bool, tmp_path: Path
) -> None:
    run = runs.start([sys.executable, "-c", UNBUILDABLE], chatty_env(tmp_path), pid1=pid1, wrapper=[])
    run.ready()
    run.send(signal.SIGTERM)
    outcome = run.finish()
    no_traceback(outcome.stderr)
    assert outcome.code == 143, outcome.stderr
    assert "in fallback mode" in outcome.stderr
