"""Faults around a real executor JVM: lifecycle executor as PID 1 of its own PID and mount namespaces.

The JVM is tests/helpers/decom.java (Spark's executor main class, SIGPWR handler registered as Spark's is;
DECOM_BEHAVIOUR=stubborn ignores PWR and TERM, unhandled registers nothing; DECOM_DRAIN_MS is the drain).
Pods come from examples/pods.py (the `pods` fixture): stdout and stderr are pipes read as lines with bounded
selects, so each step waits for lifecycle's own log line (LIFECYCLE_LOG_LEVEL=debug logs every forwarded
signal) or the JVM's, never for a time. The preStop command runs in the pod with nsenter, as the kubelet's exec.
The daemon row uses tests/helpers/supervised.py instead, for its subreaper proxy (what lifecycle
leaves behind when it exits). Every process is SIGKILLed by PID (pidfd) when its test ends.

Already covered (docs/reliability.md cites them): a JVM ignoring PWR and TERM past the decommission deadline
(test_decommission_jvm.py::test_jvm_ignoring_pwr_and_term_is_killed_after_the_deadline_and_grace), SIGPWR twice
(test_decommission_jvm.py::test_second_sigpwr_while_draining_changes_nothing), a JVM without a PWR handler, a
lingering or stubborn descendant of a Python child (test_pid1.py), a 10,000-SIGUSR1 storm on a Python child
(test_pid1.py::test_signal_storm_changes_nothing), the hook with no executor at all (test_prestop.py).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from pathlib import Path

import pytest

from examples.pods import EXECUTOR_CLASS, NSENTER, Pod
from examples.proc import vm_rss_kib, wait_exits
from lifecycle.errors import DECOM_DRAINED, DECOM_NOT_FOUND
from tests.helpers.executor import EXECUTOR_ENV, JAVA_HOME, JAVAC
from tests.helpers.pods import StartPod
from tests.helpers.processes import is_alive, signal_set
from tests.helpers.supervised import Runs, Supervised, env_for, left_behind, needs_unshare, no_traceback

pytestmark = [
    pytest.mark.integration,
    pytest.mark.hardening,
    pytest.mark.pid1,
    pytest.mark.jvm,
    needs_unshare,
    pytest.mark.skipif(JAVAC is None or NSENTER is None, reason="needs a JDK (javac) and nsenter"),
    pytest.mark.timeout(120),
]

TIMEOUT = 30.0  # seconds for any one wait: JVM start-up on a busy 2-core machine is the slow part
# A daemon the JVM's launcher leaves behind: its own session (setsid), SIGTERM ignored, so only SIGKILL ends it.
DAEMON = 'trap "" TERM; echo "daemon (pid: $$)"; exec sleep infinity'
DAEMON_LINE = re.compile(r"daemon \(pid: (\d+)\)")
READY_LINE = re.compile(r"ready \(pid: (\d+)\)")
# A `hadoop classpath` that holds lifecycle in env-resolved (every signal blocked, no JVM yet) until SIGKILLed.
HOLDING_HADOOP = '#!/bin/sh\necho "hadoop classpath: holding (pid: $$)" >&2\nexec sleep infinity\n'
STORM = 10_000


def executor_env(classes: Path, spark_home: Path, **more: str) -> dict[str, str]:
    """What `lifecycle executor` needs to start decom.java as Spark's executor, plus `more`."""
    return {
        "JAVA_HOME": str(JAVA_HOME),
        "SPARK_HOME": str(spark_home),
        "SPARK_CLASSPATH": str(classes),
        **EXECUTOR_ENV,
        **more,
    }


@pytest.fixture
def spark_home(tmp_path: Path) -> Path:
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    return home


def host_pid(pod: Pod, inner: int) -> int:
    """The test's PID for the pod's process `inner`."""
    return pod.processes()[inner]


def log_count(pod: Pod, text: str) -> int:
    return sum(text in line for _, line in pod.streams.lines["err"])


# ---- kubelet stop: SIGTERM to PID 1, a JVM that ignores it, then SIGKILL -----------------------------------


