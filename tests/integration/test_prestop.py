"""`lifecycle-decommission`, the preStop hook, against real JVMs in real pod layouts.

Each test builds a pod from namespaces: `unshare --pid --mount-proc --kill-child` gives the entrypoint its
own PID and mount namespace, and the hook joins both with `nsenter -p -m`, as the kubelet's exec into the
container does (the control socket is keyed by the mount namespace, so the hook must join that one too).

Layouts (examples/pods.py; upstream-behaviour §2 for what decom.sh does in each): `tini` (tini is PID 1:
the hook's standalone path; when the JVM has drained, tini exits and the kernel SIGKILLs everything left in
the namespace, the hook included, so drains under tini are tested in `tini-shared`, here only the outcomes that
leave the JVM running), `tini-shared` (a pause process is PID 1 and `tini -s` below it), `container` (lifecycle
is PID 1: the hook asks it over the control socket) and `shared` (a pause process is PID 1, lifecycle a
subreaper below it).

The executor is examples/stub-executor (main class KubernetesExecutorBackend). Nothing sleeps: tests block
on the processes' own lines (`ready (pid: N)`, lifecycle's log) with a bounded select, and on pidfds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from examples.pods import EXECUTOR_CLASS, HOOK, NSENTER, UNSHARE, HookResult, base_env, compile_stub, exec_in_shell
from examples.proc import TIMEOUT, Streams, wait_exits
from lifecycle import knobs
from lifecycle.errors import DECOM_AMBIGUOUS, DECOM_DEADLINE, DECOM_DRAINED, DECOM_NOT_FOUND, EX_CONFIG, EX_USAGE
from lifecycle.log import Log
from lifecycle.machine import Lifecycle, Phase, build_machine
from lifecycle.prestop.actions import HookActions as Hook
from lifecycle.prestop.scan import Target, cmdline, start_time
from tests.helpers.pods import JAVA, JAVAC, StartPod, java, several
from tests.helpers.processes import Lines, is_alive, signal_set
from tests.helpers.script import install as install_script
from tests.helpers.supervised import READY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DECOY_CLASS = "Decoy"
STARTUP = 1.5  # seconds allowed for nsenter + the hook's interpreter on a loaded machine
DRAIN_MS = 300  # the stub's simulated drain
EXIT_ON_PWR = 128 + signal.SIGPWR  # sh's $? for a process killed by SIGPWR (no handler: the default kills)
EXIT_ON_KILL = 128 + signal.SIGKILL  # ... and by the tests' own SIGKILL

needs_java = pytest.mark.skipif(JAVA is None or JAVAC is None, reason="needs java and javac")
needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or UNSHARE is None or NSENTER is None, reason="needs root, unshare and nsenter"
)


def marks(*decorators: pytest.MarkDecorator) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """One decorator applying several marks."""

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        for decorator in decorators:
            test = decorator(test)
        return test

    return apply


in_pod = marks(pytest.mark.pid1, needs_namespaces)  # a namespace of its own; no JVM
jvm_in_pod = marks(pytest.mark.jvm, pytest.mark.pid1, needs_java, needs_namespaces)

DECOY_SOURCE = """\
// A JVM that is not an executor: a different main class, which waits forever with no signal handler.
public class Decoy {
    public static void main(String[] args) throws Exception {
        System.out.println("ready (pid: " + ProcessHandle.current().pid() + ") decoy");
        Object forever = new Object();
        synchronized (forever) {
            forever.wait();
        }
    }
}
"""

# Stand-in for a non-JVM process: ready, then nothing until killed.
IDLE = "import os, signal; print(f'ready (pid: {os.getpid()}) idle', flush=True); signal.pause()"

# Stand-in for the executor in the unit tests: SIGPWR stays pending, so /proc shows whether it was sent.
BLOCKER = (  # handles SIGPWR (SigCgt shows it, as an executor's with decommissioning on) but blocks it
    "import os, signal; signal.signal(signal.SIGPWR, lambda *_: None); "
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPWR, signal.SIGTERM}); "
    "print(f'ready (pid: {os.getpid()})', flush=True); signal.pause()"
)
BLOCKER_NO_HANDLER = BLOCKER.replace("signal.signal(signal.SIGPWR, lambda *_: None); ", "")

# Injected into the hook with PYTHONPATH: an interpreter that takes a while to finish after its work is
# done (a loaded node). It stays until PID 1 of its namespace exits, at most 1 s.
LINGER = """\
import atexit, os, select


