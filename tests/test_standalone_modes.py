"""`lifecycle master` and `lifecycle worker MASTER_URL`: argv, their typed settings and their launch plans.

Pure: parse_args, the settings models (from an empty environment, conftest.clean_env) and plan.build_plan. The
processes themselves (the real Master and Worker JVMs) are tests/integration/test_standalone_e2e.py's.
"""

from __future__ import annotations

import pytest

from lifecycle.errors import EX_CONFIG, EX_USAGE, ConfigError, LifecycleError
from lifecycle.launch import plan, settings
from lifecycle.launch.cli import parse_args
from lifecycle.launch.invocation import Invocation
from tests.helpers.inputs import SetEnv

SPARK_HOME = "/opt/spark"
SPLIT = "(upstream would split it into several arguments)"
FACTS = plan.Facts("/opt/spark/work-dir", "/usr/lib/jvm/java-21", "JAVA_HOME", None, {}, "master-0.cluster.local")


def build(mode: str, args: tuple[str, ...], env: dict[str, str]) -> plan.LaunchPlan:
    """The plan for `mode` from exactly `env` (validated as the start-up stage validates it)."""
    _, spark, mode_env = settings.load_all(mode)
    return plan.build_plan(mode, args, env, spark, mode_env, FACTS)


@pytest.mark.parametrize("mode", ["master", "worker"])
def test_master_and_worker_are_modes(mode: str) -> None:
    """lifecycle should read `master` and `worker` as modes, with the rest of argv as their arguments."""
    args = ("spark://m:7077", "--cores", "2") if mode == "worker" else ("--properties-file", "p.conf")
    assert parse_args([mode, *args]) == Invocation(mode, args)


@pytest.mark.parametrize("name", ["master", "worker"])
def test_a_command_named_master_or_worker_runs_as_given_after_double_dash(name: str) -> None:
    """lifecycle should run a pass-through command literally named master or worker when `--` comes first."""
    assert parse_args(["--", name, "x"]) == Invocation("pass-through", (name, "x"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker"], "worker needs the master's URL first: lifecycle worker spark://HOST:PORT"),
        (["worker", "--cores", "2"], "worker: expected the master's URL first, like spark://HOST:PORT, got '--cores'"),
        (["worker", "http://m:7077"], "worker: expected the master's URL first, like spark://HOST:PORT, got "),
        (["worker", "spark://m"], "got 'spark://m'"),
        (["worker", "spark://m:port"], "got 'spark://m:port'"),
    ],
)
def test_worker_without_a_master_url_is_a_usage_error(argv: list[str], message: str) -> None:
    """lifecycle should refuse `worker` without a spark://HOST:PORT first, exit 64, naming what it got."""
    with pytest.raises(LifecycleError) as caught:
        parse_args(argv)
    assert caught.value.exit_code == EX_USAGE
    assert message in caught.value.message


def test_worker_accepts_standby_masters() -> None:
    """lifecycle should accept several masters (standby, ZooKeeper recovery): spark://h1:7077,h2:7077."""
    assert parse_args(["worker", "spark://m-0:7077,m-1:7077"]).mode == "worker"  # type: ignore[union-attr]


def test_master_plan_is_spark_class_with_start_master_defaults_in_the_environment(set_env: SetEnv) -> None:
    """lifecycle master should run spark-class Master with start-master.sh's defaults as environment defaults
    (SPARK_MASTER_HOST from `hostname -f`, port 7077, web UI 8080) and JAVA_HOME as it resolved it."""
    env = {"SPARK_HOME": SPARK_HOME, "PATH": "/usr/bin"}
    set_env(env)
    launch = build("master", ("--properties-file", "p.conf"), env)
    assert launch.argv == (f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.master.Master",
                           "--properties-file", "p.conf")  # fmt: skip
    assert {name: launch.env[name] for name in launch.changed} == {
        "SPARK_MASTER_HOST": "master-0.cluster.local",
        "SPARK_MASTER_PORT": "7077",
        "SPARK_MASTER_WEBUI_PORT": "8080",
        "JAVA_HOME": "/usr/lib/jvm/java-21",
    }


def test_master_variables_that_are_set_are_kept(set_env: SetEnv) -> None:
    """lifecycle master should leave SPARK_MASTER_* that are set as they are (spark-env.sh may still change them)."""
    env = {"SPARK_HOME": SPARK_HOME, "SPARK_MASTER_HOST": "0.0.0.0", "SPARK_MASTER_PORT": "7177",
           "SPARK_MASTER_WEBUI_PORT": "0", "JAVA_HOME": "/opt/java"}  # fmt: skip
    set_env(env)
    launch = build("master", (), env)
    assert launch.changed == ()
    assert launch.env["SPARK_MASTER_PORT"] == "7177"


