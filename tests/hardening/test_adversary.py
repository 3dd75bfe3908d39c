"""Adversarial faults beyond docs/reliability.md: a hostile neighbour, a broken node, a buggy child.

Every test runs the installed console scripts against real processes (a PID namespace, a memory cgroup, a
mount namespace without /proc, a child of another uid) and states the documented behaviour; the ones that
fail on the current code name the fault in their docstring. Small C helpers are compiled once per session
with gcc: a stand-in executor "JVM" named `java` (prints `ready (pid: N)`, exits 0 on SIGPWR or SIGTERM) and
a process that keeps forking a successor and exiting (its PID changes every few hundred microseconds).
Every process is killed by PID or pidfd when its test ends (the fixtures of tests/conftest.py); waits are
bounded and event-driven.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.pods import EXECUTOR_CLASS, HOOK, TINI
from tests.helpers.cgroups import needs_cgroup
from tests.helpers.pods import StartPod
from tests.helpers.processes import Lines, wait_exited
from tests.helpers.supervised import (
    LIFECYCLE,
    PRINT_SIGNALS,
    READY,
    SYSTEM_PATH,
    UNSHARE,
    Runs,
    env_for,
    left_behind,
    needs_unshare,
    no_traceback,
)

pytestmark = [pytest.mark.integration, pytest.mark.hardening]

TIMEOUT = 20.0
GCC = shutil.which("gcc", path=SYSTEM_PATH)
SETPRIV = shutil.which("setpriv", path=SYSTEM_PATH)
needs_gcc = pytest.mark.skipif(GCC is None, reason="needs gcc for the C helpers")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

FAKE_JAVA = r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static void on(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGPWR, on);
    signal(SIGTERM, on);
    printf("ready (pid: %d) fake executor\n", getpid());
    fflush(stdout);
    for (;;) pause();
}
"""

# Forks a successor and exits, forever, ignoring SIGTERM: at any moment there is one live process, never
# the same PID for long. A snapshot of /proc followed by kill(pid) hits a process that has already moved on.
HOPPER = r"""
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int pause_us = argc > 1 ? atoi(argv[1]) : 300;
    signal(SIGTERM, SIG_IGN);
    for (;;) {
        pid_t pid = fork();
        if (pid > 0) _exit(0);
        usleep(pause_us);
    }
}
"""


