"""A stand-in for `java` and `spark-submit` that records how it was started, then exits.

Run as a stub (see `install`) or as `python -m tests.helpers.recorder`. It writes one JSON object,
{"argv": [...], "env": {...}, "cwd": "...", "pid": N}, to the file named by RECORD_FILE, then writes
RECORD_STDERR (if set) to its stderr and exits with RECORD_EXIT (default 0).

It prints no `ready (pid: N)` line: it does nothing that a test could wait for except exit, and the
tests block on that exit (bounded by a timeout) instead.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    """Record argv, environment and working directory; then stderr text and the exit code asked for."""
    record = {
        "argv": list(sys.argv if argv is None else argv),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }
    path = os.environ.get("RECORD_FILE")
    if path:
        partial = f"{path}.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(partial, path)  # a reader never sees half a record
    text = os.environ.get("RECORD_STDERR")
    if text:
        sys.stderr.write(text)
        sys.stderr.flush()
    return int(os.environ.get("RECORD_EXIT", "0"))


def install(path: Path) -> Path:
    """Write an executable stub at `path` that runs `main` with the argv[0] it was executed as."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # -I: PYTHON* variables in the recorded environment must not change how the stub itself runs.
    path.write_text(
        f"#!{sys.executable} -I\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from tests.helpers.recorder import main\n"
        "raise SystemExit(main())\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_spark_home(root: Path) -> Path:
    """A SPARK_HOME under `root` with bin/spark-submit (the recorder) and an empty jars/ directory."""
    home = root / "spark"
    install(home / "bin" / "spark-submit")
    (home / "jars").mkdir(parents=True, exist_ok=True)
    return home


def fake_java_home(root: Path) -> Path:
    """A JAVA_HOME under `root` whose bin/java is the recorder."""
    home = root / "jdk"
    install(home / "bin" / "java")
    return home


def read_record(path: Path) -> dict[str, Any]:
    """The record a stub wrote to RECORD_FILE `path`."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


if __name__ == "__main__":
    raise SystemExit(main())
