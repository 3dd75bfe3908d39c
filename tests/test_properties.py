"""Property tests: for any environment, settings then plan give a plan or one-line-per-variable errors.

Each example sets its own environment inside `mock.patch.dict(os.environ, clear=True)`; the autouse clean_env
fixture (function-scoped, hence the suppressed health check) only guarantees the test starts and ends clean.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.errors import ConfigError
from lifecycle.launch import plan
from lifecycle.launch import settings as lifecycle_settings
from tests.helpers.inputs import EXECUTOR_ENV, KNOB_NAMES, SPARK_NAMES, VALUES

ALL_NAMES = SPARK_NAMES + KNOB_NAMES
MODES = ["executor", "driver", "pass-through"]
EXECUTOR_CLASS = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
FLAGS = ["--driver-url", "--executor-id", "--cores", "--app-id", "--hostname", "--resourceProfileId", "--podName"]
FLAG_VARIABLES = [
    "SPARK_DRIVER_URL",
    "SPARK_EXECUTOR_ID",
    "SPARK_EXECUTOR_CORES",
    "SPARK_APPLICATION_ID",
    "SPARK_EXECUTOR_POD_IP",
    "SPARK_RESOURCE_PROFILE_ID",
    "SPARK_EXECUTOR_POD_NAME",
]

FACTS = st.builds(
    plan.Facts,
    cwd=st.sampled_from(["/opt/spark/work-dir", "/", "/data/my work"]),
    java_home=st.sampled_from(["/opt/java/openjdk", "/opt/my jdk"]),
    dist_classpath=st.none() | VALUES,
    env_additions=st.just({}),
)
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def environments(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """Environments over `names` with arbitrary values, half of them on top of a valid executor environment."""
    drawn = st.dictionaries(st.sampled_from(names), VALUES, max_size=12)
    return st.tuples(st.booleans(), drawn).map(lambda pair: {**(EXECUTOR_ENV if pair[0] else {}), **pair[1]})


def plan_or_error(mode: str, env: dict[str, str], facts: plan.Facts) -> plan.LaunchPlan | ConfigError:
    """What lifecycle makes of `env` in `mode`: a plan, or the ConfigError (any other exception propagates)."""
    with mock.patch.dict(os.environ, env, clear=True):
        try:
            _, spark, executor = lifecycle_settings.load_all(mode)
        except ConfigError as exc:
            return exc
    plan_mode = plan.PASSTHROUGH if mode == "pass-through" else mode
    return plan.build_plan(plan_mode, ("--class", "Main"), env, spark, executor, facts)


def assert_lines_name_variables(error: ConfigError, names: list[str]) -> None:
    """Every line of the error, as shown and as listed, is `VARIABLE: reason` for a variable we may have set."""
    assert error.problems
    assert str(error).splitlines() == error.problems
    for line in error.problems:
        name, sep, reason = line.partition(": ")
        assert sep and reason, line
        assert name in names, line


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(env=environments(ALL_NAMES), facts=FACTS)
def test_any_environment_gives_a_plan_or_one_line_per_variable(
    mode: str, env: dict[str, str], facts: plan.Facts
) -> None:
    """lifecycle should turn any environment into a plan or a ConfigError of `VARIABLE: reason` lines, nothing else."""
    result = plan_or_error(mode, env, facts)
    if isinstance(result, ConfigError):
        assert_lines_name_variables(result, ALL_NAMES)
    else:
        assert isinstance(result, plan.LaunchPlan)


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(env=environments(SPARK_NAMES), facts=FACTS)
def test_any_spark_environment_gives_a_plan_or_one_line_per_variable(
    mode: str, env: dict[str, str], facts: plan.Facts
) -> None:
    """lifecycle should turn any Spark-variable environment (no knobs set) into a plan or `VARIABLE: reason` lines."""
    result = plan_or_error(mode, env, facts)
    if isinstance(result, ConfigError):
        assert_lines_name_variables(result, SPARK_NAMES)
    else:
        assert isinstance(result, plan.LaunchPlan)


@pytest.mark.parametrize("name", KNOB_NAMES)
@PROPERTY
@given(value=VALUES)
def test_any_knob_value_is_accepted_or_refused_in_one_line(name: str, value: str) -> None:
    """lifecycle should accept any value of a LIFECYCLE_* knob or refuse it with exactly one line naming it."""
    result = plan_or_error("pass-through", {name: value}, plan.Facts(cwd="/"))
    if isinstance(result, ConfigError):
        assert len(result.problems) == 1
        assert result.problems[0].startswith(f"{name}: ")


@pytest.mark.parametrize("mode", ["executor", "driver"])
@PROPERTY
@given(env=environments(SPARK_NAMES), facts=FACTS)
def test_spark_modes_plan_only_with_spark_home_and_use_it(mode: str, env: dict[str, str], facts: plan.Facts) -> None:
    """lifecycle should build a driver or executor plan only when SPARK_HOME is set, and then from that directory."""
    result = plan_or_error(mode, env, facts)
    if "SPARK_HOME" not in env:
        assert isinstance(result, ConfigError)
        spark_env_failed = any(line.startswith(("SPARK_HOME: ", "SPARK_USER_NAME: ")) for line in result.problems)
        missing = f"SPARK_HOME: required in {mode} mode but not set (expected the Spark directory)"
        assert spark_env_failed or missing in result.problems
    elif isinstance(result, plan.LaunchPlan) and mode == "driver":
        assert result.argv[0] == f"{env['SPARK_HOME']}/bin/spark-submit"
    elif isinstance(result, plan.LaunchPlan):
        assert f"{env['SPARK_HOME']}/jars/*" in [entry.value for entry in result.classpath]


@PROPERTY
@given(env=environments(SPARK_NAMES), facts=FACTS)
def test_executor_argv_keeps_the_fixed_skeleton(env: dict[str, str], facts: plan.Facts) -> None:
    """lifecycle should always give the executor java, options, -Xms/-Xmx, -cp CLASSPATH, the main class and 7 flags."""
    result = plan_or_error("executor", env, facts)
    if isinstance(result, ConfigError):
        return
    argv = list(result.argv)
    assert argv[0] == f"{facts.java_home}/bin/java"
    assert argv.count(EXECUTOR_CLASS) == 1
    main = argv.index(EXECUTOR_CLASS)
    memory = env["SPARK_EXECUTOR_MEMORY"].strip()
    classpath = ":".join(entry.value for entry in result.classpath)
    assert argv[main - 4 : main] == [f"-Xms{memory}", f"-Xmx{memory}", "-cp", classpath]
    assert argv[main + 1 :: 2] == FLAGS
    numbers = ("SPARK_EXECUTOR_CORES", "SPARK_RESOURCE_PROFILE_ID")  # read as integers, so 01 is passed as 1
    assert argv[main + 2 :: 2] == [
        str(int(env[name])) if name in numbers else env[name].strip() for name in FLAG_VARIABLES
    ]
    options = [value for name, value in sorted_java_opts(env) if value != ""]
    assert argv[1 : main - 4] == options


def sorted_java_opts(env: dict[str, str]) -> list[tuple[str, str]]:
    """SPARK_JAVA_OPT_<digits> entries ordered by number, then by name (restated from upstream-behaviour §1.5)."""
    found = [(name, value) for name, value in env.items() if name.startswith("SPARK_JAVA_OPT_")]
    numbered = [(name, value) for name, value in found if name.removeprefix("SPARK_JAVA_OPT_").isdecimal()]
    return sorted(numbered, key=lambda item: (int(item[0].removeprefix("SPARK_JAVA_OPT_")), item[0]))


@PROPERTY
@given(env=environments(SPARK_NAMES), facts=FACTS)
def test_executor_classpath_keeps_upstream_order(env: dict[str, str], facts: plan.Facts) -> None:
    """lifecycle should always lay out -cp in upstream's order: conf dirs, classpath, jars, extra, cwd, dist."""
    result = plan_or_error("executor", env, facts)
    if isinstance(result, ConfigError):
        return
    order = [
        "SPARK_CONF_DIR",
        "$SPARK_HOME/conf",
        "HADOOP_CONF_DIR",
        "SPARK_CLASSPATH",
        "$SPARK_HOME/jars/*",
        "SPARK_EXTRA_CLASSPATH",
        "$PWD (SPARK-43540)",
    ]
    sources = [entry.source for entry in result.classpath]
    assert sources[:-1] == [source for source in order if source in sources[:-1]]
    assert sources[-1] in ("SPARK_DIST_CLASSPATH", "hadoop classpath")
    assert ("SPARK_CONF_DIR" in sources) == ("SPARK_CONF_DIR" in env)
    assert ("HADOOP_CONF_DIR" in sources) == ("HADOOP_CONF_DIR" in env)
    assert ("SPARK_EXTRA_CLASSPATH" in sources) == bool(env.get("SPARK_EXTRA_CLASSPATH"))
    assert result.classpath[-2].value == facts.cwd
    expected_dist = facts.dist_classpath if facts.dist_classpath is not None else env.get("SPARK_DIST_CLASSPATH", "")
    assert result.classpath[-1].value == expected_dist