@pytest.fixture(scope="session")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the compiled helpers `java` and `hopper`, readable by every uid."""
    if GCC is None:
        pytest.skip("needs gcc")
    directory = Path(tempfile.mkdtemp(prefix="lifecycle-adversary-", dir="/tmp"))
    directory.chmod(0o755)
    for name, source in (("java", FAKE_JAVA), ("hopper", HOPPER)):
        (directory / f"{name}.c").write_text(source)
        subprocess.run([GCC, "-O2", "-o", str(directory / name), str(directory / f"{name}.c")], check=True,
                       timeout=60)  # fmt: skip
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# ---- secrets: the preStop command ------------------------------------------------------------------------


def test_hook_usage_error_does_not_echo_a_secret_argument() -> None:
    """FAULT: `lifecycle-decommission --password=<v>` should exit 64 without printing <v> (README, Secrets:
    "never written by lifecycle: not in logs ... or errors"; the entrypoint's own usage error redacts it since
    BUG 5). It prints `got '--password=<v>'` (decommission.py: main's `{args[0]!r}`), and likewise the bare
    value of a secret-named variable."""
    assert HOOK is not None
    secret = "hunter2-adversary-7431"
    for arg, env in ((f"--password={secret}", {}), (secret, {"DB_PASSWORD": secret})):
        result = subprocess.run(
            [HOOK, arg], env={"PATH": SYSTEM_PATH, **env}, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert result.returncode == 64, result.stderr
        assert secret not in result.stdout + result.stderr, result.stderr


@needs_unshare
@needs_gcc
@pytest.mark.skipif(TINI is None, reason="needs tini")
@pytest.mark.parametrize("executors", [1, 2], ids=["drained", "two-executors"])
def test_hook_never_prints_a_password_from_the_executors_command_line(
    pods: StartPod, helpers: Path, executors: int
) -> None:
    """FAULT: with tini as the entrypoint the preStop command finds the JVM itself and logs `found executor
    pid N: <argv>` (and, with two, `none signalled: <argv>; <argv>`) with the JVM's options verbatim, so a
    `-Dspark.ssl.keyStorePassword=<v>` from SPARK_JAVA_OPT_n lands in the kubelet's hook output and events.
    README: an argv lifecycle shows goes through the redaction (`-Dkey=v` with a secret word in the key).
    decommission.py `describe` (used at the `found executor` line and the exit-4 error) never redacts."""
    secret = "S3cr3t-keystore-adversary"
    jvm = [str(helpers / "java"), f"-Dspark.ssl.keyStorePassword={secret}", "-Xmx1g", "-cp", "/opt/spark/jars/*",
           EXECUTOR_CLASS, "--executor-id", "1"]  # fmt: skip
    command = jvm if executors == 1 else ["/bin/sh", "-c", '"$@" & "$@" & wait', "sh", *jvm]
    pod = pods("tini-shared", command)  # pause -> tini: the hook is not SIGKILLed with tini (row 39's layout)
    pod.ready(count=executors)
    result = pod.run_hook(LIFECYCLE_DECOMMISSION_TIMEOUT="10")
    assert result.code == (0 if executors == 1 else 4), result.stderr
    assert secret not in result.stderr, result.stderr


# ---- the termination message -----------------------------------------------------------------------------


@needs_root
@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv")
def test_termination_log_is_not_written_through_a_directory_the_child_swapped_for_a_symlink() -> None:
    """FAULT: LIFECYCLE_TERMINATION_LOG under a directory the (unprivileged) child controls. The child replaces
    the file's parent directory with a symlink to a directory where root keeps a file of the same name; root's
    lifecycle then truncates that file and writes the message (with the child's chosen stderr lines) into it.
    README: the file is "opened without following a symlink ... a link planted there is left alone". Root cause:
    termination.write opens with O_NOFOLLOW, which guards only the last component (termination.py, OPEN_FLAGS
    and `os.open(path, OPEN_FLAGS)`); openat2 RESOLVE_NO_SYMLINKS (or an O_PATH walk) would refuse it."""
    assert SETPRIV is not None
    base = Path(tempfile.mkdtemp(prefix="lifecycle-adversary-", dir="/tmp"))
    try:
        base.chmod(0o755)
        victim = base / "root-only"
        victim.mkdir()
        (victim / "termination-log").write_text("root's data\n")
        owned = base / "child-owned"
        (owned / "sub").mkdir(parents=True)
        (owned / "sub" / "termination-log").write_text("")
        for path in (owned, owned / "sub", owned / "sub" / "termination-log"):
            os.chown(path, 65534, 65534)
        swap = f"cd {owned} && mv sub old && ln -s {victim} sub && echo planted-line-from-the-child >&2; exit 3"
        result = subprocess.run(
            [LIFECYCLE, SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", swap],
            env=env_for(LIFECYCLE_TERMINATION_LOG=str(owned / "sub" / "termination-log")),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 3, result.stderr
        assert (owned / "sub").is_symlink()  # the child did plant the link
        assert (victim / "termination-log").read_text() == "root's data\n"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_cgroup
def test_lifecycles_own_sigkill_after_the_kill_grace_is_not_reported_as_an_oom_kill(
    memory_cgroup: Path,
    tmp_path: Path,
) -> None:
    """FAULT: a worker process of the child (a PySpark worker) is OOM-killed, the child lives on; later a
    decommission ends with lifecycle's own SIGKILL (LIFECYCLE_KILL_GRACE). lifecycle reports the child as
    `OOMKilled ... raise the pod's memory limit`, in the log and the termination message. README: a child
    *that the OOM killer ended* is OOMKilled; this one was SIGKILLed by lifecycle. Root cause: supervisor.py
    `outcome` asks OomWatch.killed() for any SIGKILL, and oom.py `killed` only compares the cgroup's counter
    with its value at start (any OOM kill in the container since then, of any process, counts)."""
    log = tmp_path / "termination-log"
    log.touch()
    allocate = "b = bytearray(512 << 20); b[::4096] = b'x' * len(b[::4096])"
    child = f"trap '' PWR TERM; {sys.executable} -c \"{allocate}\"; echo worker $?; exec sleep 60"
    env = env_for(LIFECYCLE_TERMINATION_LOG=str(log), LIFECYCLE_DECOMMISSION_TIMEOUT="200ms",
                  LIFECYCLE_KILL_GRACE="200ms")  # fmt: skip
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"echo $$ > {memory_cgroup}/cgroup.procs && exec {LIFECYCLE} /bin/sh -c \"$0\"", child],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = Lines(process.stdout.fileno())
        assert lines.expect("worker 137", timeout=60.0)  # the worker was OOM-killed; the child runs on
        os.kill(process.pid, signal.SIGPWR)  # decommission: PWR and TERM ignored, so lifecycle SIGKILLs it
        code = process.wait(TIMEOUT)
        err = process.stderr.read() if process.stderr is not None else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    assert code == 137, err
    assert "outlived LIFECYCLE_KILL_GRACE: sent SIGKILL" in err, err
    message = log.read_text()
    assert "OOMKilled" not in message, message
    assert "OOMKilled" not in err, err


# ---- the knobs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["SEGV", "32"])
def test_a_decommission_trigger_lifecycle_cannot_catch_is_refused_or_works(runs: Runs, trigger: str) -> None:
    """FAULT: LIFECYCLE_DECOMMISSION_TRIGGER accepts any signal 1-64 but SIGKILL/SIGSTOP, yet lifecycle installs
    handlers only for signals it forwards: SIGSEGV (synchronous), 32 and 33 (glibc's), CHLD, PIPE, TTIN, TTOU
    never trigger anything. Sent the trigger it was configured with, lifecycle (not PID 1, e.g. under
    shareProcessNamespace) dies of the signal's default action (exit 139 / 160) with no termination message,
    and the executor runs on unsupervised. Documented: the knob takes "signal name or number" and that signal,
    sent to lifecycle, starts decommissioning; an unusable value should be exit 78 naming the variable.
    Root cause: knobs.py parse_signal refuses only KILL and STOP; supervisor.build installs `forwardable()`."""
    env = env_for(LIFECYCLE_DECOMMISSION_TRIGGER=trigger)
    run = runs.start([*PRINT_SIGNALS], env, pid1=False)
    first = run.out.next(time.monotonic() + TIMEOUT)
    if first is None:  # refused at start-up: the documented way
        outcome = run.finish()
        assert outcome.code == 78 and "LIFECYCLE_DECOMMISSION_TRIGGER" in outcome.stderr, outcome.stderr
        return
    match = READY.fullmatch(first)
    assert match, first
    runs.extra.append(int(match.group(1)))  # the child, should lifecycle die and leave it behind
    run.send(int(signal.Signals["SIG" + trigger]) if not trigger.isdigit() else int(trigger))
    # Decommissioning: the child (no SIGPWR handler of its own? print_signals has one) hears SIGPWR.
    run.expect(str(int(signal.SIGPWR)), timeout=5.0)


# ---- descendants left behind -----------------------------------------------------------------------------


@needs_unshare
@pytest.mark.parametrize("proc", ["empty", "another-pid-namespace"])
def test_without_its_own_proc_leftover_descendants_are_still_stopped(runs: Runs, proc: str) -> None:
    """FAULT: lifecycle is not PID 1 (shareProcessNamespace: pause is PID 1) and its mount namespace has no /proc of
    its own PID namespace. The child leaves a daemon and exits 3; the daemon outlives lifecycle. README:
    remaining descendants get SIGTERM and LIFECYCLE_ORPHAN_GRACE.

    empty (/proc not mounted): lifecycle exits 3 at once, no `descendant process(es) left` line, no warning:
    process.parent_map lists nothing, although waitid(P_ALL, WNOWAIT) in supervisor.stop_descendants has just
    shown that children exist.
    another-pid-namespace (the parent's /proc shows through): supervisor.self_pid reads /proc/self, so the scan
    finds the daemon under its *outer* PID, and signal_quietly(pid) kills that number in lifecycle's own PID
    namespace: the daemon is missed, and a process of the pod that happens to hold that number is SIGTERMed and
    SIGKILLed instead (process.descendants numbers and os.kill disagree; supervisor.py stop_descendants)."""
    assert UNSHARE is not None
    hide = "mount -t tmpfs none /proc" if proc == "empty" else "umount -l /proc"
    strip_proc = [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c",
                  f'{hide} && exec "$0" "$@"', LIFECYCLE]  # fmt: skip
    child = ["/bin/sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & exit 3"]
    run = runs.start(child, env_for(LIFECYCLE_ORPHAN_GRACE="1"), pid1=True, proxy=True, wrapper=strip_proc)
    outcome = run.finish()
    assert outcome.code == 3, outcome.stderr
    no_traceback(outcome.stderr)
    assert left_behind(outcome) == {}, outcome.stderr


@needs_unshare
@needs_gcc
def test_a_descendant_that_keeps_changing_its_pid_is_stopped_before_lifecycle_exits(runs: Runs, helpers: Path) -> None:
    """FAULT: as a child subreaper (not PID 1), a leftover descendant that ignores SIGTERM and keeps forking a
    successor and exiting outlives lifecycle: the SIGTERM and, after LIFECYCLE_ORPHAN_GRACE, the SIGKILL go to the
    PIDs of one /proc scan, which have moved on by then; after KILL_WAIT lifecycle exits and the process runs
    on (here under the test's proxy; in a pod, under pause). README: remaining descendants get SIGTERM, then
    SIGKILL. Root cause: supervisor.stop_descendants / wait_for_descendants kill a snapshot of pids
    (signal_quietly per pid) instead of freezing the tree (e.g. SIGSTOP every descendant first, repeated
    until the scan is stable, then SIGKILL; or the cgroup's cgroup.kill)."""
    child = ["/bin/sh", "-c", f"{helpers / 'hopper'} 300 </dev/null >/dev/null 2>&1 & exit 0"]
    run = runs.start(child, env_for(LIFECYCLE_ORPHAN_GRACE="300ms"), pid1=True, proxy=True)
    outcome = run.finish()
    assert outcome.code == 0, outcome.stderr
    assert "descendant process(es) left" in outcome.stderr, outcome.stderr
    assert left_behind(outcome) == {}, "a descendant outlived lifecycle"


# ---- the log -----------------------------------------------------------------------------------------------


def test_lifecycles_json_log_lines_stay_whole_after_a_child_line_without_a_newline(runs: Runs) -> None:
    """FAULT: the child's last stderr write has no newline (a crash mid-line, a progress bar); lifecycle relays it
    as it is and then writes its own JSON lines straight after, so `partial{"ts": ...}` is one line and the
    `running -> terminated` record cannot be parsed (the same for text lines, and for any line lifecycle logs
    while the child is mid-line). README: each log line is one JSON object. Root cause: supervisor.pump_stderr
    copies the child's bytes into the same Output that Log.emit writes to, with no line boundary kept."""
    env = env_for(LIFECYCLE_LOG_FORMAT="json")
    outcome = runs.run(["/bin/sh", "-c", "printf 'partial progress 37%%' >&2; exit 3"], env, pid1=False)
    assert outcome.code == 3
    ours = [line for line in outcome.stderr.splitlines() if '"logger": "lifecycle"' in line]
    assert ours, outcome.stderr
    for line in ours:
        record = json.loads(line)  # every line lifecycle wrote is a JSON object on its own
        assert record["logger"] == "lifecycle"
    events = [json.loads(line)["event"] for line in ours]
    assert "terminated" in events and "transition" in events


# ---- attacks that hold (coverage not in docs/reliability.md) ------------------------------------------------


def test_a_fifty_megabyte_stderr_line_without_a_newline_keeps_the_exit_code_and_the_message(
    runs: Runs, tmp_path: Path
) -> None:
    """Holds: the child writes one 50 MiB line with no newline (holding `password=<v>` at its start) and exits 5.
    lifecycle passes every byte through, exits 5, writes the termination message (the cut line dropped whole,
    so the secret is not in it) and prints no traceback."""
    log = tmp_path / "termination-log"
    log.write_text("")
    script = "import os, sys; os.write(2, b'password=hunter2-adv ' + b'A' * (50 << 20)); sys.exit(5)"
    outcome = runs.run([sys.executable, "-c", script], env_for(LIFECYCLE_TERMINATION_LOG=str(log)), pid1=False)
    assert outcome.code == 5
    no_traceback(outcome.stderr)
    assert outcome.stderr.count("A") >= 50 << 20
    message = log.read_text()
    assert "exit code: 5" in message and "hunter2-adv" not in message, message[:500]


@needs_unshare
@needs_gcc
def test_hook_against_a_stopped_supervisor_falls_back_and_drains(pods: StartPod, helpers: Path) -> None:
    """Holds: lifecycle as PID 1 is SIGSTOPped (a debugger, a frozen node); the preStop command connects into the
    backlog, gets no `accepted` within 3 s, finds the JVM itself and drains it: exit 0. After SIGCONT lifecycle
    reaps the JVM and exits 0."""
    pod = pods("container", [str(helpers / "java"), "-cp", "x", EXECUTOR_CLASS])
    pod.ready()
    supervisor = pod.processes()[1]
    os.kill(supervisor, signal.SIGSTOP)
    try:
        result = pod.run_hook(LIFECYCLE_DECOMMISSION_TIMEOUT="10")
    finally:
        os.kill(supervisor, signal.SIGCONT)
    assert result.code == 0, result.stderr
    assert "finding the executor JVM itself" in result.stderr
    assert pod.exit_code() == 0


@needs_unshare
@needs_gcc
def test_twenty_concurrent_hooks_are_never_sigkilled_with_pid1(pods: StartPod, helpers: Path) -> None:
    """FAULT: 20 preStop commands started at once in a lifecycle pod (PID 1). The JVM drains on the first request;
    lifecycle waits for the commands attached by then and exits, and the kernel SIGKILLs every command still
    starting its interpreter (12 of 20 here, no output: the kubelet sees a failed hook, 137). The same happens to
    the kubelet's one hook when the JVM exits on its own just as the hook is exec'd. README: lifecycle waits for
    the command to exit "so the kubelet sees a hook that returned 0, not one SIGKILLed with PID 1". Root cause:
    Supervisor.wait_for_hooks / HookServer.wait only know connected hooks; processes entered into the PID
    namespace (ppid 0, not descendants) that have not connected yet are not waited for (bounded by
    LIFECYCLE_HOOK_GRACE). Documented outcomes: 0, or 3 for a command that finds no JVM."""
    pod = pods("container", [str(helpers / "java"), "-cp", "x", EXECUTOR_CLASS],
               LIFECYCLE_DECOMMISSION_TIMEOUT="10")  # fmt: skip
    pod.ready()
    hooks = [pod.start_hook() for _ in range(20)]
    results = [hook.finish() for hook in hooks]
    codes = [result.code for result in results]
    assert all(code in (0, 3) for code in codes), [(r.code, r.stderr) for r in results]
    assert pod.exit_code() == 0
    assert "Traceback" not in "".join(result.stderr for result in results)


@pytest.fixture
def pidfds() -> Iterator[list[int]]:
    opened: list[int] = []
    yield opened
    for fd in opened:
        os.close(fd)


def test_stop_and_continue_of_lifecycle_while_the_child_exits_loses_no_status(runs: Runs, pidfds: list[int]) -> None:
    """Holds: lifecycle (subreaper) is SIGSTOPped, its child exits 7 meanwhile, then SIGCONT: the exit status is
    collected (7), and SIGCONT itself is forwarded harmlessly."""
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "USR2:7"], pid1=False)
    child = run.ready()
    pidfds.append(os.pidfd_open(child))
    os.kill(run.pid, signal.SIGSTOP)
    os.kill(child, signal.SIGUSR2)
    wait_exited(pidfds, timeout=TIMEOUT)
    os.kill(run.pid, signal.SIGCONT)
    outcome = run.finish()
    assert outcome.code == 7, outcome.stderr
    no_traceback(outcome.stderr)
