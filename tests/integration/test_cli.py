"""The installed `lifecycle` console script, run for real in a temporary directory with a controlled environment.

`java` and `spark-submit` are the recorder stub (tests/helpers/recorder.py), so the argv lifecycle
builds is compared element for element with the one upstream's entrypoint.sh builds (upstream-behaviour
§1.2-§1.3), as the started program received it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.knobs import KNOBS
from tests.helpers.processes import communicate_bounded
from tests.helpers.recorder import fake_java_home, fake_spark_home, install, read_record
from tests.helpers.supervised import no_traceback

pytestmark = pytest.mark.integration

LIFECYCLE = shutil.which("lifecycle", path=os.path.dirname(sys.executable))
TIMEOUT = 30.0  # seconds for one lifecycle run; each takes well under one
SYSTEM_PATH = "/usr/bin:/bin"
EXECUTOR_CLASS = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"

# What the scheduler sets for an executor (upstream-behaviour §4.1), as in examples/executor.env.
EXECUTOR_ENV = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@spark-pi-driver-svc.default.svc:7078",
    "SPARK_EXECUTOR_CORES": "2",
    "SPARK_EXECUTOR_MEMORY": "1024m",
    "SPARK_APPLICATION_ID": "spark-a1b2c3d4e5f6",
    "SPARK_EXECUTOR_ID": "1",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_IP": "10.244.1.17",
    "SPARK_EXECUTOR_POD_NAME": "spark-pi-exec-1",
}
# Twelve options, so that numeric order (0, 1, 2 … 10, 11) differs from name order (0, 1, 10, 11, 2 …).
JAVA_OPTS = [
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
    "-Dspark.driver.port=7078",
    "-Dspark.driver.blockManager.port=7079",
]
SECRETS = ("topsecret", "hunter2")
SECRET_ENV = {"_SPARK_AUTH_SECRET": "topsecret", "SPARK_JAVA_OPT_0": "-Dspark.ssl.keyPassword=hunter2"}
EXECUTOR_VARIABLES = sorted(EXECUTOR_ENV)


@dataclass(frozen=True)
class Run:
    """How one lifecycle run ended."""

    code: int
    stdout: str
    stderr: str
    pid: int


def run(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = TIMEOUT) -> Run:
    """Run a command to completion (bounded), killing whatever is left of it if the bound passes."""
    process = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = communicate_bounded(process, timeout)
    out, err = stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
    return Run(process.returncode, out, err, process.pid)


def lifecycle(*args: str, env: Mapping[str, str], cwd: Path) -> Run:
    """Run the installed console script."""
    assert LIFECYCLE is not None, f"no lifecycle console script next to {sys.executable}: pip install -e ."
    return run([LIFECYCLE, *args], env, cwd)


def expected_executor_argv(java_home: str, spark_home: str, cwd: str, options: Sequence[str]) -> list[str]:
    """The argv upstream's entrypoint.sh (3.5+) builds for EXECUTOR_ENV, restated from upstream-behaviour §1.3."""
    return [
        f"{java_home}/bin/java",
        *options,
        "-Xms1024m",
        "-Xmx1024m",
        "-cp",
        # conf : SPARK_CLASSPATH (unset, so empty) : jars/* : $PWD : SPARK_DIST_CLASSPATH (unset, so empty)
        f"{spark_home}/conf::{spark_home}/jars/*:{cwd}:",
        EXECUTOR_CLASS,
        "--driver-url", EXECUTOR_ENV["SPARK_DRIVER_URL"],
        "--executor-id", "1",
        "--cores", "2",
        "--app-id", "spark-a1b2c3d4e5f6",
        "--hostname", "10.244.1.17",
        "--resourceProfileId", "0",
        "--podName", "spark-pi-exec-1",
    ]  # fmt: skip


