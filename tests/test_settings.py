"""Settings: the Spark-on-Kubernetes environment contract and the LIFECYCLE_* knobs, read from os.environ.

Every test starts from an empty environment (conftest.clean_env) and sets exactly what it needs. Errors are
checked twice: structurally (ConfigError.problems, or ValidationError.errors()) and as the exact text lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle import knobs
from lifecycle.errors import EX_CONFIG, ConfigError
from lifecycle.launch import settings
from tests.helpers.inputs import KNOB_NAMES, VALUES, SetEnv

EXECUTOR_ENV = {
    "SPARK_HOME": "/opt/spark",
    "SPARK_EXECUTOR_MEMORY": "1024m",
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@spark-pi-driver-svc.default.svc:7078",
    "SPARK_EXECUTOR_ID": "3",
    "SPARK_EXECUTOR_CORES": "2",
    "SPARK_APPLICATION_ID": "spark-6b1a2c3d4e5f",
    "SPARK_EXECUTOR_POD_IP": "10.244.1.17",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_NAME": "spark-pi-exec-3",
}
EXECUTOR_VARIABLES = [name for name in EXECUTOR_ENV if name != "SPARK_HOME"]
SPLIT_VALUES = {
    "SPARK_EXECUTOR_MEMORY": "4 g",
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver:7078 extra",
    "SPARK_EXECUTOR_ID": "3 4",
    "SPARK_EXECUTOR_CORES": "1\t2",
    "SPARK_APPLICATION_ID": "spark app",
    "SPARK_EXECUTOR_POD_IP": "10.0.0.1\n10.0.0.2",
    "SPARK_RESOURCE_PROFILE_ID": "0 1",
    "SPARK_EXECUTOR_POD_NAME": "exec 3",
}
EMPTY_LINE = "expected a non-empty value, got an empty one (upstream would drop the argument)"
SET_OR_UNSET = [
    ("PYSPARK_PYTHON", "pyspark_python"),
    ("PYSPARK_DRIVER_PYTHON", "pyspark_driver_python"),
    ("HADOOP_CONF_DIR", "hadoop_conf_dir"),
    ("SPARK_CONF_DIR", "spark_conf_dir"),
]
DURATION_HELP = "expected a duration like 30, 2.5s, 500ms or 2m"
# Each example sets its own environment (knob_outcome); clean_env, function-scoped, only keeps the test clean.
PROPERTY = hypothesis_settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BAD_KNOBS = [
    (knobs.RUN_MODE, "fork", "expected one of supervise, exec, got 'fork'"),
    (knobs.LOG_FORMAT, "xml", "expected one of text, json, got 'xml'"),
    (knobs.LOG_LEVEL, "trace", "expected one of debug, info, warning, error, got 'trace'"),
    (knobs.DECOMMISSION_SIGNAL, "KILL", "SIGKILL cannot be caught, so it cannot drain anything; got 'KILL'"),
    (
        knobs.DECOMMISSION_TRIGGER,
        "FOO",
        "expected a signal name like PWR, TERM or USR1, or a number, got 'FOO'",
    ),
    (knobs.DECOMMISSION_TIMEOUT, "0", "expected a duration > 0, got '0'"),
    (knobs.KILL_GRACE, "abc", f"{DURATION_HELP}, got 'abc'"),
    (knobs.SIGNAL_GROUP, "yes", "expected 1, 0, true or false, got 'yes'"),
    (knobs.EXIT_REMAP, "143", "expected FROM:TO pairs separated by commas, like 143:0, got '143'"),
    (knobs.ORPHAN_GRACE, "-1", f"{DURATION_HELP}, got '-1'"),
    (knobs.HOOK_GRACE, "5h", f"{DURATION_HELP}, got '5h'"),
]


def config_error(mode: str) -> ConfigError:
    """The ConfigError that load_all(mode) raises for the current environment."""
    with pytest.raises(ConfigError) as caught:
        settings.load_all(mode)
    assert caught.value.exit_code == EX_CONFIG
    return caught.value


def assert_problems(error: ConfigError, lines: list[str]) -> None:
    """The problems list, and the text the user sees, are exactly these lines."""
    assert error.problems == lines
    assert str(error).splitlines() == lines


# --- the executor contract -------------------------------------------------------------------------------------


def test_executor_settings_load_every_scheduler_variable(set_env: SetEnv) -> None:
    """lifecycle should read each executor variable from its exact upstream name and type it."""
    set_env(EXECUTOR_ENV)
    runtime, spark, executor = settings.load_all("executor")
    assert executor is not None
    assert executor.model_dump() == {
        "executor_memory": "1024m",
        "driver_url": "spark://CoarseGrainedScheduler@spark-pi-driver-svc.default.svc:7078",
        "executor_id": "3",
        "cores": 2,
        "app_id": "spark-6b1a2c3d4e5f",
        "pod_ip": "10.244.1.17",
        "resource_profile_id": 0,
        "pod_name": "spark-pi-exec-3",
    }
    assert spark.spark_home == "/opt/spark"
    assert runtime.to_knobs() == knobs.Knobs()


@pytest.mark.parametrize("name", EXECUTOR_VARIABLES)
def test_executor_variable_when_missing_is_named_as_required(set_env: SetEnv, name: str) -> None:
    """lifecycle should refuse executor mode with one line naming a missing scheduler variable."""
    set_env({key: value for key, value in EXECUTOR_ENV.items() if key != name})
    assert_problems(config_error("executor"), [f"{name}: required in executor mode but not set"])


@pytest.mark.parametrize("name", EXECUTOR_VARIABLES)
def test_executor_variable_when_empty_is_refused(set_env: SetEnv, name: str) -> None:
    """lifecycle should refuse an empty executor variable, which upstream would silently drop from argv."""
    set_env(EXECUTOR_ENV, **{name: ""})
    assert_problems(config_error("executor"), [f"{name}: {EMPTY_LINE}"])


@pytest.mark.parametrize("name", EXECUTOR_VARIABLES)
def test_executor_variable_when_blank_is_refused_as_empty(set_env: SetEnv, name: str) -> None:
    """lifecycle should treat an executor variable holding only blanks as empty."""
    set_env(EXECUTOR_ENV, **{name: " \t "})
    assert_problems(config_error("executor"), [f"{name}: {EMPTY_LINE}"])


@pytest.mark.parametrize("name", EXECUTOR_VARIABLES)
def test_executor_variable_when_it_would_split_is_refused(set_env: SetEnv, name: str) -> None:
    """lifecycle should refuse an executor value with inner blanks, which upstream would split into arguments."""
    value = SPLIT_VALUES[name]
    set_env(EXECUTOR_ENV, **{name: value})
    expected = f"{name}: expected a single word, got {value!r} (upstream would split it into several arguments)"
    assert_problems(config_error("executor"), [expected])


def test_executor_words_have_surrounding_blanks_dropped(set_env: SetEnv) -> None:
    """lifecycle should drop blanks around executor words, as upstream's unquoted expansion does."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_ID=" 7\n", SPARK_EXECUTOR_CORES="\t4 ", SPARK_EXECUTOR_MEMORY=" 2g ")
    _, _, executor = settings.load_all("executor")
    assert executor is not None
    assert (executor.executor_id, executor.cores, executor.executor_memory) == ("7", 4, "2g")