def linger():
    try:
        pidfd = os.pidfd_open(1)
    except OSError:
        return
    select.select([pidfd], [], [], 1.0)


atexit.register(linger)
"""


@pytest.fixture(scope="session")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stub executor and the decoy, compiled once per session."""
    if JAVAC is None:
        pytest.skip("needs javac")
    sources = tmp_path_factory.mktemp("java-src")
    (sources / "Decoy.java").write_text(DECOY_SOURCE)
    return compile_stub(tmp_path_factory.mktemp("classes"), sources / "Decoy.java")


# ---- found and drained ---------------------------------------------------------------------------------


@jvm_in_pod
@pytest.mark.parametrize("launch", ["tini-argv", "shell-exec"])
def test_hook_drains_the_executor_under_tini(pods: StartPod, classes: Path, launch: str) -> None:
    """Under tini the hook should find the executor, send SIGPWR through a pidfd, wait for it and exit 0.

    tini-argv is upstream's entrypoint.sh (`exec tini -s -- java … KubernetesExecutorBackend …`): tini's own argv
    then holds the class name too, and tini is not an executor. shell-exec starts the same JVM through a shell.
    """
    executor_argv = java(classes, f"drain.ms={DRAIN_MS}")
    pod = pods("tini-shared", executor_argv if launch == "tini-argv" else exec_in_shell(executor_argv))
    ((executor, _),) = pod.ready()
    tini = pod.pidfd(2)

    result = pod.run_hook()

    assert result.code == DECOM_DRAINED, result.stderr
    assert f"found executor pid {executor}: " in result.stderr
    assert f"sent SIGPWR to executor pid {executor}" in result.stderr
    assert f"executor pid {executor} exited" in result.stderr
    assert result.seconds >= DRAIN_MS / 1000
    wait_exits({"tini": tini})
    pod.streams.wait_for("pause: reaped 2 exit 0", "err")  # tini passed on the JVM's 0: it drained
    assert "executor: SIGPWR received" in pod.streams.text("out")
    assert "executor: drained, exiting 0" in pod.streams.text("out")


def assert_decommissioned_by_the_hook(log: str) -> None:
    """lifecycle's log: running -> decommissioning because of the preStop command, then -> terminated, exit 0."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if "running -> decommissioning (decommission_requested)" in line)
    assert "on the preStop command (pid " in lines[start + 1], log
    end = next(i for i, line in enumerate(lines) if "decommissioning -> terminated (child_exited)" in line)
    assert start < end, log
    assert "exit 0: java exited with code 0" in lines[end + 1], log


@jvm_in_pod
def test_hook_drains_the_executor_through_lifecycle_as_pid1(pods: StartPod, classes: Path) -> None:
    """With lifecycle as PID 1 the hook should ask it to decommission, and exit 0 before lifecycle exits."""
    pod = pods("container", java(classes, f"drain.ms={DRAIN_MS}"))
    pod.ready()
    lifecycle = pod.pidfd(1)

    hook = pod.start_hook()
    pod.streams.wait_for("running -> decommissioning", "err")
    hook_pidfd = hook.pidfd()
    try:
        exits = wait_exits({"hook": hook_pidfd, "lifecycle": lifecycle})
    finally:
        os.close(hook_pidfd)
    result = hook.finish()

    assert result.code != -signal.SIGKILL, f"the hook was SIGKILLed when PID 1 exited:\n{result.stderr}"
    assert result.code == DECOM_DRAINED, result.stderr
    assert exits["hook"] <= exits["lifecycle"]
    assert "sent SIGPWR to the executor (pid 2)" in result.stderr
    assert "java exited with code 0" in result.stderr
    assert pod.exit_code() == 0
    assert_decommissioned_by_the_hook(pod.streams.text("err"))


@jvm_in_pod
def test_hook_is_not_killed_with_pid1_when_its_interpreter_finishes_slowly(
    pods: StartPod, classes: Path, tmp_path: Path
) -> None:
    """The hook's exit status should be settled before lifecycle (PID 1) exits, however long its teardown takes.

    When PID 1 of a namespace exits the kernel SIGKILLs every process left in it, so lifecycle must not exit
    while the hook is still running. The injected atexit handler makes the teardown deterministic: it waits
    (at most 1 s) for PID 1 to exit.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(LINGER)
    pod = pods("container", java(classes, "drain.ms=50"))
    pod.ready()

    result = pod.run_hook(PYTHONPATH=str(site))

    assert result.code != -signal.SIGKILL, "lifecycle exited while the hook was still running, which SIGKILLed it"
    assert result.code == DECOM_DRAINED, result.stderr
    assert pod.exit_code() == 0


