"""The executor the tests start: the environment Spark's K8s scheduler gives it, and tests/helpers/decom.java, a
real JVM with Spark's executor main class and SIGPWR handler, compiled with the host's javac.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.helpers.supervised import REPO_ROOT, SYSTEM_PATH

JAVAC = shutil.which("javac", path=SYSTEM_PATH)
JAVA_HOME = Path(JAVAC).resolve().parents[1] if JAVAC else None
DECOM_SOURCE = REPO_ROOT / "tests" / "helpers" / "decom.java"

# The executor variables the scheduler sets (examples/executor.env); lifecycle only needs them to be valid here.
SCHEDULER_ENV = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc.default.svc:7078",
    "SPARK_EXECUTOR_CORES": "1",
    "SPARK_EXECUTOR_MEMORY": "64m",
    "SPARK_APPLICATION_ID": "spark-test",
    "SPARK_EXECUTOR_ID": "1",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_IP": "10.0.0.1",
    "SPARK_EXECUTOR_POD_NAME": "spark-test-exec-1",
}
# ... with small JVM settings, for decom.java.
EXECUTOR_ENV = {
    **SCHEDULER_ENV,
    # Start-up speed only: these change nothing about signals.
    "SPARK_JAVA_OPT_0": "-XX:TieredStopAtLevel=1",
    "SPARK_JAVA_OPT_1": "-XX:+UseSerialGC",
    "SPARK_JAVA_OPT_2": "-Xshare:auto",
}


def compile_decom(out: Path) -> Path:
    """decom.java compiled into `out` (a package-private class, so any file name will do)."""
    assert JAVAC is not None
    subprocess.run(
        [JAVAC, "-nowarn", "-XDignore.symbol.file", "-d", str(out), str(DECOM_SOURCE)],
        check=True,
        timeout=120,
        env={"PATH": SYSTEM_PATH},
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return out