def test_worker_plan_is_spark_class_worker_with_the_master_url(set_env: SetEnv) -> None:
    """lifecycle worker should run spark-class Worker MASTER_URL ARGS…, the web UI port defaulting to 8081."""
    env = {"SPARK_HOME": SPARK_HOME, "SPARK_WORKER_CORES": "4", "SPARK_WORKER_MEMORY": "8g",
           "SPARK_WORKER_DIR": "/data/work", "SPARK_DAEMON_MEMORY": "1g", "JAVA_HOME": "/opt/java"}  # fmt: skip
    set_env(env)
    launch = build("worker", ("spark://m:7077", "--host", "w-0"), env)
    assert launch.argv == (f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.worker.Worker",
                           "spark://m:7077", "--host", "w-0")  # fmt: skip
    assert launch.changed == ("SPARK_WORKER_WEBUI_PORT",)
    assert launch.env["SPARK_WORKER_WEBUI_PORT"] == "8081"
    assert launch.env["SPARK_WORKER_CORES"] == "4"


@pytest.mark.parametrize(
    ("mode", "name", "value", "line"),
    [
        ("master", "SPARK_MASTER_PORT", "70777", "expected a port number 0-65535 (0: any free port), got '70777'"),
        ("master", "SPARK_MASTER_WEBUI_PORT", "http", "expected a port number 0-65535 (0: any free port), got 'http'"),
        ("master", "SPARK_MASTER_HOST", "a b", f"expected a single word, got 'a b' {SPLIT}"),
        ("master", "SPARK_DAEMON_MEMORY", "1 g", f"expected a single word, got '1 g' {SPLIT}"),
        ("worker", "SPARK_DAEMON_MEMORY", "lots", "expected a JVM size > 0 like 512m, 4g or 1024, got 'lots'"),
        ("worker", "SPARK_WORKER_PORT", "-1", "expected a port number 0-65535 (0: any free port), got '-1'"),
        ("worker", "SPARK_WORKER_CORES", "0", "expected an integer >= 1, got '0'"),
        ("worker", "SPARK_WORKER_MEMORY", "1x", "expected a memory size > 0 like 1g, 512m or 2048m, got '1x'"),
        ("worker", "SPARK_WORKER_MEMORY", "0g", "expected a memory size > 0 like 1g, 512m or 2048m, got '0g'"),
        ("worker", "SPARK_WORKER_INSTANCES", "2",
         "one Worker per container: expected 1 or empty (start more containers instead), got '2'"),
    ],
)  # fmt: skip
def test_a_bad_standalone_variable_is_one_line_and_exit_78(
    set_env: SetEnv, mode: str, name: str, value: str, line: str
) -> None:
    """lifecycle should report each bad SPARK_MASTER_*/SPARK_WORKER_*/SPARK_DAEMON_* value as one line, exit 78."""
    set_env({"SPARK_HOME": SPARK_HOME, name: value})
    with pytest.raises(ConfigError) as caught:
        settings.load_all(mode)
    assert caught.value.exit_code == EX_CONFIG
    assert caught.value.problems == [f"{name}: {line}"]


@pytest.mark.parametrize("mode", ["master", "worker"])
def test_standalone_modes_need_spark_home(set_env: SetEnv, mode: str) -> None:
    """lifecycle master/worker should need SPARK_HOME (spark-class lives there): one line, exit 78."""
    set_env({})
    with pytest.raises(ConfigError) as caught:
        settings.load_all(mode)
    assert caught.value.problems == [
        f"SPARK_HOME: required in {mode} mode but not set (expected the Spark directory)"
    ]


def test_valid_worker_settings_are_typed(set_env: SetEnv) -> None:
    """lifecycle should read the worker's variables as typed values (ports and cores as integers)."""
    set_env({"SPARK_HOME": SPARK_HOME, "SPARK_WORKER_PORT": "7078", "SPARK_WORKER_WEBUI_PORT": "8081",
             "SPARK_WORKER_CORES": "8", "SPARK_WORKER_MEMORY": "30g", "SPARK_WORKER_INSTANCES": "1"})  # fmt: skip
    _, _, worker = settings.load_all("worker")
    assert isinstance(worker, settings.WorkerEnv)
    assert (worker.port, worker.webui_port, worker.cores, worker.memory, worker.instances) == (7078, 8081, 8, "30g", 1)


def test_the_masters_host_default_is_what_hostname_f_prints() -> None:
    """lifecycle should default SPARK_MASTER_HOST to `hostname -f`'s answer, as start-master.sh does."""
    import shutil
    import subprocess

    from lifecycle.launch.resolve import host_fqdn

    hostname = shutil.which("hostname")
    if hostname is None:
        pytest.skip("no hostname command")
    printed = subprocess.run([hostname, "-f"], capture_output=True, text=True, timeout=30, check=False)
    if printed.returncode != 0:
        pytest.skip(f"hostname -f fails here: {printed.stderr.strip()}")
    assert host_fqdn() == printed.stdout.strip()
