"""Typed settings: the Spark-on-Kubernetes environment contract and the runtime's own LIFECYCLE_* knobs.

Every field has an explicit upper-case alias equal to the upstream variable name, so a validation
error's `loc[0]` is the variable to name. "Set but empty" stays apart from "unset" (None) wherever
upstream's entrypoint.sh tests `${VAR+x}`: PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON, HADOOP_CONF_DIR,
SPARK_CONF_DIR.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from lifecycle import knobs
from lifecycle.errors import ConfigError
from lifecycle.redaction import is_secret_name

JAVA_OPT = re.compile(r"SPARK_JAVA_OPT_([0-9]+)")  # fullmatch only: `$` would also match before a final newline
_JVM_SIZE = re.compile(r"^[0-9]+[kKmMgGtT]?$")
_COMMON = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)


def _word(raw: Any) -> str:
    """One command-line word: surrounding blanks dropped (upstream's unquoted expansion does that too)."""
    text = str(raw).strip()
    if not text:
        raise ValueError("expected a non-empty value, got an empty one (upstream would drop the argument)")
    if any(c.isspace() for c in text):
        raise ValueError(f"expected a single word, got {raw!r} (upstream would split it into several arguments)")
    return text


def _jvm_size(raw: Any) -> str:
    text = _word(raw)
    if not _JVM_SIZE.match(text) or int(text.rstrip("kKmMgGtT")) == 0:
        raise ValueError(f"expected a JVM size > 0 like 512m, 4g or 1024, got {raw!r}")
    return text


def _positive_int(raw: Any) -> int:
    text = _word(raw)
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"expected an integer >= 1, got {raw!r}")
    return int(text)


def _non_negative_int(raw: Any) -> int:
    text = _word(raw)
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"expected an integer >= 0, got {raw!r}")
    return int(text)


def _driver_url(raw: Any) -> str:
    text = _word(raw)
    if not text.startswith("spark://"):
        raise ValueError(f"expected a URL like spark://CoarseGrainedScheduler@HOST:PORT, got {raw!r}")
    return text


def _passwd_field(raw: Any) -> str | None:
    if raw is None:  # unset (pydantic-settings validates defaults too)
        return None
    text = str(raw)
    if ":" in text or "\n" in text:
        raise ValueError(f"must not contain ':' or a newline (it goes into a passwd entry), got {raw!r}")
    return text


def _spark_home(raw: Any) -> str | None:
    text = _passwd_field(raw)
    if text is None:
        return None
    if not text:
        raise ValueError("expected a directory, got an empty value")
    return text


def _parsed(parse: Callable[[str], Any]) -> BeforeValidator:
    return BeforeValidator(lambda raw: parse(str(raw)))


Word = Annotated[str, BeforeValidator(_word)]


def env(name: str, default: Any = None) -> Any:
    """A field read from the environment variable `name`, exactly."""
    return Field(default, validation_alias=name)


class JavaOptsSource(PydanticBaseSettingsSource):
    """SPARK_JAVA_OPT_<n>: exact names (the prefix then digits only), ordered by n numerically.

    SPARK-23449 wants numeric order; spark-docker's ${!SPARK_JAVA_OPT_@} gives lexicographic (0, 1, 10, 2…)
    and the in-tree `env | grep` also picks up MY_SPARK_JAVA_OPT_7 and values mentioning the prefix.
    Ties (SPARK_JAVA_OPT_1 and SPARK_JAVA_OPT_01) keep name order. Values are kept whole. n may have any
    number of digits: it is compared as digits (length without leading zeros, then the digits), never
    converted with int(), which refuses more than 4300 digits.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = []
        for name, value in os.environ.items():
            match = JAVA_OPT.fullmatch(name)
            if match:
                digits = match.group(1).lstrip("0")
                found.append(((len(digits), digits), name, value))
        found.sort(key=lambda item: (item[0], item[1]))
        return {"java_opts": tuple((name, value) for _, name, value in found)}


class SparkEnv(BaseSettings):
    """What upstream's entrypoint.sh reads in every mode, and the scheduler-set variables it passes on."""

    model_config = _COMMON

    spark_home: Annotated[str | None, BeforeValidator(_spark_home)] = env("SPARK_HOME")
    java_home: str | None = env("JAVA_HOME")
    spark_classpath: str | None = env("SPARK_CLASSPATH")
    spark_extra_classpath: str | None = env("SPARK_EXTRA_CLASSPATH")
    spark_dist_classpath: str | None = env("SPARK_DIST_CLASSPATH")
    spark_conf_dir: str | None = env("SPARK_CONF_DIR")
    hadoop_home: str | None = env("HADOOP_HOME")
    hadoop_conf_dir: str | None = env("HADOOP_CONF_DIR")
    pyspark_python: str | None = env("PYSPARK_PYTHON")
    pyspark_driver_python: str | None = env("PYSPARK_DRIVER_PYTHON")
    spark_user_name: Annotated[str | None, BeforeValidator(_passwd_field)] = env("SPARK_USER_NAME")
    spark_driver_bind_address: str | None = env("SPARK_DRIVER_BIND_ADDRESS")
    # Set by the scheduler and passed on unchanged in the child's environment (upstream-behaviour §4).
    spark_user: str | None = env("SPARK_USER")
    spark_application_id: str | None = env("SPARK_APPLICATION_ID")
    spark_local_dirs: str | None = env("SPARK_LOCAL_DIRS")
    spark_driver_pod_ip: str | None = env("SPARK_DRIVER_POD_IP")
    hadoop_token_file_location: str | None = env("HADOOP_TOKEN_FILE_LOCATION")
    auth_secret: SecretStr | None = env("_SPARK_AUTH_SECRET")
    # Filled by JavaOptsSource only; NoDecode keeps a stray `java_opts` variable from being JSON-decoded.
    java_opts: Annotated[tuple[tuple[str, str], ...], NoDecode] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, JavaOptsSource(settings_cls), env_settings)


