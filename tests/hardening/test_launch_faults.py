"""Launch faults as PID 1: `java` or `spark-submit` missing or not executable, SPARK_HOME missing or empty.

Each fault runs as PID 1 of a new PID namespace (tests/helpers/supervised.py), in both run modes:
`exec` fails in lifecycle's own execve, `supervise` in the spawned child's, and the two must report alike.
What is asserted is what an operator sees: the README's exit code, exactly one error line that names the
variable or the path, no traceback, and the same reason in the termination message.

Already covered elsewhere (docs/reliability.md cites them): a pass-through command missing or not executable
(test_pid1.py::test_exec_failure_exits_126_or_127_with_one_line, test_cli.py::test_command_not_found_exits_127),
SPARK_HOME unset in a driver dry run and in an executor run that is not PID 1 (test_cli.py), and JAVA_HOME
resolution as a function (test_plan_parity.py::test_find_java_home_without_any_java_fails_with_127).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.executor import SCHEDULER_ENV
from tests.helpers.recorder import fake_java_home, fake_spark_home
from tests.helpers.supervised import SYSTEM_PATH, Runs, env_for, error_lines, needs_unshare, no_traceback

pytestmark = [pytest.mark.integration, pytest.mark.hardening, pytest.mark.pid1, needs_unshare]

NOT_FOUND = os.strerror(errno.ENOENT)
NOT_EXECUTABLE = os.strerror(errno.EACCES)
JAVA_HINT = "(from JAVA_HOME; set JAVA_HOME to a JDK or JRE directory)"
SPARK_HINT = "(from SPARK_HOME; is it the Spark directory?)"


@dataclass(frozen=True)
class Fault:
    """One broken installation: what to run, the environment to run it in, and what lifecycle must say."""

    argv: list[str]
    env: dict[str, str]
    code: int
    error: str  # the whole message of the one error line, after `error: `


Breaker = Callable[[Path], Fault]


def java_home_without_java(root: Path) -> Fault:
    home = root / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    env = {"JAVA_HOME": str(home), "SPARK_HOME": str(fake_spark_home(root)), **SCHEDULER_ENV}
    return Fault(["executor"], env, 127, f"cannot execute {java}: {NOT_FOUND} {JAVA_HINT}")


def java_without_execute_bit(root: Path) -> Fault:
    home = fake_java_home(root)
    java = home / "bin" / "java"
    java.chmod(0o644)  # no x bit for anyone: execve refuses it even for root
    env = {"JAVA_HOME": str(home), "SPARK_HOME": str(fake_spark_home(root)), **SCHEDULER_ENV}
    return Fault(["executor"], env, 126, f"cannot execute {java}: {NOT_EXECUTABLE} {JAVA_HINT}")


def no_java_anywhere(root: Path) -> Fault:
    empty = root / "empty-bin"
    empty.mkdir()
    env = {"PATH": str(empty), "SPARK_HOME": str(fake_spark_home(root)), **SCHEDULER_ENV}  # JAVA_HOME unset
    return Fault(
        ["executor"],
        env,
        127,
        "java: not found: JAVA_HOME is unset or empty and there is no java on PATH "
        "(set JAVA_HOME to the JDK or JRE directory)",
    )


def spark_submit_missing(root: Path) -> Fault:
    home = fake_spark_home(root)
    submit = home / "bin" / "spark-submit"
    submit.unlink()
    return Fault(["driver", "--class", "X", "app.jar"], {"SPARK_HOME": str(home)}, 127,
                 f"cannot execute {submit}: {NOT_FOUND} {SPARK_HINT}")  # fmt: skip


def spark_submit_without_execute_bit(root: Path) -> Fault:
    home = fake_spark_home(root)
    submit = home / "bin" / "spark-submit"
    submit.chmod(0o644)
    return Fault(["driver", "--class", "X", "app.jar"], {"SPARK_HOME": str(home)}, 126,
                 f"cannot execute {submit}: {NOT_EXECUTABLE} {SPARK_HINT}")  # fmt: skip


def spark_home_a_missing_directory(root: Path) -> Fault:
    home = root / "no-such-spark"
    submit = home / "bin" / "spark-submit"
    return Fault(["driver", "--class", "X", "app.jar"], {"SPARK_HOME": str(home)}, 127,
                 f"cannot execute {submit}: {NOT_FOUND} {SPARK_HINT}")  # fmt: skip


def spark_home_unset_for_the_driver(root: Path) -> Fault:
    return Fault(["driver", "--class", "X", "app.jar"], {}, 78,
                 "SPARK_HOME: required in driver mode but not set (expected the Spark directory)")  # fmt: skip


def spark_home_empty_for_the_executor(root: Path) -> Fault:
    env = {"JAVA_HOME": str(fake_java_home(root)), "SPARK_HOME": "", **SCHEDULER_ENV}
    return Fault(["executor"], env, 78, "SPARK_HOME: expected a directory, got an empty value")


FAULTS: dict[str, Breaker] = {
    "java-home-without-bin-java": java_home_without_java,
    "bin-java-without-x-bit": java_without_execute_bit,
    "no-java-home-no-java-on-path": no_java_anywhere,
    "spark-submit-missing": spark_submit_missing,
    "spark-submit-without-x-bit": spark_submit_without_execute_bit,
    "spark-home-a-missing-directory": spark_home_a_missing_directory,
    "spark-home-unset-driver": spark_home_unset_for_the_driver,
    "spark-home-empty-executor": spark_home_empty_for_the_executor,
}


@pytest.mark.parametrize("run_mode", ["exec", "supervise"])
@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_broken_installation_exits_with_the_documented_code_and_one_line(
    runs: Runs, tmp_path: Path, fault: Breaker, run_mode: str
) -> None:
    """A missing or non-executable java or spark-submit, or a missing SPARK_HOME, should make lifecycle as PID 1
    exit with the README's code (127, 126 or 78) after one error line naming the path or variable, and say the same
    in the termination message."""
    broken = fault(tmp_path)
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = env_for(LIFECYCLE_RUN_MODE=run_mode, LIFECYCLE_TERMINATION_LOG=str(termination_log), **broken.env)
    if "PATH" in broken.env:
        assert SYSTEM_PATH not in env["PATH"]

    outcome = runs.run(broken.argv, env, pid1=True, cwd=tmp_path)

    assert outcome.code == broken.code, outcome.stderr
    assert error_lines(outcome) == [f"error: {broken.error}"], outcome.stderr
    no_traceback(outcome.stderr)
    assert outcome.lines == []  # nothing started, so nothing on stdout
    message = termination_log.read_text()
    assert message.startswith(f"lifecycle: {broken.error}\n"), message
    assert f"\nexit code: {broken.code}\n" in message
