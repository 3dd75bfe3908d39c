"""Decommissioning a real JVM: `lifecycle executor` as PID 1 of a new PID namespace, SIGPWR from outside.

The executor is tests/helpers/decom.java, compiled once per session: its main class is Spark's
`org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend` and it registers its SIGPWR handler with
`sun.misc.Signal`, as Spark's executor does with spark.decommission.enabled=true. lifecycle builds the real
executor command line (JAVA_HOME, SPARK_HOME, SPARK_CLASSPATH holding the compiled class), so this is the
path a pod takes: the kubelet's preStop sends SIGPWR to PID 1, lifecycle turns it into a decommission.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.executor import EXECUTOR_ENV, JAVA_HOME, JAVAC
from tests.helpers.supervised import Runs, Supervised, env_for, needs_unshare

TIMEOUT = 30.0  # JVM start-up on a busy 2-core machine is the slow part
StartExecutor = Callable[..., Supervised]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pid1,
    pytest.mark.jvm,
    needs_unshare,
    pytest.mark.skipif(JAVAC is None, reason="needs a JDK (javac) to compile the executor stub"),
]


@pytest.fixture
def start_executor(runs: Runs, executor_classes: Path, tmp_path: Path) -> StartExecutor:
    """Start `lifecycle executor` as PID 1 with the stub JVM; returns it once the JVM printed `ready`."""
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)

    def start(**variables: str) -> Supervised:
        env = env_for(
            JAVA_HOME=str(JAVA_HOME),
            SPARK_HOME=str(spark_home),
            SPARK_CLASSPATH=str(executor_classes),
            **EXECUTOR_ENV,
            **variables,
        )
        run = runs.start(["executor"], env, pid1=True, cwd=tmp_path)
        run.ready(TIMEOUT)
        return run

    return start


def log_lines(stderr: str) -> list[str]:
    """lifecycle's text log lines without the `lifecycle: [  0.123s] ` prefix."""
    return [line.split("] ", 1)[1] for line in stderr.splitlines() if line.startswith("lifecycle: [")]


def test_sigpwr_drains_the_executor_and_exits_0(start_executor: StartExecutor) -> None:
    """SIGPWR to PID 1 should reach the JVM's handler as SIGPWR, let it drain, and end lifecycle with its exit 0."""
    run = start_executor(DECOM_DRAIN_MS="300")
    run.send(signal.SIGPWR)
    run.expect("draining", TIMEOUT)
    outcome = run.finish(TIMEOUT)
    assert outcome.code == 0
    assert outcome.lines[-1] == "drained"
    log = log_lines(outcome.stderr)
    assert "running -> decommissioning (decommission_requested)" in log
    assert "decommissioning -> terminated (child_exited)" in log
    assert any(line.startswith("sent SIGPWR to executor (pid 2) on SIGPWR") for line in log), log
    assert any(line.startswith("exit 0: executor exited with code 0") for line in log), log


def test_second_sigpwr_while_draining_changes_nothing(start_executor: StartExecutor) -> None:
    """A second SIGPWR during the drain should be logged as a repeat and not reach the JVM again."""
    run = start_executor(DECOM_DRAIN_MS="1500")  # long enough for the second request to land mid-drain
    run.send(signal.SIGPWR)
    run.expect("draining", TIMEOUT)
    run.send(signal.SIGPWR)
    outcome = run.finish(TIMEOUT)
    assert outcome.code == 0
    assert outcome.lines.count("draining") == 1
    log = log_lines(outcome.stderr)
    assert "already decommissioning: request ignored" in log
    assert sum(line.startswith("sent SIGPWR") for line in log) == 1
    assert "running -> decommissioning (decommission_requested)" in log
    assert "decommissioning -> terminated (child_exited)" in log


def test_jvm_ignoring_pwr_and_term_is_killed_after_the_deadline_and_grace(start_executor: StartExecutor) -> None:
    """A JVM that ignores SIGPWR and SIGTERM should get SIGTERM at the deadline, SIGKILL after the grace: exit 137."""
    run = start_executor(DECOM_BEHAVIOUR="stubborn", LIFECYCLE_DECOMMISSION_TIMEOUT="1", LIFECYCLE_KILL_GRACE="1")
    started = time.monotonic()
    run.send(signal.SIGPWR)
    outcome = run.finish(TIMEOUT)
    elapsed = time.monotonic() - started
    assert outcome.code == 128 + signal.SIGKILL
    assert elapsed >= 2.0  # the deadline, then the grace
    log = log_lines(outcome.stderr)
    assert (
        "warning: decommission deadline passed: sent SIGTERM to executor; SIGKILL in 1s (LIFECYCLE_KILL_GRACE)" in log
    )
    assert "warning: executor outlived LIFECYCLE_KILL_GRACE: sent SIGKILL" in log
    assert any(line.startswith("exit 137: executor was killed by SIGKILL") for line in log), log


def test_jvm_without_pwr_handler_gets_sigterm_instead_and_exits_143(start_executor: StartExecutor) -> None:
    """A JVM with no SIGPWR handler (decommissioning off) should get SIGTERM, run its shutdown and exit 143."""
    run = start_executor(DECOM_BEHAVIOUR="unhandled")
    run.send(signal.SIGPWR)
    outcome = run.finish(TIMEOUT)
    assert outcome.code == 128 + signal.SIGTERM
    assert "draining" not in outcome.lines
    log = log_lines(outcome.stderr)
    assert any(line.startswith("warning: executor does not handle SIGPWR: sending SIGTERM instead") for line in log)
    assert any(line.startswith("sent SIGTERM to executor (pid 2) on SIGPWR") for line in log), log
