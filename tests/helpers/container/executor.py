"""The executor pod of the container tests: `lifecycle executor` as PID 1 with an executor pod's environment, the
passwd entry lifecycle gives its anonymous uid, and lifecycle's verdict read from its JSON log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers.container.runc import Container
from tests.helpers.container.spec import CLASSES, SPARK_HOME, UID, Assets, Options
from tests.helpers.executor import EXECUTOR_ENV

StartContainer = Callable[..., Container]  # start_container(Options(...)) -> a started Container, torn down after
ENTRY = f"{UID}:x:{UID}:0:anonymous uid:{SPARK_HOME}:/bin/false"  # upstream's line, as lifecycle builds it


def executor(assets: Assets, classes: Path, **variables: str) -> Options:
    """`lifecycle executor` as PID 1 with an executor pod's environment and JSON logs."""
    env = {
        "JAVA_HOME": assets.java_home,
        "SPARK_HOME": SPARK_HOME,
        "SPARK_CLASSPATH": CLASSES,
        **EXECUTOR_ENV,
        "LIFECYCLE_LOG_FORMAT": "json",
        **variables,
    }
    return Options([assets.lifecycle, "executor"], env, classes)


def events(log: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [record for record in log if record["event"] == name]


def summary(container: Container, status: int | None) -> str:
    """The container's exit status and lifecycle's verdict: its `terminated` line, and any warning or error."""
    parts = [f"container exit {status}"]
    for record in container.log():
        if record["event"] == "terminated" or record["level"] in ("warning", "error"):
            parts.append(f"{record['level']}: {record['message']}")
    return "; ".join(parts)
