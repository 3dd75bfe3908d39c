"""Pods as the tests start them: the type of the `pods` fixture (tests/conftest.py), and argv builders for what
runs in a pod. The pods themselves, the preStop command run in them and the stub executor are examples/pods.py,
which bench/decommission.py uses too.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from examples.pods import EXECUTOR_CLASS, SYSTEM_PATH, Pod

StartPod = Callable[..., Pod]  # pods(layout, command, **env) -> a started Pod, killed when the test ends
JAVA, JAVAC = shutil.which("java", path=SYSTEM_PATH), shutil.which("javac", path=SYSTEM_PATH)


def java(classes: Path, *properties: str, main: str = EXECUTOR_CLASS) -> list[str]:
    """argv for a JVM running `main` from the compiled test classes with -D`properties`."""
    assert JAVA is not None
    return [JAVA, *(f"-D{p}" for p in properties), "-cp", str(classes), main]


def several(*commands: list[str]) -> list[str]:
    """sh starting each command in the background, then printing `exit I CODE` as each one ends (128+N: signal N)."""
    lines = [f"{shlex.join(command)} & p{i}=$!" for i, command in enumerate(commands)]
    lines += [f'wait "$p{i}"; echo "exit {i} $?"' for i in range(len(commands))]
    return ["sh", "-c", "\n".join(lines)]