@pytest.mark.parametrize("value", ["512m", "4g", "1024", "2G", "64k", "1t", "1M"])
def test_executor_memory_when_a_jvm_size_is_accepted(set_env: SetEnv, value: str) -> None:
    """lifecycle should accept SPARK_EXECUTOR_MEMORY as any JVM size the -Xmx flag takes."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_MEMORY=value)
    _, _, executor = settings.load_all("executor")
    assert executor is not None
    assert executor.executor_memory == value


@pytest.mark.parametrize("value", ["0", "0m", "abc", "4gb", "1.5g", "-1g", "g"])
def test_executor_memory_when_not_a_jvm_size_is_refused(set_env: SetEnv, value: str) -> None:
    """lifecycle should refuse a SPARK_EXECUTOR_MEMORY the JVM would reject, with one line naming it."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_MEMORY=value)
    expected = f"SPARK_EXECUTOR_MEMORY: expected a JVM size > 0 like 512m, 4g or 1024, got {value!r}"
    assert_problems(config_error("executor"), [expected])


@pytest.mark.parametrize(("value", "cores"), [("1", 1), ("16", 16), ("007", 7)])
def test_executor_cores_when_a_positive_integer_is_accepted(set_env: SetEnv, value: str, cores: int) -> None:
    """lifecycle should accept SPARK_EXECUTOR_CORES as a positive integer."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_CORES=value)
    _, _, executor = settings.load_all("executor")
    assert executor is not None
    assert executor.cores == cores


@pytest.mark.parametrize("value", ["0", "-1", "+4", "1.5", "abc", "0x10"])
def test_executor_cores_when_not_a_positive_integer_is_refused(set_env: SetEnv, value: str) -> None:
    """lifecycle should refuse a SPARK_EXECUTOR_CORES that is not an integer >= 1."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_CORES=value)
    assert_problems(config_error("executor"), [f"SPARK_EXECUTOR_CORES: expected an integer >= 1, got {value!r}"])


