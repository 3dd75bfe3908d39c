"""The operator's guide's three worked examples (docs/operators-guide.md, section 5), run as they are written:
examples/scripts/ copied into a pre-launch or post-exit directory, lifecycle started for real, with the recorder
stub (tests/helpers/recorder.py) as spark-submit and java."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.recorder import fake_java_home, fake_spark_home, read_record
from tests.helpers.supervised import Runs, env_for, error_lines, no_traceback

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scripts"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nsecond-line-of-the-key"
EXECUTOR_ENV = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc:7078",
    "SPARK_EXECUTOR_CORES": "1",
    "SPARK_EXECUTOR_MEMORY": "512m",
    "SPARK_APPLICATION_ID": "spark-0a1b2c3d",
    "SPARK_EXECUTOR_ID": "3",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_IP": "10.244.1.17",
    "SPARK_EXECUTOR_POD_NAME": "app-exec-3",
}


def only(example: str, directory: Path) -> Path:
    """A script directory holding just this example (as an image would install it: mode kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(EXAMPLES / example, directory / Path(example).name)
    return directory


def lifecycle_lines(stderr: str) -> str:
    """lifecycle's own lines (the child's stderr passes through unchanged, as under tini)."""
    return "\n".join(line for line in stderr.splitlines() if line.startswith("lifecycle:"))


def test_example_1_a_secret_from_a_mounted_file_becomes_an_environment_variable(runs: Runs, tmp_path: Path) -> None:
    """10-secret-from-file.sh should export the mounted file's content whole (both lines) as AWS_SECRET_ACCESS_KEY,
    and lifecycle should log neither the value nor the name."""
    secret = tmp_path / "secret-access-key"
    secret.write_text(SECRET + "\n")
    env = env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(only("pre-launch.d/10-secret-from-file.sh", tmp_path / "pre")),
                  S3A_KEY_FILE=str(secret))  # fmt: skip
    show = "import os; print(repr(os.environ['AWS_SECRET_ACCESS_KEY']))"
    outcome = runs.run([sys.executable, "-c", show], env, pid1=True)

    assert outcome.code == 0, outcome.stderr
    assert outcome.lines == [repr(SECRET)]
    own = lifecycle_lines(outcome.stderr)
    assert "10-secret-from-file.sh> S3A secret key read from" in own
    assert "10-secret-from-file.sh exported 1 secret-named variable(s)" in own
    assert "wJalrXUtnFEMI" not in outcome.stderr and "AWS_SECRET_ACCESS_KEY" not in own


def test_example_1_without_the_mounted_file_launches_nothing(runs: Runs, tmp_path: Path) -> None:
    """Without the Secret's file the script should fail and the start-up stop with 69, nothing launched."""
    env = env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(only("pre-launch.d/10-secret-from-file.sh", tmp_path / "pre")),
                  S3A_KEY_FILE=str(tmp_path / "absent"))  # fmt: skip
    outcome = runs.run(["true"], env, pid1=False)

    assert outcome.code == 69
    assert error_lines(outcome) == ["error: pre-launch script 10-secret-from-file.sh exited with code 1: nothing "
                                    "launched (LIFECYCLE_PRE_LAUNCH_FAILURE=stop)"]  # fmt: skip
    assert f"cannot read {tmp_path / 'absent'} (is the Secret mounted?)" in outcome.stderr