def test_jvm_ignoring_the_kubelets_sigterm_runs_until_the_kubelets_sigkill(
    pods: StartPod, executor_classes: Path, spark_home: Path, tmp_path: Path
) -> None:
    """The kubelet's SIGTERM to PID 1 should be forwarded to a JVM that ignores it and nothing more happen (no
    escalation outside a decommission, as tini); its SIGKILL to PID 1 should then end the whole namespace."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = executor_env(executor_classes, spark_home, DECOM_BEHAVIOUR="stubborn", LIFECYCLE_LOG_LEVEL="debug",
                       LIFECYCLE_TERMINATION_LOG=str(termination_log))  # fmt: skip
    pod = pods("container", ["executor"], **env)
    pod.ready()
    lifecycle, jvm = host_pid(pod, 1), pod.pidfd(2)

    os.kill(lifecycle, signal.SIGTERM)
    pod.streams.wait_for("forwarded SIGTERM to executor", "err")
    os.kill(lifecycle, signal.SIGWINCH)  # a round trip through lifecycle's loop after the SIGTERM
    pod.streams.wait_for("forwarded SIGWINCH to executor", "err")

    assert is_alive(jvm)
    assert pod.process.poll() is None
    assert log_count(pod, " -> ") == 3  # initializing → env-resolved → launching → running, and no further
    os.kill(lifecycle, signal.SIGKILL)  # the end of terminationGracePeriodSeconds
    wait_exits({"jvm": jvm}, TIMEOUT)  # PID 1 gone: the kernel killed the rest of the namespace
    pod.exit_code()
    assert termination_log.read_text() == ""  # lost with a SIGKILLed PID 1: no termination message
    no_traceback(pod.streams.dump())


# ---- a daemon left behind by the JVM's launcher ------------------------------------------------------------


def read_ready_and_daemon(run: Supervised) -> tuple[int, int]:
    """Both `ready (pid: N)` (the JVM) and `daemon (pid: M)`, in whichever order they come: (N, M)."""
    found: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT
    while len(found) < 2:
        line = run.out.next(deadline)
        assert line is not None, f"end of output; lines: {run.out.seen}"
        for name, pattern in (("ready", READY_LINE), ("daemon", DAEMON_LINE)):
            match = pattern.fullmatch(line)
            if match:
                found[name] = int(match.group(1))
    return found["ready"], found["daemon"]


@pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])
def test_daemon_left_by_the_jvm_is_killed_after_orphan_grace_and_the_exit_status_is_the_jvms(
    runs: Runs, executor_classes: Path, pid1: bool
) -> None:
    """A daemon (own session, SIGTERM ignored) started beside the JVM should get SIGTERM when the JVM exits, SIGKILL
    after LIFECYCLE_ORPHAN_GRACE, leave no zombie, and lifecycle should exit with the JVM's 143, not the daemon's
    137."""
    java = f"{JAVA_HOME}/bin/java -XX:TieredStopAtLevel=1 -Xshare:auto -cp {executor_classes} {EXECUTOR_CLASS}"
    command = ["sh", "-c", f"setsid -f sh -c {shlex.quote(DAEMON)}\nexec {java}"]
    env = env_for(LIFECYCLE_ORPHAN_GRACE="300ms", DECOM_BEHAVIOUR="unhandled")  # SIGTERM: the JVM's own shutdown
    # Not PID 1: run under tini's subreaper proxy, which reports whatever lifecycle leaves behind when it exits.
    run = runs.start(command, env, pid1=pid1, proxy=not pid1)
    _, daemon = read_ready_and_daemon(run)
    daemon_pid = run.host_pid(daemon)
    runs.extra.append(daemon_pid)
    daemon_fd = os.pidfd_open(daemon_pid)
    try:
        run.send(signal.SIGTERM)  # the kubelet's stop: forwarded to the JVM, which shuts down and exits 143
        outcome = run.finish(TIMEOUT)
        daemon_alive = is_alive(daemon_fd)  # SIGKILLed by lifecycle (or, as PID 1, by the kernel after it)
    finally:
        os.close(daemon_fd)

    assert outcome.code == 128 + signal.SIGTERM, outcome.stderr
    assert "exit 143: sh exited with code 143" in outcome.stderr  # the label is argv[0]; sh exec'd the JVM
    assert "1 descendant process(es) left: SIGTERM, then SIGKILL after 0.3s (LIFECYCLE_ORPHAN_GRACE)" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not daemon_alive
    if not pid1:
        assert left_behind(outcome) == {}  # no zombie and nothing alive handed to lifecycle's parent


# ---- decommission requested before the JVM exists ---------------------------------------------------------


def hold_in_env_resolved(tmp_path: Path) -> dict[str, str]:
    """HADOOP_HOME whose `bin/hadoop classpath` blocks: lifecycle waits in env-resolved, signals blocked, no JVM."""
    hadoop = tmp_path / "hadoop" / "bin" / "hadoop"
    hadoop.parent.mkdir(parents=True)
    hadoop.write_text(HOLDING_HADOOP)
    hadoop.chmod(0o755)
    return {"HADOOP_HOME": str(hadoop.parent.parent)}


def held(pod: Pod) -> int:
    """Block until lifecycle runs the holding `hadoop classpath`; its PID in the test's namespace."""
    (line,) = pod.streams.wait_for("hadoop classpath: holding", "err")
    match = re.search(r"\(pid: (\d+)\)", line)
    assert match is not None, line
    return host_pid(pod, int(match.group(1)))


