"""Settings: the Spark-on-Kubernetes environment contract and the LIFECYCLE_* knobs, read from os.environ.

Every test starts from an empty environment (conftest.clean_env) and sets exactly what it needs. Errors are
checked twice: structurally (ConfigError.problems, or ValidationError.errors()) and as the exact text lines.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import pytest
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle import knobs, settings
from lifecycle.errors import EX_CONFIG, ConfigError

from .conftest import SetEnv

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


def test_runtime_settings_when_no_knob_is_set_take_the_documented_defaults() -> None:
    """lifecycle should use each knob's documented default when no LIFECYCLE_* variable is set."""
    runtime = settings.RuntimeSettings()
    assert runtime.to_knobs() == knobs.Knobs()
    assert {knob.attr: knob.parse(knob.default) for knob in knobs.KNOBS} == runtime.model_dump()


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
