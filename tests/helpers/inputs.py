"""The environments tests give lifecycle: the `set_env` fixture's type (tests/conftest.py), and the inputs the
property tests generate from (tests/test_properties.py), reused by the 10,000-input hardening run
(tests/hardening/test_generated_inputs.py, with the HARDENING_PROFILE that tests/hardening/conftest.py registers).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from lifecycle import knobs

SetEnv = Callable[..., None]  # set_env({"A": "1"}, B="2"): os.environ for this test
HARDENING_PROFILE = "lifecycle-hardening"

EXECUTOR_ENV = {
    "SPARK_HOME": "/opt/spark",
    "SPARK_EXECUTOR_MEMORY": "1g",
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc:7078",
    "SPARK_EXECUTOR_ID": "1",
    "SPARK_EXECUTOR_CORES": "1",
    "SPARK_APPLICATION_ID": "spark-app",
    "SPARK_EXECUTOR_POD_IP": "10.0.0.7",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_NAME": "app-exec-1",
}
SPARK_NAMES = [
    *EXECUTOR_ENV,
    "JAVA_HOME",
    "SPARK_CLASSPATH",
    "SPARK_EXTRA_CLASSPATH",
    "SPARK_DIST_CLASSPATH",
    "SPARK_CONF_DIR",
    "HADOOP_HOME",
    "HADOOP_CONF_DIR",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
    "SPARK_USER_NAME",
    "SPARK_DRIVER_BIND_ADDRESS",
    "SPARK_USER",
    "SPARK_LOCAL_DIRS",
    "HADOOP_TOKEN_FILE_LOCATION",
    "_SPARK_AUTH_SECRET",
    "MY_SPARK_JAVA_OPT_7",
    "SPARK_JAVA_OPT_FOO",
    *(f"SPARK_JAVA_OPT_{index}" for index in (0, 1, 2, 3, 9, 10, 11, 12)),
    "SPARK_JAVA_OPT_09",
]
KNOB_NAMES = [knob.name for knob in knobs.KNOBS]

# Arbitrary text (no NUL: the kernel cannot carry it) plus values near the validators' edges.
VALUES = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24),
    st.sampled_from(
        ["", " ", "\n", "\t", ":", "a:b", "a b", "0", "1", "-1", "007", "4g", "512m", "4gb", "spark://d:7078",
         "http://d", "PWR", "KILL", "30", "143:0", "143:0,130:0", "true", "yes", "30s", "/opt/spark", " 2 ",
         '-Dx="a b"', "-Dx=1\n-Dy=2", "{}", "[1]", "null"]
    ),
)  # fmt: skip