@jvm_in_pod
def test_hook_drains_the_executor_in_a_shared_process_namespace(pods: StartPod, classes: Path) -> None:
    """With a pause process as PID 1 and lifecycle a subreaper below it, the hook should still reach lifecycle
    over the socket, drain the executor and exit 0; lifecycle exits 0 and the pod's PID 1 lives on."""
    pod = pods("shared", java(classes, f"drain.ms={DRAIN_MS}"))
    ((executor, _),) = pod.ready()
    assert executor == 3  # 1 pause, 2 lifecycle, 3 the JVM: lifecycle is not PID 1
    pause, lifecycle = pod.pidfd(1), pod.pidfd(2)

    result = pod.run_hook()

    assert result.code == DECOM_DRAINED, result.stderr
    assert f"sent SIGPWR to the executor (pid {executor})" in result.stderr
    wait_exits({"lifecycle": lifecycle})
    pod.streams.wait_for("pause: reaped 2 exit 0", "err")  # lifecycle exited 0, reaped by the pause process
    assert_decommissioned_by_the_hook(pod.streams.text("err"))
    assert is_alive(pause)  # the pod outlives its entrypoint, as with shareProcessNamespace


# ---- not found, ambiguous, decoys ------------------------------------------------------------------------


@in_pod
def test_hook_exits_3_listing_what_it_saw_when_no_executor_runs(pods: StartPod) -> None:
    """With no executor JVM in the pod the hook should exit 3 and name the processes it saw."""
    pod = pods("tini", [sys.executable, "-I", "-c", IDLE])
    ((idle, _),) = pod.ready()

    result = pod.run_hook()

    assert result.code == DECOM_NOT_FOUND, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "no executor JVM found" in line
    assert f"processes seen: 1 tini, {idle} {os.path.basename(sys.executable)}" in line
    assert is_alive(pod.pidfd(idle))


@jvm_in_pod
def test_hook_exits_4_and_signals_neither_when_two_executors_run(pods: StartPod, classes: Path) -> None:
    """With two executor JVMs the hook should exit 4 naming both, and signal neither (each would die of SIGPWR:
    they install no handler)."""
    executor = java(classes, "no.handler=true")
    pod = pods("tini", several(executor, executor))
    (first, _), (second, _) = pod.ready(count=2)
    pidfds = [pod.pidfd(first), pod.pidfd(second)]

    result = pod.run_hook()

    assert result.code == DECOM_AMBIGUOUS, result.stderr
    assert "2 executor JVMs found, none signalled" in result.stderr
    assert f"pid {first}: " in result.stderr and f"pid {second}: " in result.stderr
    assert all(is_alive(fd) for fd in pidfds)
    for fd in pidfds:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    statuses = pod.streams.wait_for("exit ", count=2)
    assert statuses == [f"exit 0 {EXIT_ON_KILL}", f"exit 1 {EXIT_ON_KILL}"], f"{EXIT_ON_PWR}: one had SIGPWR"


@pytest.fixture
def decoy(classes: Path) -> list[str]:
    """A JVM with another main class whose -D value is the executor class name (no handler: SIGPWR kills it)."""
    return java(classes, f"x={EXECUTOR_CLASS}", main=DECOY_CLASS)


@jvm_in_pod
def test_hook_exits_3_when_only_a_decoy_names_the_executor_class(pods: StartPod, decoy: list[str]) -> None:
    """A JVM whose -D value contains the executor class name is not an executor: the hook should exit 3."""
    pod = pods("tini", several(decoy))
    ((pid, _),) = pod.ready()

    result = pod.run_hook()

    assert result.code == DECOM_NOT_FOUND, result.stderr
    assert f"{pid} java" in result.stderr  # seen, and not taken for the executor
    signal.pidfd_send_signal(pod.pidfd(pid), signal.SIGKILL)
    assert pod.streams.wait_for("exit 0 ") == [f"exit 0 {EXIT_ON_KILL}"], f"{EXIT_ON_PWR}: it had SIGPWR"