@pytest.mark.parametrize(("value", "profile"), [("0", 0), ("1", 1), ("42", 42)])
def test_resource_profile_id_when_a_non_negative_integer_is_accepted(set_env: SetEnv, value: str, profile: int) -> None:
    """lifecycle should accept SPARK_RESOURCE_PROFILE_ID as an integer >= 0 (0 is the default profile)."""
    set_env(EXECUTOR_ENV, SPARK_RESOURCE_PROFILE_ID=value)
    _, _, executor = settings.load_all("executor")
    assert executor is not None
    assert executor.resource_profile_id == profile


@pytest.mark.parametrize("value", ["-1", "1.0", "default", "+1"])
def test_resource_profile_id_when_not_a_non_negative_integer_is_refused(set_env: SetEnv, value: str) -> None:
    """lifecycle should refuse a SPARK_RESOURCE_PROFILE_ID that the executor's .toInt would choke on or that is < 0."""
    set_env(EXECUTOR_ENV, SPARK_RESOURCE_PROFILE_ID=value)
    expected = f"SPARK_RESOURCE_PROFILE_ID: expected an integer >= 0, got {value!r}"
    assert_problems(config_error("executor"), [expected])


@pytest.mark.parametrize("value", ["http://driver:7078", "driver:7078", "SPARK://driver:7078", "spark:/driver"])
def test_driver_url_when_not_a_spark_url_is_refused(set_env: SetEnv, value: str) -> None:
    """lifecycle should refuse a SPARK_DRIVER_URL that does not start with spark://."""
    set_env(EXECUTOR_ENV, SPARK_DRIVER_URL=value)
    expected = f"SPARK_DRIVER_URL: expected a URL like spark://CoarseGrainedScheduler@HOST:PORT, got {value!r}"
    assert_problems(config_error("executor"), [expected])


def test_executor_errors_name_the_variable_as_the_validation_location(set_env: SetEnv) -> None:
    """lifecycle should report ExecutorEnv errors at the location of the upstream variable name itself."""
    set_env(SPARK_EXECUTOR_CORES="0", SPARK_DRIVER_URL="http://x")
    with pytest.raises(ValidationError) as caught:
        settings.ExecutorEnv()
    errors = caught.value.errors(include_url=False, include_input=False)
    assert [(err["loc"], err["type"]) for err in errors] == [
        (("SPARK_EXECUTOR_MEMORY",), "missing"),
        (("SPARK_DRIVER_URL",), "value_error"),
        (("SPARK_EXECUTOR_ID",), "missing"),
        (("SPARK_EXECUTOR_CORES",), "value_error"),
        (("SPARK_APPLICATION_ID",), "missing"),
        (("SPARK_EXECUTOR_POD_IP",), "missing"),
        (("SPARK_RESOURCE_PROFILE_ID",), "missing"),
        (("SPARK_EXECUTOR_POD_NAME",), "missing"),
    ]


def test_executor_problems_are_all_reported_one_line_each_in_field_order(set_env: SetEnv) -> None:
    """lifecycle should report every bad executor variable at once, one line each."""
    set_env(EXECUTOR_ENV, SPARK_EXECUTOR_MEMORY="4gb", SPARK_EXECUTOR_CORES="0", SPARK_EXECUTOR_POD_NAME="")
    del os.environ["SPARK_EXECUTOR_ID"]
    assert_problems(
        config_error("executor"),
        [
            "SPARK_EXECUTOR_MEMORY: expected a JVM size > 0 like 512m, 4g or 1024, got '4gb'",
            "SPARK_EXECUTOR_ID: required in executor mode but not set",
            "SPARK_EXECUTOR_CORES: expected an integer >= 1, got '0'",
            f"SPARK_EXECUTOR_POD_NAME: {EMPTY_LINE}",
        ],
    )


@pytest.mark.parametrize("mode", ["driver", "pass-through"])
def test_executor_variables_when_not_executor_mode_are_not_required(set_env: SetEnv, mode: str) -> None:
    """lifecycle should neither require nor load the executor contract outside executor mode."""
    set_env(SPARK_HOME="/opt/spark", SPARK_EXECUTOR_CORES="not a number")
    _, _, executor = settings.load_all(mode)
    assert executor is None


