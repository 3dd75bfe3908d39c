"""What the Spark end-to-end tests (tests/integration/test_spark_e2e.py, tests/container/test_container_spark.py)
expect: the executor's argv as upstream builds it, the states of a drained executor, a job's result. The scenario
itself (pyspark, the master, the driver, the executors, the drain) is examples/spark/, which the demo runs too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from examples.pods import EXECUTOR_CLASS
from examples.spark.driver import EXPECTED_TOTAL, Driver
from examples.spark.install import SYSTEM_PATH

START_UP = [("initializing", "env-resolved"), ("env-resolved", "launching"), ("launching", "running")]
DRAINED = [*START_UP, ("running", "decommissioning"), ("decommissioning", "terminated")]


def expected_executor_argv(spark_home: Path, driver: Driver, env: Mapping[str, str], cwd: str) -> list[str]:
    """The executor argv upstream's entrypoint.sh builds for `env` (upstream-behaviour §1.2), java from PATH."""
    java = shutil.which("java", path=env.get("PATH", SYSTEM_PATH))
    assert java is not None
    classpath = ":".join([f"{spark_home}/conf", env.get("SPARK_CLASSPATH", ""), f"{spark_home}/jars/*", cwd,
                          env.get("SPARK_DIST_CLASSPATH", "")])
    return [os.path.realpath(java), *driver.java_options(),
            f"-Xms{env['SPARK_EXECUTOR_MEMORY']}", f"-Xmx{env['SPARK_EXECUTOR_MEMORY']}", "-cp", classpath,
            EXECUTOR_CLASS,
            "--driver-url", env["SPARK_DRIVER_URL"], "--executor-id", env["SPARK_EXECUTOR_ID"],
            "--cores", env["SPARK_EXECUTOR_CORES"], "--app-id", env["SPARK_APPLICATION_ID"],
            "--hostname", env["SPARK_EXECUTOR_POD_IP"], "--resourceProfileId", env["SPARK_RESOURCE_PROFILE_ID"],
            "--podName", env["SPARK_EXECUTOR_POD_NAME"]]  # fmt: skip


def assert_result(result: dict[str, object]) -> None:
    assert result.get("ok") is True, result
    assert result["total"] == EXPECTED_TOTAL == result["expected"], result
    assert result["partitions"] == [0, 1], result