@dataclass(frozen=True)
class Sandbox:
    """A temporary working directory, fake SPARK_HOME and JAVA_HOME, and where the stubs record."""

    cwd: Path
    spark_home: Path
    java_home: Path
    record: Path

    def env(self, **more: str) -> dict[str, str]:
        """The base environment: PATH, SPARK_HOME, RECORD_FILE, termination log off; plus `more`."""
        base = {
            "PATH": SYSTEM_PATH,
            "SPARK_HOME": str(self.spark_home),
            "RECORD_FILE": str(self.record),
            "LIFECYCLE_TERMINATION_LOG": "",  # never the host's /dev/termination-log
        }
        return {**base, **more}

    def executor_env(self, **more: str) -> dict[str, str]:
        """The scheduler's executor environment with JAVA_HOME at the fake JDK."""
        options = {f"SPARK_JAVA_OPT_{n}": value for n, value in enumerate(JAVA_OPTS)}
        return {**self.env(**EXECUTOR_ENV, **options, JAVA_HOME=str(self.java_home)), **more}

    def listing(self) -> list[str]:
        return sorted(os.listdir(self.cwd))


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    cwd = tmp_path / "work-dir"
    cwd.mkdir()
    return Sandbox(
        cwd=cwd.resolve(),
        spark_home=fake_spark_home(tmp_path),
        java_home=fake_java_home(tmp_path),
        record=tmp_path / "record.json",
    )


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    """A recorder stub to run in pass-through mode."""
    return install(tmp_path / "bin" / "recorded-command")


def assert_no_traceback(result: Run) -> None:
    no_traceback(result.stderr)
    no_traceback(result.stdout)


# ---- executor and driver argv ------------------------------------------------------------------------


def test_executor_argv_matches_upstream(sandbox: Sandbox, both_run_modes: str) -> None:
    """lifecycle executor should start $JAVA_HOME/bin/java with upstream's argv, element for element."""
    result = lifecycle("executor", env=sandbox.executor_env(LIFECYCLE_RUN_MODE=both_run_modes), cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    record = read_record(sandbox.record)
    assert record["argv"] == expected_executor_argv(
        str(sandbox.java_home), str(sandbox.spark_home), str(sandbox.cwd), JAVA_OPTS
    )
    assert record["cwd"] == str(sandbox.cwd)
    assert record["env"]["SPARK_EXECUTOR_POD_NAME"] == "spark-pi-exec-1"


def test_executor_without_java_home_resolves_java_on_path_through_symlinks(
    sandbox: Sandbox, tmp_path: Path, both_run_modes: str
) -> None:
    """With JAVA_HOME unset, lifecycle should run <real java.home>/bin/java for a symlinked java on PATH."""
    path_dir = tmp_path / "path-bin"
    path_dir.mkdir()
    (path_dir / "java").symlink_to(sandbox.java_home / "bin" / "java")  # like /usr/bin/java -> alternatives
    env = sandbox.executor_env(LIFECYCLE_RUN_MODE=both_run_modes, PATH=f"{path_dir}:{SYSTEM_PATH}")
    del env["JAVA_HOME"]

    result = lifecycle("executor", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    real_home = os.path.realpath(sandbox.java_home)
    assert read_record(sandbox.record)["argv"] == expected_executor_argv(
        real_home, str(sandbox.spark_home), str(sandbox.cwd), JAVA_OPTS
    )


def test_driver_argv_matches_upstream(sandbox: Sandbox, both_run_modes: str) -> None:
    """lifecycle driver should run spark-submit in client mode with the driver's arguments after upstream's."""
    env = sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes, SPARK_DRIVER_BIND_ADDRESS="10.244.0.5")

    result = lifecycle("driver", "--class", "X", "local:///app.jar", "a", "b", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    assert read_record(sandbox.record)["argv"] == [
        f"{sandbox.spark_home}/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=10.244.0.5",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.244.0.5",
        "--deploy-mode", "client",
        "--class", "X", "local:///app.jar", "a", "b",
    ]  # fmt: skip


@pytest.mark.parametrize(("mode", "same_process"), [("exec", True), ("supervise", False)])
def test_run_mode_decides_whether_lifecycle_stays(sandbox: Sandbox, mode: str, same_process: bool) -> None:
    """exec should replace lifecycle with the JVM (same PID); supervise should start it as a child."""
    result = lifecycle("executor", env=sandbox.executor_env(LIFECYCLE_RUN_MODE=mode), cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    assert (read_record(sandbox.record)["pid"] == result.pid) is same_process


# ---- pass-through and exit codes -----------------------------------------------------------------------


def test_pass_through_runs_the_whole_argv(sandbox: Sandbox, stub: Path, both_run_modes: str) -> None:
    """A first argument that is not a Spark mode should run as the command, with every argument unchanged."""
    args = [str(stub), "a", "b c", "--flag", "", "driver"]

    result = lifecycle(*args, env=sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes), cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    record = read_record(sandbox.record)
    assert record["argv"] == args
    assert record["cwd"] == str(sandbox.cwd)


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_code_passes_through(sandbox: Sandbox, stub: Path, both_run_modes: str, code: int) -> None:
    """lifecycle should exit with the command's own exit code."""
    result = lifecycle(
        str(stub), env=sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes, RECORD_EXIT=str(code)), cwd=sandbox.cwd
    )

    assert result.code == code, result.stderr


def test_executor_exit_code_passes_through(sandbox: Sandbox, both_run_modes: str) -> None:
    """lifecycle executor should exit with the JVM's exit code."""
    env = sandbox.executor_env(LIFECYCLE_RUN_MODE=both_run_modes, RECORD_EXIT="3")

    assert lifecycle("executor", env=env, cwd=sandbox.cwd).code == 3


def test_command_not_found_exits_127(sandbox: Sandbox, both_run_modes: str) -> None:
    """A command that does not exist should exit 127 with one error line and no traceback."""
    result = lifecycle("no-such-command-here", env=sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes), cwd=sandbox.cwd)

    assert result.code == 127
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert "no-such-command-here" in errors[0]
    assert_no_traceback(result)


def test_non_executable_file_exits_126(sandbox: Sandbox, tmp_path: Path, both_run_modes: str) -> None:
    """A file without execute permission should exit 126 with one error line and no traceback."""
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)

    result = lifecycle(str(script), env=sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes), cwd=sandbox.cwd)

    assert result.code == 126
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert str(script) in errors[0]
    assert_no_traceback(result)


