"""The executor pod of the container tests: `lifecycle executor` (the image's ENTRYPOINT with the pod spec's args) with
an executor pod's environment, the passwd entry lifecycle gives its anonymous uid, and lifecycle's verdict read from
its JSON log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.helpers.container.podman import CLASSES, SPARK_HOME, UID, Container, Options
from tests.helpers.executor import EXECUTOR_ENV

StartContainer = Callable[..., Container]  # start_container(Options(...)) -> a started Container, removed after
ENTRY = f"{UID}:x:{UID}:0:anonymous uid:{SPARK_HOME}:/bin/false"  # upstream's line, as lifecycle builds it


def executor(classes: Path, **variables: str) -> Options:
    """`executor` as the pod's args (the image's ENTRYPOINT is lifecycle), an executor pod's environment, JSON logs.
    JAVA_HOME and SPARK_HOME are the image's own."""
    env = {"SPARK_CLASSPATH": CLASSES, **EXECUTOR_ENV, "LIFECYCLE_LOG_FORMAT": "json", **variables}
    return Options(["executor"], env, classes)


def events(log: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [record for record in log if record["event"] == name]


def summary(container: Container, status: int | None) -> str:
    """The container's exit status and lifecycle's verdict: its `terminated` line, and any warning or error."""
    parts = [f"container exit {status}"]
    for record in container.log():
        if record["event"] == "terminated" or record["level"] in ("warning", "error"):
            parts.append(f"{record['level']}: {record['message']}")
    return "; ".join(parts)


def log_wall(timestamp: object) -> float:
    """lifecycle's `ts` field (UTC, milliseconds) as time.time()."""
    return datetime.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