# --- the common Spark contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["driver", "executor"])
def test_spark_home_when_unset_is_required_in_spark_modes(set_env: SetEnv, mode: str) -> None:
    """lifecycle should refuse driver and executor mode without SPARK_HOME, naming the variable."""
    set_env({key: value for key, value in EXECUTOR_ENV.items() if key != "SPARK_HOME"})
    assert_problems(
        config_error(mode),
        [f"SPARK_HOME: required in {mode} mode but not set (expected the Spark directory)"],
    )


def test_spark_home_when_unset_in_pass_through_stays_unset() -> None:
    """lifecycle should leave SPARK_HOME unset (None) in pass-through mode, never the text 'None'."""
    _, spark, _ = settings.load_all("pass-through")
    assert spark.spark_home is None


@pytest.mark.parametrize(("value", "why"), [("", "expected a directory, got an empty value"), (
    "/opt/spark:/x", "must not contain ':' or a newline (it goes into a passwd entry), got '/opt/spark:/x'"
)])  # fmt: skip
def test_spark_home_when_empty_or_with_a_colon_is_refused(set_env: SetEnv, value: str, why: str) -> None:
    """lifecycle should refuse a SPARK_HOME that cannot be a passwd home directory."""
    set_env(SPARK_HOME=value)
    assert_problems(config_error("pass-through"), [f"SPARK_HOME: {why}"])


@pytest.mark.parametrize(("name", "attr"), SET_OR_UNSET)
def test_set_but_empty_variable_is_kept_apart_from_unset(set_env: SetEnv, name: str, attr: str) -> None:
    """lifecycle should keep an empty value ('') apart from an unset one (None), as upstream's ${VAR+x} does."""
    assert getattr(settings.SparkEnv(), attr) is None
    set_env({name: ""})
    assert getattr(settings.SparkEnv(), attr) == ""
    set_env({name: "/some/value"})
    assert getattr(settings.SparkEnv(), attr) == "/some/value"


def test_spark_user_name_when_unset_stays_unset() -> None:
    """lifecycle should leave SPARK_USER_NAME unset (None) when it is not in the environment, never 'None'."""
    assert settings.SparkEnv().spark_user_name is None


@pytest.mark.parametrize("value", ["", "spark", "Jane Doe"])
def test_spark_user_name_when_a_gecos_field_is_accepted(set_env: SetEnv, value: str) -> None:
    """lifecycle should accept any SPARK_USER_NAME that fits in a passwd GECOS field, empty included."""
    set_env(SPARK_USER_NAME=value)
    assert settings.SparkEnv().spark_user_name == value


@pytest.mark.parametrize("value", ["jane:doe", ":", "jane\ndoe"])
def test_spark_user_name_with_a_colon_or_newline_is_refused(set_env: SetEnv, value: str) -> None:
    """lifecycle should refuse a SPARK_USER_NAME that would break the passwd line."""
    set_env(SPARK_USER_NAME=value)
    expected = f"SPARK_USER_NAME: must not contain ':' or a newline (it goes into a passwd entry), got {value!r}"
    assert_problems(config_error("pass-through"), [expected])


# --- SPARK_JAVA_OPT_<n> --------------------------------------------------------------------------------------


def test_java_opts_are_ordered_numerically_with_twelve_or_more(set_env: SetEnv) -> None:
    """lifecycle should order SPARK_JAVA_OPT_<n> by n as a number (SPARK-23449), not as text, whatever the env order."""
    for index in (10, 2, 12, 0, 7, 1, 11, 3, 9, 5, 13, 4, 8, 6):
        set_env({f"SPARK_JAVA_OPT_{index}": f"-Dopt.{index}=v{index}"})
    assert [name for name, _ in settings.SparkEnv().java_opts] == [f"SPARK_JAVA_OPT_{i}" for i in range(14)]
    assert [value for _, value in settings.SparkEnv().java_opts] == [f"-Dopt.{i}=v{i}" for i in range(14)]