def release(hadoop: int) -> None:
    """SIGKILL the holding `hadoop classpath`: lifecycle warns, goes on to launching and starts the JVM."""
    pidfd = os.pidfd_open(hadoop)
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)


def java_processes(pod: Pod) -> list[int]:
    found = []
    for inner, outer in pod.processes().items():
        try:
            if EXECUTOR_CLASS in Path(f"/proc/{outer}/cmdline").read_bytes().decode("utf-8", "replace"):
                found.append(inner)
        except FileNotFoundError:  # exited meanwhile
            continue
    return found


def test_sigpwr_before_the_jvm_exists_is_kept_and_acted_on_once_it_does(
    pods: StartPod, executor_classes: Path, spark_home: Path, tmp_path: Path
) -> None:
    """SIGPWR sent to PID 1 while it is still resolving the environment (no JVM yet) should stay pending, not be lost
    or kill lifecycle, and decommission the JVM once it is spawned: drained (0) if its handler is registered by then,
    else SIGTERM instead (143, with the warning), never SIGPWR's default action on a JVM without a handler (158)."""
    env = executor_env(executor_classes, spark_home, **hold_in_env_resolved(tmp_path))
    pod = pods("container", ["executor"], **env)
    hadoop = held(pod)
    lifecycle = host_pid(pod, 1)
    assert java_processes(pod) == []

    os.kill(lifecycle, signal.SIGPWR)
    assert signal.SIGPWR in signal_set(lifecycle, "SigBlk")
    assert signal.SIGPWR in signal_set(lifecycle, "ShdPnd")  # pending, not dropped (PID 1 drops SIG_DFL signals)
    release(hadoop)
    code = pod.exit_code(TIMEOUT)

    log = pod.streams.text("err")
    assert log_count(pod, "running -> decommissioning (decommission_requested)") == 1, log
    assert log_count(pod, "] sent SIG") == 1, log
    if code == 0:  # the JVM registered its handler before the supervisor unblocked the signal
        assert re.search(r"sent SIGPWR to executor \(pid \d+\) on SIGPWR", log), log
        assert pod.streams.text("out").count("draining") == 1
    else:
        assert code == 128 + signal.SIGTERM, log
        assert "warning: executor does not handle SIGPWR: sending SIGTERM instead" in log
        assert re.search(r"sent SIGTERM to executor \(pid \d+\) on SIGPWR", log), log
    no_traceback(pod.streams.dump())