@jvm_in_pod
def test_hook_signals_the_executor_and_not_the_decoy(pods: StartPod, classes: Path, decoy: list[str]) -> None:
    """With a decoy and the executor running, the hook should drain the executor and leave the decoy alone."""
    pod = pods("tini", several(java(classes, f"drain.ms={DRAIN_MS}"), decoy))
    ready = dict((line.split()[-1], pid) for pid, line in pod.ready(count=2))
    decoy_pid, executor = ready["decoy"], ready["executor:"]
    decoy_pidfd = pod.pidfd(decoy_pid)

    result = pod.run_hook()

    assert result.code == DECOM_DRAINED, result.stderr
    assert f"sent SIGPWR to executor pid {executor}" in result.stderr
    assert pod.streams.wait_for("exit 0 ") == ["exit 0 0"]  # the executor drained and exited 0
    assert is_alive(decoy_pidfd)
    signal.pidfd_send_signal(decoy_pidfd, signal.SIGKILL)
    assert pod.streams.wait_for("exit 1 ") == [f"exit 1 {EXIT_ON_KILL}"], f"{EXIT_ON_PWR}: it had SIGPWR"


# ---- deadlines ---------------------------------------------------------------------------------------------


@jvm_in_pod
def test_hook_exits_5_after_its_deadline_when_the_executor_ignores_the_signal(pods: StartPod, classes: Path) -> None:
    """Standalone, a JVM that ignores SIGPWR should make the hook exit 5 once LIFECYCLE_DECOMMISSION_TIMEOUT passes."""
    pod = pods("tini", exec_in_shell(java(classes, "ignore.signals=true")))
    ((executor, _),) = pod.ready()

    result = pod.run_hook(LIFECYCLE_DECOMMISSION_TIMEOUT="1")

    assert result.code == DECOM_DEADLINE, result.stderr
    assert 1.0 <= result.seconds < 1.0 + STARTUP
    assert f"executor pid {executor} still running after LIFECYCLE_DECOMMISSION_TIMEOUT=1s" in result.stderr
    pod.streams.wait_for("executor: ignoring SIGPWR")
    assert is_alive(pod.pidfd(executor))  # the standalone hook only reports; the kubelet's SIGTERM comes next


@jvm_in_pod
def test_hook_exits_5_when_lifecycle_has_to_escalate(pods: StartPod, classes: Path) -> None:
    """Under lifecycle, a JVM that ignores SIGPWR and SIGTERM is SIGKILLed after the deadline and the kill grace;
    the hook should exit 5 as soon as it is gone."""
    pod = pods(
        "container", java(classes, "ignore.signals=true"), LIFECYCLE_DECOMMISSION_TIMEOUT="1", LIFECYCLE_KILL_GRACE="1"
    )
    pod.ready()

    result = pod.run_hook()

    assert result.code == DECOM_DEADLINE, result.stderr
    assert 2.0 <= result.seconds < 2.0 + STARTUP
    assert "java was killed by SIGKILL" in result.stderr
    assert pod.exit_code() == 128 + signal.SIGKILL
    log = pod.streams.text("err")
    assert "decommission deadline passed: sent SIGTERM to java" in log
    assert "java outlived LIFECYCLE_KILL_GRACE: sent SIGKILL" in log
    assert "executor: ignoring SIGPWR" in pod.streams.text("out")
    assert "executor: ignoring SIGTERM" in pod.streams.text("out")


# ---- the signal ----------------------------------------------------------------------------------------------


@jvm_in_pod
def test_hook_drains_with_the_configured_signal_under_tini(pods: StartPod, classes: Path) -> None:
    """LIFECYCLE_DECOMMISSION_SIGNAL=USR2 should make the hook send SIGUSR2, for an executor listening on USR2."""
    pod = pods("tini-shared", exec_in_shell(java(classes, "decommission.signal=USR2", "drain.ms=50")))
    ((executor, _),) = pod.ready()

    result = pod.run_hook(LIFECYCLE_DECOMMISSION_SIGNAL="USR2")

    assert result.code == DECOM_DRAINED, result.stderr
    assert f"sent SIGUSR2 to executor pid {executor}" in result.stderr
    pod.streams.wait_for("pause: reaped 2 exit 0", "err")
    assert "executor: SIGUSR2 received" in pod.streams.text("out")