def test_java_opts_are_selected_by_exact_prefix_and_digits(set_env: SetEnv) -> None:
    """lifecycle should collect only SPARK_JAVA_OPT_<digits>, not upstream's substring matches."""
    set_env(
        SPARK_JAVA_OPT_1="-Dkept=1",
        MY_SPARK_JAVA_OPT_7="-Dforeign=7",
        SPARK_JAVA_OPT_FOO="-Dfoo=1",
        SPARK_JAVA_OPT_="-Dnothing=1",
        SPARK_JAVA_OPT_2a="-Dsuffix=1",
        spark_java_opt_3="-Dlower=1",
        SPARK_JAVA_OPTS="-Dplural=1",
        OTHER="mentions SPARK_JAVA_OPT_4=-Dvalue",
    )
    assert settings.SparkEnv().java_opts == (("SPARK_JAVA_OPT_1", "-Dkept=1"),)


def test_java_opts_with_gaps_and_leading_zeros_sort_by_number(set_env: SetEnv) -> None:
    """lifecycle should ignore gaps, read 09 as 9 and break ties between equal numbers by name."""
    set_env(SPARK_JAVA_OPT_20="-Dd", SPARK_JAVA_OPT_09="-Db", SPARK_JAVA_OPT_3="-Da", SPARK_JAVA_OPT_10="-Dc")
    set_env(SPARK_JAVA_OPT_1="-Dy", SPARK_JAVA_OPT_01="-Dx")
    assert settings.SparkEnv().java_opts == (
        ("SPARK_JAVA_OPT_01", "-Dx"),
        ("SPARK_JAVA_OPT_1", "-Dy"),
        ("SPARK_JAVA_OPT_3", "-Da"),
        ("SPARK_JAVA_OPT_09", "-Db"),
        ("SPARK_JAVA_OPT_10", "-Dc"),
        ("SPARK_JAVA_OPT_20", "-Dd"),
    )


@pytest.mark.parametrize(
    "value",
    [
        '-Dspark.app.name=my "quoted" app',
        "-Dx=a b  c",
        "-Dmulti=line one\nline two",
        "-Dsingle='q'",
        "",
        " ",
        "-Dcontains=SPARK_JAVA_OPT_9=x",
    ],
)
def test_java_opt_values_are_kept_whole(set_env: SetEnv, value: str) -> None:
    """lifecycle should keep a java option's value whole: spaces, quotes, newlines and emptiness included."""
    set_env(SPARK_JAVA_OPT_0=value)
    assert settings.SparkEnv().java_opts == (("SPARK_JAVA_OPT_0", value),)


@pytest.mark.parametrize("name", ["java_opts", "spark_home", "exit_remap", "JAVA_OPTS", "SPARK_JAVA_OPTS"])
@pytest.mark.parametrize("value", ["x y", '[["SPARK_JAVA_OPT_0", "-Dinjected"]]'])
def test_unrelated_variables_are_ignored(set_env: SetEnv, name: str, value: str) -> None:
    """lifecycle should ignore variables that are not part of the contract, such as lower-case field names."""
    set_env({name: value})
    runtime, spark, _ = settings.load_all("pass-through")
    assert spark.java_opts == ()
    assert spark.spark_home is None
    assert runtime.to_knobs() == knobs.Knobs()


def test_java_opts_when_none_are_set_are_empty() -> None:
    """lifecycle should collect no java options from an environment without SPARK_JAVA_OPT_<n>."""
    assert settings.SparkEnv().java_opts == ()


# --- the LIFECYCLE_* knobs -----------------------------------------------------------------------------------


def knob_outcome(env: dict[str, str], validate: Callable[[], knobs.Knobs]) -> knobs.Knobs | list[str]:
    """The Knobs `validate` makes of exactly `env`, or the problem lines of its ConfigError."""
    with mock.patch.dict(os.environ, env, clear=True):
        try:
            return validate()
        except ConfigError as exc:
            return exc.problems


def through_the_model() -> knobs.Knobs:
    runtime: settings.KnobSettings = settings.load(settings.RuntimeSettings)
    return runtime.to_knobs()


def test_generated_model_has_exactly_the_tables_fields() -> None:
    """lifecycle's knob model should have one field per row of knobs.KNOBS, in its order, read from the row's
    variable, with the row's default, and no other field: the table is the one definition."""
    fields = settings.RuntimeSettings.model_fields
    assert list(fields) == [knob.attr for knob in knobs.KNOBS]
    for knob in knobs.KNOBS:
        assert (fields[knob.attr].validation_alias, fields[knob.attr].default) == (knob.name, knob.default)


