"""Typed settings: the Spark-on-Kubernetes environment contract and the runtime's own LIFECYCLE_* knobs.

pydantic-settings validates every setting before anything is launched. Every field has an explicit upper-case
alias equal to the variable's name, so a validation error's `loc[0]` is the variable to name. "Set but empty"
stays apart from "unset" (None) wherever upstream's entrypoint.sh tests `${VAR+x}`: PYSPARK_PYTHON,
PYSPARK_DRIVER_PYTHON, HADOOP_CONF_DIR, SPARK_CONF_DIR. The knobs' model is generated from knobs.KNOBS.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from lifecycle import knobs
from lifecycle.errors import ConfigError
from lifecycle.redaction import is_secret_name

# Start-up cost. Importing pydantic-settings is most of what `lifecycle executor` spends before the JVM's exec
# (README, Benchmarks), so it is imported lean: `lean_import` keeps out what it imports and lifecycle never uses,
# `plugins_off` skips the plugin scan, and `defer_build` builds a model only when it is first validated. Figures:
# instructions of `lifecycle executor` up to the exec (valgrind --tool=callgrind; 616 M before all this, 495 M
# after), each what taking that one change out adds back. Tested with pydantic 2.7.4 and pydantic-settings 2.7.0
# (Python 3.10, 3.11) and with 2.14.4 and 2.16.3 (3.11, 3.13); a version that does not import a module below
# leaves its stand-in unused, and one that uses it at import time gets the real module then.

PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
# Each module that pydantic-settings or pydantic imports at their top but lifecycle never calls, with the functions
# that importers take from it by name (`from m import f`) before any call, and what keeping it out saves:
UNUSED = {
    # pydantic_settings.main, for its CLI runner only; with ssl, socket, subprocess, concurrent.futures: 53 M
    "asyncio": (),
    # pydantic's plugin loader, which calls it only when plugins are on; with email, zipfile and csv: 31 M
    "importlib.metadata": ("entry_points", "version", "distribution", "distributions", "metadata", "requires"),
    # pydantic.types, for SecretStr's constant-time ==; with hmac and OpenSSL's _hashlib: 10 M
    "secrets": (),
    # pydantic-settings' .env source, which calls it only when env_file is set; with python-dotenv's parser: 8 M
    "dotenv": ("dotenv_values",),
}


class Deferred(types.ModuleType):
    """Stands in for a module in sys.modules while pydantic-settings is imported (`lean_import`).

    The first attribute asked of it imports the real module, which answers it and every later request; but one
    of its `functions` comes back as a forwarder that imports the real module when it is called, not when it is
    taken. It knows where the real module is without running it, so a package's submodules still import.
    """

    def __init__(self, name: str, functions: tuple[str, ...], spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        self._lifecycle_functions = functions
        self.__spec__, self.__file__ = spec, spec.origin
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)

    def _lifecycle_real(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)

    def __getattr__(self, attr: str) -> Any:
        if attr in self._lifecycle_functions:
            return lambda *args, **kwargs: getattr(self._lifecycle_real(), attr)(*args, **kwargs)
        return getattr(self._lifecycle_real(), attr)


@contextmanager
def lean_import() -> Iterator[None]:
    """While pydantic-settings is imported: a Deferred in sys.modules (and on its parent package) for each UNUSED
    module nothing has imported yet; then they leave, so a later `import` gets the real module, and what
    pydantic bound meanwhile imports it on first use. Plugins are off throughout (the first model is built here)."""
    standing = {}
    for name, functions in UNUSED.items():
        try:
            spec = None if name in sys.modules else importlib.util.find_spec(name)
        except (ImportError, ValueError):  # not installed: nothing to keep out
            spec = None
        if spec is not None:
            standing[name] = sys.modules[name] = Deferred(name, functions, spec)
            parent, _, child = name.rpartition(".")
            if parent:  # for `import importlib.metadata` followed by `importlib.metadata.f(…)`
                setattr(sys.modules[parent], child, standing[name])
    try:
        with plugins_off():
            yield
    finally:
        for name, stand_in in standing.items():
            parent, _, child = name.rpartition(".")
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            if parent and getattr(sys.modules[parent], child, None) is stand_in:
                delattr(sys.modules[parent], child)


@contextmanager
def plugins_off() -> Iterator[None]:
    """No pydantic plugins for lifecycle's models: pydantic's scan for them reads every installed distribution's
    metadata (3 ms here, with 36 distributions; more in a full image) and needs importlib.metadata (40 M with
    it). Set in this process only, around the import and around the validations (which build the models); the
    child's environment is built afterwards from os.environ as it was (a value the user set is put back)."""
    before = os.environ.get(PLUGINS)
    os.environ[PLUGINS] = "__all__"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PLUGINS, None)
        else:
            os.environ[PLUGINS] = before