@jvm_in_pod
def test_hook_drains_with_lifecycles_configured_signal(pods: StartPod, classes: Path) -> None:
    """Under lifecycle the signal is lifecycle's LIFECYCLE_DECOMMISSION_SIGNAL: USR2 should drain a USR2 executor."""
    pod = pods("container", java(classes, "decommission.signal=USR2", "drain.ms=50"),
               LIFECYCLE_DECOMMISSION_SIGNAL="USR2")  # fmt: skip
    pod.ready()

    result = pod.run_hook()

    assert result.code == DECOM_DRAINED, result.stderr
    assert "sent SIGUSR2 to the executor (pid 2)" in result.stderr
    assert pod.exit_code() == 0
    assert "executor: SIGUSR2 received" in pod.streams.text("out")


# ---- usage and configuration ---------------------------------------------------------------------------------


def run_alone(*args: str, **env: str) -> HookResult:
    """The hook as PID 1 of an empty namespace: whatever it does, there is nothing in there to signal."""
    assert UNSHARE is not None and HOOK is not None
    started = time.monotonic()
    done = subprocess.run(
        [UNSHARE, "--pid", "--mount-proc", "--kill-child", HOOK, *args],
        env=base_env(**env), stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    return HookResult(done.returncode, done.stderr.decode("utf-8", "replace"), time.monotonic() - started)


@in_pod
def test_hook_exits_64_when_given_an_argument() -> None:
    """The kubelet runs the hook with no arguments: any argument should be a usage error (64) on one line."""
    result = run_alone("--now")

    assert result.code == EX_USAGE
    assert result.stderr == (
        "lifecycle-decommission: error: takes no arguments (it is run by the kubelet as a preStop hook), got '--now'\n"
    )


@in_pod
def test_hook_exits_78_naming_the_variable_when_the_signal_is_unknown() -> None:
    """LIFECYCLE_DECOMMISSION_SIGNAL=NOPE should be a configuration error (78): one line naming the variable."""
    result = run_alone(LIFECYCLE_DECOMMISSION_SIGNAL="NOPE")

    assert result.code == EX_CONFIG
    (line,) = result.stderr.splitlines()
    assert line.startswith("lifecycle-decommission: error: LIFECYCLE_DECOMMISSION_SIGNAL: "), line
    assert "NOPE" in line


# ---- the identity re-check (the hook's machine driven in this process, against real processes) ---------------


@pytest.fixture(params=[BLOCKER], ids=["handles-PWR"])
def blocker(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """A live process that blocks SIGPWR and SIGTERM, so what is sent to it stays pending where /proc shows it."""
    process = subprocess.Popen([sys.executable, "-I", "-c", request.param], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    Streams(process).wait_for(f"ready (pid: {process.pid})")
    yield process
    process.kill()
    process.communicate(timeout=TIMEOUT)


def pending(pid: int) -> set[int]:
    """Signals pending for the process (ShdPnd) or its main thread (SigPnd), from /proc/<pid>/status."""
    return signal_set(pid, "ShdPnd") | signal_set(pid, "SigPnd")


def decommission(target: Target, pidfd: int) -> Hook:
    """Drive the hook's state machine from `running` as its standalone path does, up to the signal."""
    hook = Hook(Log(name="lifecycle-decommission"), knobs.Knobs(), target, pidfd)
    model = hook.model = Lifecycle(hook)
    build_machine(model, initial=Phase.running)
    model.decommission_requested()
    return hook


@pytest.fixture
def pidfd_of(blocker: subprocess.Popen[bytes]) -> Iterator[int]:
    """A pidfd on the blocker, as the standalone path opens one on the JVM it found."""
    fd = os.pidfd_open(blocker.pid)
    yield fd
    os.close(fd)


def test_send_signal_reaches_a_process_whose_identity_matches(blocker: subprocess.Popen[bytes], pidfd_of: int) -> None:
    """The control for the tests below: with the recorded start time and argv, SIGPWR should be sent."""
    pid = blocker.pid
    hook = decommission(Target(pid, start_time(pid) or 0, cmdline(pid)), pidfd_of)

    assert hook.model is not None and hook.model.state == Phase.decommissioning
    assert hook.exit_code == DECOM_DRAINED
    assert signal.SIGPWR in pending(pid)


@pytest.mark.parametrize("blocker", [BLOCKER_NO_HANDLER], ids=["no-PWR-handler"], indirect=True)
def test_send_signal_falls_back_to_sigterm_when_the_executor_has_no_handler(
    blocker: subprocess.Popen[bytes], pidfd_of: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """An executor without a SIGPWR handler (decommissioning off, or not registered yet) would be killed by
    SIGPWR's default action: the hook should send SIGTERM instead, with a warning, as the supervisor does."""
    pid = blocker.pid
    hook = decommission(Target(pid, start_time(pid) or 0, cmdline(pid)), pidfd_of)

    assert hook.exit_code == DECOM_DRAINED
    assert pending(pid) & {signal.SIGPWR, signal.SIGTERM} == {signal.SIGTERM}
    assert f"executor pid {pid} does not handle SIGPWR: sending SIGTERM instead" in capfd.readouterr().err


def test_hook_exits_3_without_signalling_when_the_start_time_differs(
    blocker: subprocess.Popen[bytes], pidfd_of: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """A process whose start time is not the one recorded is not the executor found: exit 3, no signal."""
    pid = blocker.pid
    hook = decommission(Target(pid, (start_time(pid) or 0) + 1, cmdline(pid)), pidfd_of)

    assert hook.model is not None and hook.model.state == Phase.terminated
    assert hook.exit_code == DECOM_NOT_FOUND
    assert signal.SIGPWR not in pending(pid)
    assert f"pid {pid} is no longer the executor that was found" in capfd.readouterr().err


def test_hook_exits_3_without_signalling_when_the_argv_differs(blocker: subprocess.Popen[bytes], pidfd_of: int) -> None:
    """A process whose argv is not the one recorded is not the executor found: exit 3, no signal."""
    pid = blocker.pid
    hook = decommission(Target(pid, start_time(pid) or 0, ("java", "-cp", "x", EXECUTOR_CLASS)), pidfd_of)

    assert hook.exit_code == DECOM_NOT_FOUND
    assert signal.SIGPWR not in pending(pid)


def test_hook_exits_3_when_the_executor_exited_after_it_was_found(capfd: pytest.CaptureFixture[str]) -> None:
    """A process found, pinned with a pidfd, and gone before the signal should give exit 3, not an error."""
    process = subprocess.Popen([sys.executable, "-I", "-c", BLOCKER], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        Streams(process).wait_for(f"ready (pid: {process.pid})")
        target = Target(process.pid, start_time(process.pid) or 0, cmdline(process.pid))
        pidfd = os.pidfd_open(process.pid)
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)
    try:
        hook = decommission(target, pidfd)
    finally:
        os.close(pidfd)

    assert hook.exit_code == DECOM_NOT_FOUND
    assert f"pid {process.pid} is no longer the executor that was found" in capfd.readouterr().err


@jvm_in_pod
def test_hook_returns_before_the_post_exit_scripts_run(pods: StartPod, classes: Path, tmp_path: Path) -> None:
    """With post-exit scripts, lifecycle should tell the hook that the JVM has exited before they run: the hook exits
    0 while a post-exit script still runs (its time is the grace period's), and lifecycle exits after the script."""
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    ready = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        install_script(tmp_path / "post", "10-upload", "--ready", str(fifo), "--hold")
        pod = pods("container", java(classes, "drain.ms=50"), LIFECYCLE_POST_EXIT_DIR=str(tmp_path / "post"),
                   PYTHONPATH=str(Path(__file__).resolve().parents[2]))  # fmt: skip
        pod.ready()
        lifecycle = pod.pidfd(1)
        result = pod.run_hook()
        script = int(Lines(ready).expect(READY).group(1))
        assert result.code == DECOM_DRAINED, result.stderr
        assert is_alive(lifecycle)  # still in post-exit: the script holds
        signal.pidfd_send_signal(pod.pidfd(script), signal.SIGUSR1)
        assert pod.exit_code() == 0
    finally:
        os.close(ready)
    log = pod.streams.text("err")
    assert "decommissioning -> post-exit (child_exited)" in log
    assert "10-upload> released" in log