def test_prestop_hook_before_the_jvm_exists_exits_3_and_the_jvm_then_runs_normally(
    pods: StartPod, executor_classes: Path, spark_home: Path, tmp_path: Path
) -> None:
    """lifecycle-decommission run while lifecycle is still resolving the environment should exit 3 at once (no
    supervisor listening, no executor JVM to find) and leave lifecycle to start the JVM normally; the kubelet's
    SIGTERM then ends it (143). The request is not remembered: decom.sh behaves the same."""
    env = executor_env(executor_classes, spark_home, **hold_in_env_resolved(tmp_path))
    pod = pods("container", ["executor"], **env)
    hadoop = held(pod)

    result = pod.run_hook()
    release(hadoop)
    pod.ready()
    os.kill(host_pid(pod, 1), signal.SIGTERM)  # the kubelet's stop, after the hook returned
    code = pod.exit_code(TIMEOUT)

    assert result.code == DECOM_NOT_FOUND, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "no executor JVM found" in error
    assert "Traceback" not in result.stderr
    assert code == 128 + signal.SIGTERM
    assert "decommission" not in pod.streams.text("err")
    assert "draining" not in pod.streams.text("out")
    no_traceback(pod.streams.dump())


# ---- decommission requested twice, by both routes -----------------------------------------------------------


def test_prestop_hook_after_sigpwr_changes_nothing_and_hears_how_the_jvm_ended(
    pods: StartPod, executor_classes: Path, spark_home: Path
) -> None:
    """The preStop command arriving while a SIGPWR-started drain runs should be a repeat (no second signal to the
    JVM), and the command should still be told when the JVM exits, and exit 0 before lifecycle does."""
    env = executor_env(executor_classes, spark_home, DECOM_DRAIN_MS="600000")  # drains until the test ends it
    pod = pods("container", ["executor"], **env)
    pod.ready()
    lifecycle = host_pid(pod, 1)

    os.kill(lifecycle, signal.SIGPWR)
    pod.streams.wait_for("draining")
    hook = pod.start_hook()
    pod.streams.wait_for("already decommissioning: request ignored", "err")
    os.kill(lifecycle, signal.SIGTERM)  # the kubelet's stop ends the drain: forwarded, the JVM shuts down (143)
    result = hook.finish(TIMEOUT)
    code = pod.exit_code(TIMEOUT)

    assert result.code == DECOM_DRAINED, result.stderr
    assert "executor exited with code 143" in result.stderr
    assert code == 128 + signal.SIGTERM
    assert pod.streams.text("out").count("draining") == 1
    assert log_count(pod, "] sent SIGPWR to executor") == 1
    assert log_count(pod, "running -> decommissioning") == 1
    no_traceback(pod.streams.dump())


# ---- decommission requested after the JVM exited ------------------------------------------------------------


@pytest.mark.parametrize("layout", ["container", "shared"])
def test_prestop_hook_during_the_orphan_grace_exits_with_a_documented_code_before_lifecycle(
    pods: StartPod, executor_classes: Path, layout: str
) -> None:
    """lifecycle-decommission run after the JVM has exited, while lifecycle waits LIFECYCLE_ORPHAN_GRACE for a
    daemon, should be told the executor is gone and exit 0 or 3 (README) before lifecycle exits: not hang until
    lifecycle exits and then be SIGKILLed with PID 1 (container), nor report a refusal, 6 (shared)."""
    java = f"{JAVA_HOME}/bin/java -XX:TieredStopAtLevel=1 -Xshare:auto -cp {executor_classes} {EXECUTOR_CLASS}"
    command = ["sh", "-c", f"setsid -f sh -c {shlex.quote(DAEMON)}\nexec {java}"]
    pod = pods(layout, command, LIFECYCLE_ORPHAN_GRACE="3")
    pod.ready()
    lifecycle = host_pid(pod, 1 if layout == "container" else 2)

    os.kill(lifecycle, signal.SIGPWR)  # the JVM drains (300 ms) and exits 0; the daemon stays
    pod.streams.wait_for("1 descendant process(es) left", "err")
    result = pod.run_hook()
    if layout == "container":
        code = pod.exit_code(TIMEOUT)
    else:  # the pause process outlives lifecycle and reports its exit
        code = int(pod.streams.wait_for("pause: reaped 2 exit ", "err")[0].rsplit(" ", 1)[1])

    assert code == 0, pod.streams.dump()
    assert result.code in (DECOM_DRAINED, DECOM_NOT_FOUND), f"hook exit {result.code}:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    no_traceback(pod.streams.dump())