def test_executor_with_nothing_set_exits_78_naming_each_variable(sandbox: Sandbox) -> None:
    """A configuration error should exit 78 with exactly one error line per missing variable, no traceback."""
    result = lifecycle("executor", env={"PATH": SYSTEM_PATH, "LIFECYCLE_TERMINATION_LOG": ""}, cwd=sandbox.cwd)

    assert result.code == 78
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    for name in [*EXECUTOR_VARIABLES, "SPARK_HOME"]:
        naming = [line for line in errors if f"error: {name}:" in line]
        assert len(naming) == 1, f"{name}: {result.stderr}"
    assert len(errors) == len(EXECUTOR_VARIABLES) + 1, result.stderr
    assert_no_traceback(result)


def test_driver_without_spark_home_exits_78(sandbox: Sandbox) -> None:
    """lifecycle driver with SPARK_HOME unset should exit 78 naming SPARK_HOME, not run None/bin/spark-submit."""
    env = sandbox.env()
    del env["SPARK_HOME"]

    result = lifecycle("--dry-run", "driver", "--class", "X", env=env, cwd=sandbox.cwd)

    assert result.code == 78, result.stdout
    assert [line for line in result.stderr.splitlines() if "error: SPARK_HOME:" in line], result.stderr
    assert "None/bin/spark-submit" not in result.stdout


# ---- argv errors, --help, python -m ----------------------------------------------------------------------


def test_unknown_option_before_the_mode_exits_64(sandbox: Sandbox) -> None:
    """An option lifecycle does not know, before the mode, should exit 64 with one error line naming it."""
    result = lifecycle("--bogus", "executor", env=sandbox.executor_env(), cwd=sandbox.cwd)

    assert result.code == 64
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--bogus" in errors[0], result.stderr
    assert not sandbox.record.exists()
    assert_no_traceback(result)


def test_no_arguments_exits_64(sandbox: Sandbox) -> None:
    """lifecycle with no mode or command should exit 64 with a usage message and no traceback."""
    result = lifecycle(env=sandbox.env(), cwd=sandbox.cwd)

    assert result.code == 64
    assert "usage:" in result.stderr
    assert_no_traceback(result)


def test_json_without_dry_run_exits_64(sandbox: Sandbox) -> None:
    """--json alone should be refused with 64: it only shapes a dry run's output."""
    result = lifecycle("--json", "executor", env=sandbox.executor_env(), cwd=sandbox.cwd)

    assert result.code == 64
    assert not sandbox.record.exists()


def test_help_lists_every_lifecycle_variable(sandbox: Sandbox) -> None:
    """--help should exit 0 and list every LIFECYCLE_* knob with its default."""
    result = lifecycle("--help", env=sandbox.env(), cwd=sandbox.cwd)

    assert result.code == 0
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  LIFECYCLE_")}
    assert listed == {knob.name for knob in KNOBS}
    for knob in KNOBS:
        assert f"default {knob.default or '(empty)'}" in result.stdout