class ExecutorEnv(BaseSettings):
    """The variables the scheduler sets for `executor` (upstream-behaviour §4.1); each one is required."""

    model_config = _COMMON

    executor_memory: Annotated[str, BeforeValidator(_jvm_size)] = env("SPARK_EXECUTOR_MEMORY", ...)
    driver_url: Annotated[str, BeforeValidator(_driver_url)] = env("SPARK_DRIVER_URL", ...)
    executor_id: Word = env("SPARK_EXECUTOR_ID", ...)
    cores: Annotated[int, BeforeValidator(_positive_int)] = env("SPARK_EXECUTOR_CORES", ...)
    app_id: Word = env("SPARK_APPLICATION_ID", ...)
    pod_ip: Word = env("SPARK_EXECUTOR_POD_IP", ...)
    resource_profile_id: Annotated[int, BeforeValidator(_non_negative_int)] = env("SPARK_RESOURCE_PROFILE_ID", ...)
    pod_name: Word = env("SPARK_EXECUTOR_POD_NAME", ...)


class RuntimeSettings(BaseSettings):
    """The runtime's own LIFECYCLE_* knobs; names and parsers live in knobs.py."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, validate_default=True)

    run_mode: Annotated[str, _parsed(knobs.parse_run_mode)] = env(knobs.RUN_MODE, "supervise")
    log_format: Annotated[str, _parsed(knobs.parse_log_format)] = env(knobs.LOG_FORMAT, "text")
    log_level: Annotated[str, _parsed(knobs.parse_log_level)] = env(knobs.LOG_LEVEL, "info")
    decommission_signal: Annotated[int, _parsed(knobs.parse_signal)] = env(knobs.DECOMMISSION_SIGNAL, "PWR")
    decommission_trigger: Annotated[int, _parsed(knobs.parse_trigger)] = env(knobs.DECOMMISSION_TRIGGER, "PWR")
    decommission_timeout: Annotated[float | None, _parsed(knobs.parse_optional_timeout)] = env(
        knobs.DECOMMISSION_TIMEOUT, ""
    )
    kill_grace: Annotated[float, _parsed(knobs.parse_duration)] = env(knobs.KILL_GRACE, "10")
    signal_group: Annotated[bool, _parsed(knobs.parse_bool)] = env(knobs.SIGNAL_GROUP, "false")
    exit_remap: Annotated[dict[int, int], NoDecode, _parsed(knobs.parse_remap)] = env(knobs.EXIT_REMAP, "")
    termination_log: str = env(knobs.TERMINATION_LOG, "/dev/termination-log")
    orphan_grace: Annotated[float, _parsed(knobs.parse_duration)] = env(knobs.ORPHAN_GRACE, "5")
    hook_grace: Annotated[float, _parsed(knobs.parse_duration)] = env(knobs.HOOK_GRACE, "5")

    def to_knobs(self) -> knobs.Knobs:
        return knobs.Knobs(**self.model_dump())


def describe_errors(error: ValidationError, required_for: str = "") -> list[str]:
    """One line per problem: `VARIABLE: what was wrong and what is accepted`; never the input of a secret."""
    lines = []
    for err in error.errors(include_url=False, include_input=False):
        name = str(err["loc"][0]) if err["loc"] else "environment"
        if err["type"] == "missing":
            why = f"required{required_for} but not set"
        else:
            why = str(err["msg"]).removeprefix("Value error, ")
        if is_secret_name(name):
            why = "invalid value (not shown: the name looks secret)"
        lines.append(f"{name}: {why}")
    return lines


def load(model: type[BaseSettings], required_for: str = "") -> Any:
    """Build one settings model from the environment, turning validation errors into a ConfigError."""
    try:
        return model()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, required_for)) from None


def load_all(mode: str) -> tuple[RuntimeSettings, SparkEnv, ExecutorEnv | None]:
    """Runtime knobs, the common Spark contract and, for executor mode, the executor contract.

    Problems from every model are reported together, one line each.
    """
    problems: list[str] = []
    results: list[Any] = []
    steps: list[tuple[type[BaseSettings], str]] = [(RuntimeSettings, ""), (SparkEnv, "")]
    if mode == "executor":
        steps.append((ExecutorEnv, " in executor mode"))
    for model, required_for in steps:
        try:
            results.append(load(model, required_for))
        except ConfigError as exc:
            problems.extend(exc.problems)
            results.append(None)
    if mode in ("driver", "executor") and os.environ.get("SPARK_HOME") is None:
        problems.append(f"SPARK_HOME: required in {mode} mode but not set (expected the Spark directory)")
    if problems:
        raise ConfigError(problems)
    executor = results[2] if mode == "executor" else None
    return results[0], results[1], executor