with lean_import():
    from pydantic import BeforeValidator, Field, SecretStr, ValidationError, create_model
    from pydantic.fields import FieldInfo
    from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

JAVA_OPT = re.compile(r"SPARK_JAVA_OPT_([0-9]+)")  # fullmatch only: `$` would also match before a final newline
_JVM_SIZE = re.compile(r"^[0-9]+[kKmMgGtT]?$")
# defer_build: a model is built when it is first validated, so a mode builds only what it reads (9 M in executor
# mode, which reads all three: KnobSettings, the generated model's base, is never built)
_COMMON = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, defer_build=True)


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


def _port(raw: Any) -> int:
    text = _word(raw)
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise ValueError(f"expected a port number 0-65535 (0: any free port), got {raw!r}")
    return int(text)


def _spark_size(raw: Any) -> str:
    """A Spark memory size (Utils.memoryStringToMb): digits and an optional unit k, m, g, t (b, kb … too)."""
    text = _word(raw)
    if not _SPARK_SIZE.match(text) or int(re.sub(r"[^0-9]", "", text)) == 0:
        raise ValueError(f"expected a memory size > 0 like 1g, 512m or 2048m, got {raw!r}")
    return text


def _one_instance(raw: Any) -> int | None:
    """SPARK_WORKER_INSTANCES: start-worker.sh starts that many Workers; a container runs one (unset: one)."""
    text = "" if raw is None else str(raw).strip()
    if text in ("", "1"):
        return 1 if text else None
    raise ValueError(f"one Worker per container: expected 1 or empty (start more containers instead), got {raw!r}")


Port = Annotated[int | None, BeforeValidator(lambda raw: None if raw is None else _port(raw))]
_SPARK_SIZE = re.compile(r"^[0-9]+([kKmMgGtTpP][bB]?|[bB])?$")


class DaemonEnv(BaseSettings):
    """What spark-class reads for the standalone daemons (master, worker): read here to validate them; spark-class
    itself passes them to the JVM (SparkClassCommandBuilder: -Xmx from SPARK_DAEMON_MEMORY, then the options)."""

    model_config = _COMMON

    daemon_memory: Annotated[str | None, BeforeValidator(lambda raw: None if raw is None else _jvm_size(raw))] = env(
        "SPARK_DAEMON_MEMORY"
    )
    daemon_java_opts: str | None = env("SPARK_DAEMON_JAVA_OPTS")


class MasterEnv(DaemonEnv):
    """`lifecycle master`: the variables start-master.sh reads (the Master JVM reads them again itself)."""

    host: Annotated[str | None, BeforeValidator(lambda raw: None if raw is None else _word(raw))] = env(
        "SPARK_MASTER_HOST"
    )
    port: Port = env("SPARK_MASTER_PORT")
    webui_port: Port = env("SPARK_MASTER_WEBUI_PORT")
    opts: str | None = env("SPARK_MASTER_OPTS")