def test_python_m_lifecycle_behaves_like_the_console_script(sandbox: Sandbox) -> None:
    """`python -m lifecycle` should give the same dry-run output and exit codes as the console script."""
    env = sandbox.executor_env()
    module = [sys.executable, "-m", "lifecycle"]

    script_run = lifecycle("--dry-run", "executor", env=env, cwd=sandbox.cwd)
    module_run = run([*module, "--dry-run", "executor"], env, sandbox.cwd)
    script_usage = lifecycle(env=env, cwd=sandbox.cwd)
    module_usage = run(module, env, sandbox.cwd)

    assert (module_run.code, module_run.stdout) == (script_run.code, script_run.stdout) == (0, script_run.stdout)
    assert (module_usage.code, module_usage.stderr) == (script_usage.code, script_usage.stderr)
    assert module_usage.code == 64


# ---- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_starts_nothing(sandbox: Sandbox) -> None:
    """--dry-run executor should print the states, argv and classpath with sources, exit 0 and run nothing."""
    result = lifecycle("--dry-run", "executor", env=sandbox.executor_env(), cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    assert not sandbox.record.exists()
    out = result.stdout
    assert "states: initializing -> env-resolved -> launching" in out
    argv = expected_executor_argv(str(sandbox.java_home), str(sandbox.spark_home), str(sandbox.cwd), JAVA_OPTS)
    for index, arg in enumerate(argv):
        assert f"  [{index}] {arg}\n" in out
    assert f"  [{len(argv)}] " not in out
    classpath = {
        f"{sandbox.spark_home}/conf": "$SPARK_HOME/conf",
        f"{sandbox.spark_home}/jars/*": "$SPARK_HOME/jars/*",
        str(sandbox.cwd): "$PWD",
    }
    lines = out.splitlines()
    for value, source in classpath.items():
        assert any(line.split()[:1] == [value] and f"from {source}" in line for line in lines), (value, out)
    assert sum("(empty: the working directory)" in line for line in lines) == 2  # SPARK_CLASSPATH, DIST


def test_dry_run_without_java_home_starts_no_jvm(sandbox: Sandbox, tmp_path: Path) -> None:
    """With JAVA_HOME unset, a dry run should find java.home from the symlinked java on PATH without running it."""
    path_dir = tmp_path / "path-bin"
    path_dir.mkdir()
    (path_dir / "java").symlink_to(sandbox.java_home / "bin" / "java")
    env = sandbox.executor_env(PATH=f"{path_dir}:{SYSTEM_PATH}")
    del env["JAVA_HOME"]

    result = lifecycle("--dry-run", "executor", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    assert f"  [0] {os.path.realpath(sandbox.java_home)}/bin/java\n" in result.stdout
    assert not sandbox.record.exists()


def test_dry_run_json_is_one_object_with_the_plan(sandbox: Sandbox) -> None:
    """--dry-run --json should print one JSON object with mode, states, argv, env, cwd and classpath."""
    result = lifecycle("--dry-run", "--json", "executor", env=sandbox.executor_env(), cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert {"mode", "states", "argv", "env", "cwd", "classpath"} <= set(plan)
    assert plan["mode"] == "executor"
    assert plan["states"] == ["initializing", "env-resolved", "launching"]
    assert plan["argv"] == expected_executor_argv(
        str(sandbox.java_home), str(sandbox.spark_home), str(sandbox.cwd), JAVA_OPTS
    )
    assert plan["cwd"] == str(sandbox.cwd)
    assert [entry["value"] for entry in plan["classpath"]] == [
        f"{sandbox.spark_home}/conf", "", f"{sandbox.spark_home}/jars/*", str(sandbox.cwd), ""
    ]  # fmt: skip
    assert not sandbox.record.exists()


# ---- secrets and the working directory ------------------------------------------------------------------


@pytest.mark.parametrize("options", [["--dry-run"], ["--dry-run", "--json"]], ids=["text", "json"])
@pytest.mark.parametrize("level", ["info", "debug"])
def test_dry_run_never_prints_secrets(sandbox: Sandbox, options: list[str], level: str) -> None:
    """The auth secret and a password java option should appear in neither stdout nor stderr of a dry run."""
    env = sandbox.executor_env(**SECRET_ENV, LIFECYCLE_LOG_LEVEL=level)

    result = lifecycle(*options, "executor", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout
        assert secret not in result.stderr


@pytest.mark.parametrize("level", ["info", "debug"])
def test_real_run_never_prints_secrets(sandbox: Sandbox, both_run_modes: str, level: str) -> None:
    """The auth secret and a password java option should reach the JVM but never lifecycle's output."""
    env = sandbox.executor_env(**SECRET_ENV, LIFECYCLE_RUN_MODE=both_run_modes, LIFECYCLE_LOG_LEVEL=level)

    result = lifecycle("executor", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout
        assert secret not in result.stderr
    record = read_record(sandbox.record)
    assert record["argv"][1] == "-Dspark.ssl.keyPassword=hunter2"
    assert record["env"]["_SPARK_AUTH_SECRET"] == "topsecret"


def test_no_file_is_written_in_the_working_directory(sandbox: Sandbox, both_run_modes: str) -> None:
    """Unlike upstream's java_opts.txt, lifecycle should leave the working directory as it found it."""
    (sandbox.cwd / "existing.txt").write_text("kept\n")
    before = sandbox.listing()

    dry = lifecycle("--dry-run", "executor", env=sandbox.executor_env(), cwd=sandbox.cwd)
    real = lifecycle("executor", env=sandbox.executor_env(LIFECYCLE_RUN_MODE=both_run_modes), cwd=sandbox.cwd)

    assert (dry.code, real.code) == (0, 0), real.stderr
    assert sandbox.listing() == before


# ---- JSON logs -----------------------------------------------------------------------------------------


def json_lines(stderr: str) -> list[dict[str, object]]:
    """Every stderr line parsed as a JSON object (fails on the first line that is not one)."""
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line on stderr: {line!r}")
        assert isinstance(record, dict), line
        assert {"event", "level"} <= set(record), line
        records.append(record)
    return records


def test_json_log_format_makes_every_line_an_object(sandbox: Sandbox, both_run_modes: str) -> None:
    """With LIFECYCLE_LOG_FORMAT=json every stderr line should be a JSON object; transitions name both ends."""
    env = sandbox.executor_env(LIFECYCLE_RUN_MODE=both_run_modes, LIFECYCLE_LOG_FORMAT="json")

    result = lifecycle("executor", env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    transitions = [(r["source"], r["dest"]) for r in json_lines(result.stderr) if r["event"] == "transition"]
    expected = [("initializing", "env-resolved"), ("env-resolved", "launching")]
    if both_run_modes == "supervise":
        expected += [("launching", "running"), ("running", "terminated")]
    assert transitions == expected


def test_json_log_format_covers_configuration_errors(sandbox: Sandbox) -> None:
    """With LIFECYCLE_LOG_FORMAT=json a configuration error should still be JSON lines, one per variable."""
    env = sandbox.env(LIFECYCLE_LOG_FORMAT="json")

    result = lifecycle("executor", env=env, cwd=sandbox.cwd)

    assert result.code == 78
    errors = [str(r["message"]) for r in json_lines(result.stderr) if r["level"] == "error"]
    assert sorted(message.split(":")[0] for message in errors) == EXECUTOR_VARIABLES


def test_json_log_format_covers_usage_errors(sandbox: Sandbox) -> None:
    """With LIFECYCLE_LOG_FORMAT=json an unknown option should be reported as JSON lines too (exit 64)."""
    env = sandbox.env(LIFECYCLE_LOG_FORMAT="json")

    result = lifecycle("--bogus", "executor", env=env, cwd=sandbox.cwd)

    assert result.code == 64
    records = json_lines(result.stderr)
    assert any(r["level"] == "error" and "--bogus" in str(r.get("message")) for r in records), records


# ---- the termination message ---------------------------------------------------------------------------


BOOM = "boom 1\nboom 2: the last words\nboom 3\n"


def test_termination_message_has_exit_code_and_stderr_tail(sandbox: Sandbox, stub: Path, tmp_path: Path) -> None:
    """A failing child's exit code and last stderr lines should go to the termination log (supervise mode)."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = sandbox.env(
        LIFECYCLE_RUN_MODE="supervise",
        LIFECYCLE_TERMINATION_LOG=str(termination_log),
        RECORD_STDERR=BOOM,
        RECORD_EXIT="1",
    )

    result = lifecycle(str(stub), env=env, cwd=sandbox.cwd)

    assert result.code == 1
    message = termination_log.read_text()
    assert "exit code: 1" in message
    assert "last stderr lines:\n" + BOOM in message


def test_child_stderr_passes_through_unchanged_while_captured(sandbox: Sandbox, stub: Path, tmp_path: Path) -> None:
    """With a termination log, the child's stderr should still reach lifecycle's stderr whole and in order."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = sandbox.env(
        LIFECYCLE_RUN_MODE="supervise",
        LIFECYCLE_TERMINATION_LOG=str(termination_log),
        RECORD_STDERR=BOOM,
        RECORD_EXIT="1",
    )

    result = lifecycle(str(stub), env=env, cwd=sandbox.cwd)

    lines = result.stderr.splitlines()
    child = [line for line in lines if not line.startswith("lifecycle:")]
    assert "\n".join(child) + "\n" == BOOM
    ended = next(i for i, line in enumerate(lines) if "exit 1:" in line)
    assert lines.index("boom 3") < ended  # everything the child wrote is out before lifecycle's last word


def test_absent_termination_log_is_not_created(
    sandbox: Sandbox, stub: Path, tmp_path: Path, both_run_modes: str
) -> None:
    """A termination-log path that does not exist should stay absent: lifecycle only writes a mounted file."""
    termination_log = tmp_path / "absent" / "termination-log"
    flat = tmp_path / "termination-log-absent"
    for path in (termination_log, flat):
        env = sandbox.env(
            LIFECYCLE_RUN_MODE=both_run_modes, LIFECYCLE_TERMINATION_LOG=str(path), RECORD_STDERR=BOOM, RECORD_EXIT="1"
        )
        result = lifecycle(str(stub), env=env, cwd=sandbox.cwd)

        assert result.code == 1
        assert not path.exists()
    assert not termination_log.parent.exists()


# ---- the standalone cluster's daemons (issue #16) ----------------------------------------------------------------


@pytest.mark.parametrize(("args", "main_class"), [
    (("master",), "org.apache.spark.deploy.master.Master"),
    (("worker", "spark://m:7077", "--cores", "2"), "org.apache.spark.deploy.worker.Worker"),
])  # fmt: skip
def test_master_and_worker_run_spark_class_with_the_mode_arguments(
    sandbox: Sandbox, both_run_modes: str, args: tuple[str, ...], main_class: str
) -> None:
    """lifecycle master/worker should run $SPARK_HOME/bin/spark-class with the main class and the arguments, with
    start-*.sh's defaults in its environment."""
    install(sandbox.spark_home / "bin" / "spark-class")
    env = sandbox.env(LIFECYCLE_RUN_MODE=both_run_modes, JAVA_HOME=str(sandbox.java_home))

    result = lifecycle(*args, env=env, cwd=sandbox.cwd)

    assert result.code == 0, result.stderr
    record = read_record(sandbox.record)
    assert record["argv"] == [f"{sandbox.spark_home}/bin/spark-class", main_class, *args[1:]]
    defaults = {"SPARK_MASTER_PORT": "7077", "SPARK_MASTER_WEBUI_PORT": "8080"} if args[0] == "master" else {
        "SPARK_WORKER_WEBUI_PORT": "8081"}  # fmt: skip
    assert {name: record["env"].get(name) for name in defaults} == defaults


def test_dry_run_of_a_worker_shows_the_plan_as_json(sandbox: Sandbox) -> None:
    """lifecycle --dry-run --json worker URL should print the spark-class argv and the environment it adds."""
    env = sandbox.env(JAVA_HOME=str(sandbox.java_home))
    result = lifecycle("--dry-run", "--json", "worker", "spark://m:7077", env=env, cwd=sandbox.cwd)
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["mode"] == "worker" and plan["launched"] is False
    assert plan["argv"] == [f"{sandbox.spark_home}/bin/spark-class", "org.apache.spark.deploy.worker.Worker",
                            "spark://m:7077"]  # fmt: skip
    assert plan["env"] == {"SPARK_WORKER_WEBUI_PORT": "8081"}


def test_a_worker_without_a_master_url_exits_64(sandbox: Sandbox) -> None:
    """lifecycle worker with no spark:// URL should print one error line and the usage, and exit 64."""
    result = lifecycle("worker", env=sandbox.env(), cwd=sandbox.cwd)
    assert result.code == 64
    assert result.stderr.splitlines()[0] == (
        "lifecycle: error: worker needs the master's URL first: lifecycle worker spark://HOST:PORT")
    assert_no_traceback(result)