@pytest.mark.parametrize("knob", knobs.KNOBS, ids=lambda knob: knob.name)
@pytest.mark.parametrize(
    "raw",
    [None, "", " ", "0", "1", "9", "2.5s", "500ms", "2m", "-1", "abc", "PWR", "sigterm", "USR1", "KILL", "SEGV",
     "CHLD", "35", "143:0,130:0", "300:0", "true", "FALSE", "yes", "JSON", "debug", "loud", "exec", "/tmp/../etc",
     "rel/path", "9" * 400],
)  # fmt: skip
def test_generated_model_validates_each_knob_with_its_tables_parser(knob: knobs.Knob, raw: str | None) -> None:
    """lifecycle's knob model should give, for any value of a knob (unset: its default), what the table's parser
    gives: the same value, or the same one line `VARIABLE: problem`."""
    env = {} if raw is None else {knob.name: raw}
    expected = knob_outcome(env, lambda: knobs.load_knobs(env))
    assert knob_outcome(env, through_the_model) == expected
    if isinstance(expected, list):
        with pytest.raises(ValueError) as caught:
            knob.parse(str(raw))
        assert expected == [f"{knob.name}: {caught.value}"]


@PROPERTY
@given(env=st.dictionaries(st.sampled_from(KNOB_NAMES), VALUES, max_size=6))
def test_generated_model_agrees_with_the_table_on_any_environment(env: dict[str, str]) -> None:
    """lifecycle's knob model and the stdlib parsers (the preStop command's) should agree on any environment: the
    same knobs, or the same problem lines in the same order."""
    assert knob_outcome(env, through_the_model) == knob_outcome(env, knobs.load_knobs)


def test_every_settings_model_is_a_pydantic_settings_model() -> None:
    """lifecycle should validate its settings with pydantic-settings: each model is a BaseSettings."""
    for model in (settings.RuntimeSettings, settings.SparkEnv, settings.ExecutorEnv):
        assert issubclass(model, BaseSettings)


@pytest.mark.parametrize(
    ("name", "value", "attr", "parsed"),
    [
        (knobs.RUN_MODE, "EXEC", "run_mode", "exec"),
        (knobs.LOG_FORMAT, " json ", "log_format", "json"),
        (knobs.LOG_LEVEL, "Debug", "log_level", "debug"),
        (knobs.DECOMMISSION_SIGNAL, "USR1", "decommission_signal", 10),
        (knobs.DECOMMISSION_TRIGGER, "sigterm", "decommission_trigger", 15),
        (knobs.DECOMMISSION_TIMEOUT, "", "decommission_timeout", None),
        (knobs.DECOMMISSION_TIMEOUT, "2m", "decommission_timeout", 120.0),
        (knobs.KILL_GRACE, "0", "kill_grace", 0.0),
        (knobs.SIGNAL_GROUP, "TRUE", "signal_group", True),
        (knobs.EXIT_REMAP, "143:0,130:0", "exit_remap", {143: 0, 130: 0}),
        (knobs.EXIT_REMAP, "", "exit_remap", {}),
        (knobs.TERMINATION_LOG, "", "termination_log", ""),
        (knobs.TERMINATION_LOG, "/tmp/my log", "termination_log", "/tmp/my log"),
        (knobs.ORPHAN_GRACE, "500ms", "orphan_grace", 0.5),
        (knobs.HOOK_GRACE, "2.5s", "hook_grace", 2.5),
    ],
)
def test_knob_when_valid_is_parsed(set_env: SetEnv, name: str, value: str, attr: str, parsed: Any) -> None:
    """lifecycle should parse each LIFECYCLE_* knob's documented values through the settings model."""
    set_env({name: value})
    runtime, _, _ = settings.load_all("pass-through")
    assert getattr(runtime, attr) == parsed
    assert getattr(runtime.to_knobs(), attr) == parsed


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        *BAD_KNOBS,
        (knobs.EXIT_REMAP, "143=0", "expected FROM:TO pairs separated by commas, like 143:0, got '143=0'"),
        (knobs.EXIT_REMAP, "143:0:1", "expected FROM:TO pairs separated by commas, like 143:0, got '143:0:1'"),
        (knobs.EXIT_REMAP, "300:0", "exit codes are 0-255, got '300:0'"),
    ],
)
def test_knob_when_invalid_gives_one_line_naming_it(set_env: SetEnv, name: str, value: str, why: str) -> None:
    """lifecycle should refuse a bad LIFECYCLE_* value with exactly one line that names the variable."""
    set_env({name: value})
    assert_problems(config_error("pass-through"), [f"{name}: {why}"])