def test_example_2_a_spark_defaults_fragment_in_a_writable_volume_reaches_the_driver(
    runs: Runs, tmp_path: Path
) -> None:
    """20-spark-defaults.sh should, for the driver only, copy the image's conf into the volume, append the pod's
    settings and export SPARK_CONF_DIR, which spark-submit then gets; the image's conf stays as it was."""
    spark_home = fake_spark_home(tmp_path)
    (spark_home / "conf").mkdir()
    (spark_home / "conf" / "spark-defaults.conf").write_text("spark.eventLog.enabled true\n")
    (spark_home / "conf" / "log4j2.properties").write_text("rootLogger.level = info\n")
    volume = tmp_path / "conf-rw"
    volume.mkdir()
    record = tmp_path / "record.json"
    env = env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(only("pre-launch.d/20-spark-defaults.sh", tmp_path / "pre")),
                  SPARK_HOME=str(spark_home), SPARK_CONF_VOLUME=str(volume), POD_IP="10.244.0.5",
                  POD_NAME="app-driver", RECORD_FILE=str(record))  # fmt: skip
    outcome = runs.run(["driver", "--class", "org.example.App", "local:///app.jar"], env, pid1=True)

    assert outcome.code == 0, outcome.stderr
    assert read_record(record)["env"]["SPARK_CONF_DIR"] == str(volume)
    assert (volume / "spark-defaults.conf").read_text() == (
        "spark.eventLog.enabled true\n\n# added at start-up by 20-spark-defaults.sh\n"
        "spark.driver.host                   10.244.0.5\nspark.kubernetes.driver.pod.name    app-driver\n"
    )
    assert (volume / "log4j2.properties").exists()
    assert (spark_home / "conf" / "spark-defaults.conf").read_text() == "spark.eventLog.enabled true\n"
    assert "20-spark-defaults.sh exported SPARK_CONF_DIR" in outcome.stderr
    no_traceback(outcome.stderr)


def test_example_2_does_nothing_for_an_executor(runs: Runs, tmp_path: Path) -> None:
    """For an executor the script should exit 0 at once: no file written, SPARK_CONF_DIR untouched."""
    volume = tmp_path / "conf-rw"
    volume.mkdir()
    env = env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(only("pre-launch.d/20-spark-defaults.sh", tmp_path / "pre")),
                  SPARK_HOME=str(fake_spark_home(tmp_path)), JAVA_HOME=str(fake_java_home(tmp_path)),
                  SPARK_CONF_VOLUME=str(volume), RECORD_FILE=str(tmp_path / "record.json"), **EXECUTOR_ENV)  # fmt: skip
    outcome = runs.run(["executor"], env, pid1=False)

    assert outcome.code == 0, outcome.stderr
    assert list(volume.iterdir()) == []
    assert "SPARK_CONF_DIR" not in read_record(tmp_path / "record.json")["env"]


@pytest.mark.parametrize(("code", "uploaded"), [(1, True), (0, False)], ids=["failed", "completed"])
def test_example_3_the_executors_stderr_tail_is_uploaded_after_it_exits(
    runs: Runs, tmp_path: Path, code: int, uploaded: bool, pid1: bool
) -> None:
    """10-upload-stderr-tail.sh should, once a failed executor has exited, store its last stderr lines (a secret in
    them redacted) with how it ended in the upload directory; lifecycle still exits with the executor's code."""
    upload = tmp_path / "upload"
    upload.mkdir()
    stderr = "INFO Executor: starting\nERROR Executor: lost the driver\nfs.s3a.secret.key=s3a-hidden-1b2c\n"
    env = env_for(LIFECYCLE_POST_EXIT_DIR=str(only("post-exit.d/10-upload-stderr-tail.sh", tmp_path / "post")),
                  SPARK_HOME=str(fake_spark_home(tmp_path)), JAVA_HOME=str(fake_java_home(tmp_path)),
                  UPLOAD_DIR=str(upload), RECORD_FILE=str(tmp_path / "record.json"), RECORD_STDERR=stderr,
                  RECORD_EXIT=str(code), **EXECUTOR_ENV)  # fmt: skip
    outcome = runs.run(["executor"], env, pid1=pid1)

    assert outcome.code == code, outcome.stderr
    target = upload / "spark-0a1b2c3d" / "app-exec-3.stderr.txt"
    if not uploaded:
        assert not target.exists()
        return
    assert target.read_text() == (
        "# failed, exit code 1: executor exited with code 1\n"
        "INFO Executor: starting\nERROR Executor: lost the driver\nfs.s3a.secret.key=<redacted>\n"
    )
    assert f"10-upload-stderr-tail.sh> stderr tail uploaded to {target}" in outcome.stderr