class WorkerEnv(DaemonEnv):
    """`lifecycle worker MASTER_URL`: the variables start-worker.sh and the Worker JVM read."""

    port: Port = env("SPARK_WORKER_PORT")
    webui_port: Port = env("SPARK_WORKER_WEBUI_PORT")
    cores: Annotated[int | None, BeforeValidator(lambda raw: None if raw is None else _positive_int(raw))] = env(
        "SPARK_WORKER_CORES"
    )
    memory: Annotated[str | None, BeforeValidator(lambda raw: None if raw is None else _spark_size(raw))] = env(
        "SPARK_WORKER_MEMORY"
    )
    work_dir: Annotated[str | None, BeforeValidator(lambda raw: None if raw is None else _word(raw))] = env(
        "SPARK_WORKER_DIR"
    )
    instances: Annotated[int | None, BeforeValidator(_one_instance)] = env("SPARK_WORKER_INSTANCES")
    opts: str | None = env("SPARK_WORKER_OPTS")


STANDALONE = ("master", "worker")  # the standalone cluster's daemons, started through spark-class
ModeEnv = ExecutorEnv | MasterEnv | WorkerEnv
MODE_MODELS: dict[str, type[BaseSettings]] = {"executor": ExecutorEnv, "master": MasterEnv, "worker": WorkerEnv}


class KnobSettings(BaseSettings):
    """The runtime's own LIFECYCLE_* knobs: the base of RuntimeSettings, whose fields come from knobs.KNOBS."""

    model_config = SettingsConfigDict(**_COMMON, validate_default=True)  # the defaults go through the parsers too

    def to_knobs(self) -> knobs.Knobs:
        return knobs.Knobs(**{knob.attr: getattr(self, knob.attr) for knob in knobs.KNOBS})


def knob_field(knob: knobs.Knob) -> tuple[Any, Any]:
    """A knob as a field: read from its variable, the string (or the default string) given to its parser, whose
    value is the field's; the parser's ValueError is the validation error. `Any`, not a container type, so
    pydantic-settings never JSON-decodes the value first (LIFECYCLE_EXIT_REMAP's `143:0` is not JSON)."""
    parse = knob.parse
    return Annotated[Any, BeforeValidator(lambda raw: parse(str(raw)))], env(knob.name, knob.default)


_KNOB_FIELDS: dict[str, Any] = {knob.attr: knob_field(knob) for knob in knobs.KNOBS}  # in the table's order
RuntimeSettings = create_model("RuntimeSettings", __base__=KnobSettings, __module__=__name__, **_KNOB_FIELDS)


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
        lines.append(knobs.problem(name, why))
    return lines


def load(model: type[BaseSettings], required_for: str = "") -> Any:
    """Build one settings model from the environment, turning validation errors into a ConfigError."""
    try:
        return model()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, required_for)) from None


def load_all(mode: str) -> tuple[KnobSettings, SparkEnv, ModeEnv | None]:
    """Runtime knobs, the common Spark contract and the mode's own (executor, master, worker) contract.

    Problems from every model are reported together, one line each.
    """
    problems: list[str] = []
    results: list[Any] = []
    steps: list[tuple[type[BaseSettings], str]] = [(RuntimeSettings, ""), (SparkEnv, "")]
    if mode in MODE_MODELS:
        steps.append((MODE_MODELS[mode], f" in {mode} mode"))
    with plugins_off():  # the first validation of a model builds it (defer_build)
        for model, required_for in steps:
            try:
                results.append(load(model, required_for))
            except ConfigError as exc:
                problems.extend(exc.problems)
                results.append(None)
    if mode in ("driver", "executor", *STANDALONE) and os.environ.get("SPARK_HOME") is None:
        problems.append(f"SPARK_HOME: required in {mode} mode but not set (expected the Spark directory)")
    if problems:
        raise ConfigError(problems)
    return results[0], results[1], results[2] if mode in MODE_MODELS else None