def test_knobs_when_all_invalid_give_one_line_each() -> None:
    """lifecycle should report every bad LIFECYCLE_* knob at once, one line each, in the documented order."""
    os.environ.update({name: value for name, value, _ in BAD_KNOBS})
    assert_problems(config_error("pass-through"), [f"{name}: {why}" for name, _, why in BAD_KNOBS])


def test_problems_from_every_model_are_reported_together(set_env: SetEnv) -> None:
    """lifecycle should report knob, Spark and executor problems together: knobs first, then Spark, then executor."""
    set_env(EXECUTOR_ENV, LIFECYCLE_KILL_GRACE="soon", SPARK_USER_NAME="a:b", SPARK_EXECUTOR_CORES="many")
    assert_problems(
        config_error("executor"),
        [
            f"LIFECYCLE_KILL_GRACE: {DURATION_HELP}, got 'soon'",
            "SPARK_USER_NAME: must not contain ':' or a newline (it goes into a passwd entry), got 'a:b'",
            "SPARK_EXECUTOR_CORES: expected an integer >= 1, got 'many'",
        ],
    )


# --- start-up: every setting validated by pydantic-settings, imported lean ------------------------------------

# Runs lifecycle's console-script entry with BaseSettings.__init__ recorded: which models the start-up stage
# validated, in order, are printed after its exit code.
RECORDED_RUN = """
import sys
from pydantic_settings import BaseSettings
validated = []
real_init = BaseSettings.__init__
def init(self, *args, **kwargs):
    validated.append(type(self).__name__)
    real_init(self, *args, **kwargs)
BaseSettings.__init__ = init
from lifecycle.launch.cli import main
code = main(sys.argv[1:])
print(code, *validated)
"""


