"""Container hardening rows (issue #8 item 2), run where they matter: in a restricted container of the built image,
under podman (tests/helpers/container/podman.py).

Each row takes one thing away that a Kubernetes pod or an image may lack: the kubelet's termination-log
mount, a writable TMPDIR and working directory, libnss-wrapper (deleted by a derived image's layer, built with
`podman build`: tests/helpers/container/image.py), a `java` at JAVA_HOME (a JAVA_HOME without one, or a derived
image whose java lost its exec bit). lifecycle should go on where it can and fail with the README's exit code
and one line where it cannot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.image.build import Image
from tests.helpers.container.executor import StartContainer, events, executor, summary
from tests.helpers.container.figures import Figures
from tests.helpers.container.podman import HOOK, JAVA_HOME, SPARK_HOME, UID
from tests.helpers.supervised import no_traceback

# The first test may also build the images (minutes; examples/image bounds each step): hence the long timeout.
pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.jvm, pytest.mark.timeout(900)]

EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND = 126, 127  # README's exit codes (tini, bash)
WRITABLE_PROBE = """
for d in /tmp "$PWD" "$TMPDIR"; do
    if touch "$d/probe" 2>/dev/null; then echo "$d: writable"; else echo "$d: read-only"; fi
done
"""


def test_without_termination_log_lifecycle_runs_and_exits_with_the_jvm_code(
    start_container: StartContainer, probe_classes: Path, figures: Figures
) -> None:
    """With no /dev/termination-log mounted, lifecycle should run the JVM and exit with its code, quietly."""
    options = executor(probe_classes, PROBE_EXIT="3")
    options.termination_log = False
    container = start_container(options)
    ended = container.wait()
    figures.note("6 no termination log", summary(container, ended.status))

    assert ended.status == 3, container.stderr()
    assert "done" in container.stdout_lines()
    log = container.log()
    assert [r for r in log if r["level"] in ("warning", "error")] == []
    terminated = events(log, "terminated")[0]
    assert (terminated["exit_code"], terminated["termination_log"]) == (3, False)
    no_traceback(container.stderr())


def test_unwritable_tmpdir_and_cwd_do_not_stop_the_executor_or_its_decommission(
    start_container: StartContainer, stub_classes: Path, figures: Figures
) -> None:
    """With no emptyDir at /tmp, cwd=/ and a read-only TMPDIR, the executor should start and drain as usual."""
    options = executor(stub_classes, TMPDIR="/var/tmp")
    options.tmp_tmpfs = False
    options.cwd = "/"
    container = start_container(options)
    container.ready()
    probe = container.exec(["/bin/sh", "-c", WRITABLE_PROBE])
    assert probe.wait().status == 0, probe.stderr()
    assert probe.stdout().splitlines() == ["/tmp: read-only", "/: read-only", "/var/tmp: read-only"]

    hook = container.exec([HOOK])
    hooked, ended = hook.wait(), container.wait()
    figures.note("6 read-only TMPDIR and cwd", f"hook exit {hooked.status}; " + summary(container, ended.status))

    assert (hooked.status, ended.status) == (0, 0), container.stderr() + hook.stderr()
    assert container.stdout_lines()[-1] == "drained"
    assert [r for r in container.log() if r["level"] == "error"] == []
    no_traceback(container.stderr())


def test_without_nss_wrapper_and_a_read_only_passwd_lifecycle_warns_once_and_runs(
    start_container: StartContainer, no_nss_wrapper_image: Image, probe_classes: Path, figures: Figures
) -> None:
    """With libnss-wrapper deleted and /etc/passwd read-only, lifecycle should warn in one line; user.name is `?`.
    (The derived image's build fails unless it found a libnss_wrapper.so to delete.)"""
    options = executor(probe_classes)
    options.image = no_nss_wrapper_image.tag
    container = start_container(options)
    ended = container.wait()
    figures.note("6 no nss_wrapper", summary(container, ended.status))

    assert ended.status == 0, container.stderr()
    assert "user.name=?" in container.stdout_lines()
    warnings = [r for r in container.log() if r["level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert f"uid {UID} has no passwd entry, no libnss_wrapper.so is installed" in str(warnings[0]["message"])
    assert "not writable" in str(warnings[0]["message"])
    assert not [path for path in container.upper_entries() if path.startswith("/etc")]
    no_traceback(container.stderr())


@pytest.mark.parametrize("broken", ["no-java", "java-not-executable"])
def test_missing_or_unexecutable_java_fails_with_the_documented_code_and_one_line(
    start_container: StartContainer,
    java_not_executable_image: Image,
    stub_classes: Path,
    figures: Figures,
    broken: str,
) -> None:
    """JAVA_HOME without bin/java should exit 127, a java without the exec bit 126: one error line, no traceback."""
    if broken == "no-java":  # a directory that exists, without bin/java
        options = executor(stub_classes, LIFECYCLE_LOG_FORMAT="text", JAVA_HOME=SPARK_HOME)
        java, expected, reason = f"{SPARK_HOME}/bin/java", EXIT_NOT_FOUND, "No such file or directory"
    else:  # the image's own java, from a derived image's layer where it lost its exec bit
        options = executor(stub_classes, LIFECYCLE_LOG_FORMAT="text")
        java, expected, reason = f"{JAVA_HOME}/bin/java", EXIT_NOT_EXECUTABLE, "Permission denied"
        options.image = java_not_executable_image.tag
    container = start_container(options)
    ended = container.wait()
    stderr = container.stderr()

    assert ended.status == expected, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    figures.note(f"6 {broken}", f"container exit {ended.status}; {errors}")
    assert len(errors) == 1, stderr
    assert f"cannot execute {java}: {reason}" in errors[0]
    assert f"exit code: {expected}" in container.termination_message()
    assert container.stdout_lines() == []
    no_traceback(stderr)