# ---- 10,000 signals while the JVM runs -----------------------------------------------------------------------


class Forwards:
    """Counts lifecycle's `forwarded SIG…` debug lines as they arrive, scanning each line once."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.scanned = 0
        self.count = 0

    def wait(self, total: int, deadline: float) -> None:
        """Block until `total` forwards have been logged in all (bounded by `deadline`)."""
        lines = self.pod.streams.lines["err"]
        while True:
            self.count += sum("] debug: forwarded SIG" in line for _, line in lines[self.scanned :])
            self.scanned = len(lines)
            if self.count >= total:
                return
            if not self.pod.streams.pump(deadline):
                raise AssertionError(f"{self.count} of {total} forwards logged by the deadline")


@pytest.mark.timeout(300)
def test_ten_thousand_signals_to_pid1_lose_no_exit_status_and_leave_rss_flat(
    pods: StartPod, executor_classes: Path, spark_home: Path, tmp_path: Path
) -> None:
    """10,000 signals to PID 1 while the JVM runs, each handled (forwarded; the JVM ignores SIGCONT and SIGURG),
    should leave lifecycle's RSS within 2 MiB of where it was; a burst of 10,000 more (coalesced by the kernel)
    should change nothing either, and the drain afterwards should still end in exit 0 and its termination message."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = executor_env(executor_classes, spark_home, LIFECYCLE_LOG_LEVEL="debug",
                       LIFECYCLE_TERMINATION_LOG=str(termination_log))  # fmt: skip
    pod = pods("container", ["executor"], **env)
    pod.ready()
    lifecycle = host_pid(pod, 1)
    storm = (signal.SIGCONT, signal.SIGURG)
    forwards = Forwards(pod)
    deadline = time.monotonic() + 240

    def paced(count: int) -> None:
        """One signal at a time, each sent once lifecycle has logged forwarding the one before: none coalesces."""
        for _ in range(count):
            os.kill(lifecycle, storm[forwards.count % len(storm)])
            forwards.wait(forwards.count + 1, deadline)

    paced(100)  # warm-up: the first forwards and log lines allocate what they keep
    before = vm_rss_kib(lifecycle)
    paced(STORM)
    after = vm_rss_kib(lifecycle)
    handled = forwards.count
    for index in range(STORM):  # a burst: the kernel coalesces what is pending, lifecycle must not mind
        os.kill(lifecycle, storm[index % len(storm)])
    # The sentinel has the highest number: pending standard signals are delivered lowest first, so once lifecycle
    # logs forwarding it, every signal of the burst has been dequeued and handled.
    assert all(sig < signal.SIGWINCH for sig in storm)
    os.kill(lifecycle, signal.SIGWINCH)
    pod.streams.wait_for("forwarded SIGWINCH to executor", "err", timeout=60)
    forwards.wait(handled + 1, deadline)  # counts what the burst and the sentinel gave
    after_burst = vm_rss_kib(lifecycle)
    print(
        f"lifecycle VmRSS: {before} KiB before {STORM} paced signals, {after} KiB after ({handled - 100} forwarded), "
        f"{after_burst} KiB after a burst of {STORM} ({forwards.count - handled - 1} forwarded after coalescing)"
    )
    os.kill(lifecycle, signal.SIGPWR)
    code = pod.exit_code(TIMEOUT)

    assert handled == 100 + STORM
    assert after - before < 2048, f"VmRSS grew from {before} KiB to {after} KiB over {STORM} signals"
    assert after_burst - before < 2048, f"VmRSS grew from {before} KiB to {after_burst} KiB"
    assert code == 0
    assert pod.streams.text("out").splitlines()[-1] == "drained"
    assert "exit code: 0\n" in termination_log.read_text()
    assert "error" not in pod.streams.text("err")
    no_traceback(pod.streams.dump())