def start_up(argv: list[str], env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess[str]:
    """lifecycle's start-up stage (the lifecycle package this test imported) in a new interpreter (this one's),
    from a temporary directory."""
    command = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "lifecycle", *argv]
    package = str(Path(knobs.__file__).resolve().parents[1])
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": package, "LIFECYCLE_TERMINATION_LOG": ""}
    return subprocess.run(command, env={**base, **env}, cwd=tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_start_up_validates_every_setting_through_pydantic_settings() -> None:
    """lifecycle's start-up should validate the knobs, the Spark contract and the executor contract by building
    their pydantic-settings models, and report each problem they find as one documented line, exit 78."""
    env = {**EXECUTOR_ENV, "LIFECYCLE_KILL_GRACE": "soon", "SPARK_EXECUTOR_CORES": "many"}
    done = start_up(["--dry-run", "executor"], env, RECORDED_RUN)
    assert done.stdout.split() == [str(EX_CONFIG), "RuntimeSettings", "SparkEnv", "ExecutorEnv"]
    errors = [line.partition("error: ")[2] for line in done.stderr.splitlines() if "] error: " in line]
    assert errors == [f"LIFECYCLE_KILL_GRACE: {DURATION_HELP}, got 'soon'",
                      "SPARK_EXECUTOR_CORES: expected an integer >= 1, got 'many'"]  # fmt: skip


def test_start_up_in_a_valid_environment_validates_through_pydantic_settings_too() -> None:
    """lifecycle's start-up should build and validate the same models when nothing is wrong (a dry run, exit 0)."""
    done = start_up(["--dry-run", "--json", "executor"], {**EXECUTOR_ENV, "JAVA_HOME": "/opt/java"}, RECORDED_RUN)
    assert done.stdout.splitlines()[-1].split() == ["0", "RuntimeSettings", "SparkEnv", "ExecutorEnv"]


@pytest.mark.parametrize("run_mode", ["exec", "supervise"])
@pytest.mark.parametrize("theirs", [None, "logfire"])
def test_pydantic_plugins_switch_never_reaches_the_child(run_mode: str, theirs: str | None) -> None:
    """lifecycle should switch pydantic's plugins off only inside its own start-up: the child's environment has
    PYDANTIC_DISABLE_PLUGINS exactly as lifecycle was given it (unset, or the user's value)."""
    env = {knobs.RUN_MODE: run_mode, **({settings.PLUGINS: theirs} if theirs else {})}
    done = start_up(["/usr/bin/env"], env)
    assert done.returncode == 0, done.stderr
    child = [line for line in done.stdout.splitlines() if line.startswith(settings.PLUGINS + "=")]
    assert child == ([f"{settings.PLUGINS}={theirs}"] if theirs else [])


def test_load_all_leaves_the_environment_as_it_was(set_env: SetEnv) -> None:
    """lifecycle's validation should leave os.environ as it found it, from which the child's is built."""
    set_env(EXECUTOR_ENV)
    before = dict(os.environ)
    settings.load_all("executor")
    assert dict(os.environ) == before


# A new interpreter: lifecycle's settings imported lean, then everything kept out is used, each the way
# pydantic or pydantic-settings would. What was kept out is gone from sys.modules, and each import works.
LEAN_IMPORT = """
import os, sys, tempfile, types
from lifecycle.launch import settings
settings.load_all("pass-through")
stand_ins = [name for name, module in sys.modules.items() if isinstance(module, settings.Deferred)]
assert not stand_ins, stand_ins
import asyncio, secrets, importlib.metadata
assert asyncio.run.__module__ == "asyncio.runners" and callable(secrets.compare_digest)
from pydantic import BaseModel, SecretStr
assert SecretStr("a") == SecretStr("a") and SecretStr("a") != SecretStr("b")  # secrets.compare_digest
class Plain(BaseModel):  # built with plugins on: pydantic looks for them through importlib.metadata
    x: int
assert Plain(x=1).x == 1
from pydantic_settings import BaseSettings, SettingsConfigDict
with tempfile.NamedTemporaryFile("w", suffix=".env") as dotenv:  # read through python-dotenv
    dotenv.write("FROM_DOTENV=7")
    dotenv.flush()
    class FromFile(BaseSettings):
        model_config = SettingsConfigDict(env_file=dotenv.name)
        from_dotenv: int = 0
    assert FromFile().from_dotenv == 7
print("ok")
"""


def test_what_the_lean_import_keeps_out_still_works_when_used() -> None:
    """lifecycle should keep out of its start-up what pydantic-settings imports but it never uses, without
    breaking it for anything that does use it later: asyncio, importlib.metadata, secrets, python-dotenv."""
    done = start_up([], {}, LEAN_IMPORT)
    assert done.stdout.strip() == "ok", done.stderr


# --- secrets -------------------------------------------------------------------------------------------------


def _refuse(raw: object) -> object:
    raise ValueError(f"cannot use {raw!r}")


@pytest.mark.parametrize("name", ["_SPARK_AUTH_SECRET", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "GITHUB_TOKEN"])
def test_secret_named_variable_when_invalid_never_shows_its_value(set_env: SetEnv, name: str) -> None:
    """lifecycle should name a bad secret-named variable without ever printing its value."""

    class WithSecret(BaseSettings):
        model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)
        value: Annotated[str, BeforeValidator(_refuse)] = Field(validation_alias=name)

    set_env({name: "hunter2-s3cr3t"})
    with pytest.raises(ConfigError) as caught:
        settings.load(WithSecret)
    assert_problems(caught.value, [f"{name}: invalid value (not shown: the name looks secret)"])
    assert "hunter2" not in str(caught.value)


def test_non_secret_variable_when_invalid_shows_its_value(set_env: SetEnv) -> None:
    """lifecycle should quote the bad value of an ordinary variable, so secret redaction is targeted."""

    class Plain(BaseSettings):
        model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)
        value: Annotated[str, BeforeValidator(_refuse)] = Field(validation_alias="SPARK_LOCAL_DIRS")

    set_env(SPARK_LOCAL_DIRS="/data/1")
    with pytest.raises(ConfigError) as caught:
        settings.load(Plain)
    assert_problems(caught.value, ["SPARK_LOCAL_DIRS: cannot use '/data/1'"])


def test_auth_secret_never_appears_in_errors_or_settings_text(set_env: SetEnv) -> None:
    """lifecycle should keep _SPARK_AUTH_SECRET out of error text and out of the settings' repr."""
    set_env(EXECUTOR_ENV, _SPARK_AUTH_SECRET="hunter2-s3cr3t", SPARK_EXECUTOR_CORES="0", LIFECYCLE_LOG_LEVEL="loud")
    error = config_error("executor")
    assert "hunter2" not in str(error)
    set_env(SPARK_EXECUTOR_CORES="2", LIFECYCLE_LOG_LEVEL="info")
    _, spark, _ = settings.load_all("executor")
    assert spark.auth_secret is not None
    assert spark.auth_secret.get_secret_value() == "hunter2-s3cr3t"
    assert "hunter2" not in repr(spark)
    assert "hunter2" not in str(spark.model_dump())
