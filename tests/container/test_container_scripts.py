"""Pre-launch and post-exit scripts (README "Scripts") in the restricted container: read-only root, uid 1000770000
with gid 0, no capabilities, no_new_privs, the image's own lifecycle.

The scripts directories are mounted read-only where lifecycle looks by default (/opt/lifecycle/pre-launch.d and
post-exit.d, as an image would COPY them), a credential is a read-only file (a mounted Secret), and the only
writable places are the pod's emptyDirs and one volume standing in for an upload target. A pre-launch script
fetches the credential into the executor's environment through LIFECYCLE_ENV_FILE (a memfd: nothing written to
the root filesystem), the executor JVM runs with it, the kubelet's stop ends it, and a post-exit script uploads
the JVM's stderr tail with the reason, inside the grace period. The credential is never shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.proc import children
from tests.helpers.container.executor import StartContainer, executor, summary
from tests.helpers.container.figures import Figures
from tests.helpers.container.podman import UID

pytestmark = [pytest.mark.integration, pytest.mark.container, pytest.mark.jvm, pytest.mark.timeout(900)]

TOKEN = "s3cr3t-9f1c7e2a-token-value"
GRACE = 20  # seconds: the kubelet's grace period for this pod
PRE_LAUNCH = """#!/bin/sh
set -eu
echo "running as $(id -u):$(id -g) with env file $LIFECYCLE_ENV_FILE"
printf 'APP_TOKEN=%s\\n' "$(cat /var/run/secrets/app/token)" >> "$LIFECYCLE_ENV_FILE"
echo 'GREETING=hello = world' >> "$LIFECYCLE_ENV_FILE"
echo "fetched the token ($(wc -c < /var/run/secrets/app/token) bytes): $(cat /var/run/secrets/app/token)"
"""
POST_EXIT = """#!/bin/sh
set -eu
cp "$LIFECYCLE_CHILD_STDERR" /upload/stderr-tail
echo "$LIFECYCLE_EXIT_REASON $LIFECYCLE_CHILD_EXIT_CODE $(id -u)" > /upload/reason
echo uploaded
"""


def script_dirs(root: Path) -> tuple[Path, Path, Path, Path]:
    """(pre-launch.d, post-exit.d, the secret file's directory, the upload volume), laid out under `root`."""
    pre, post, secret, upload = root / "pre-launch.d", root / "post-exit.d", root / "secret", root / "upload"
    root.mkdir()
    for directory, name, text in ((pre, "10-fetch-token.sh", PRE_LAUNCH), (post, "10-upload.sh", POST_EXIT)):
        directory.mkdir()
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
        directory.chmod(0o755)
    secret.mkdir(mode=0o755)
    (secret / "token").write_text(TOKEN)
    (secret / "token").chmod(0o644)
    upload.mkdir()
    upload.chmod(0o777)  # an emptyDir-like volume the arbitrary uid may write
    root.chmod(0o755)
    return pre, post, secret, upload


def test_scripts_set_the_executors_environment_and_upload_after_it_exits_on_a_read_only_root(
    start_container: StartContainer, stub_classes: Path, tmp_path: Path, figures: Figures
) -> None:
    pre, post, secret, upload = script_dirs(tmp_path / "scripts")
    options = executor(stub_classes)
    options.binds = {pre: "/opt/lifecycle/pre-launch.d", post: "/opt/lifecycle/post-exit.d",
                     secret: "/var/run/secrets/app"}  # fmt: skip
    options.volumes = {upload: "/upload"}
    container = start_container(options)
    container.ready()

    (jvm,) = children(container.init_pid())
    environ = dict(
        item.partition("=")[::2] for item in Path(f"/proc/{jvm}/environ").read_text().split("\0") if item
    )
    assert environ["APP_TOKEN"] == TOKEN  # exported by the script, as if the pod had set it
    assert environ["GREETING"] == "hello = world"

    ended, killed = container.stop(GRACE)
    figures.note("11 scripts on a read-only root", summary(container, ended.status))
    assert not killed, "lifecycle did not exit inside the grace period"
    assert ended.status == 143, container.stderr()  # the JVM's SIGTERM status: the post-exit script changes nothing
    states = [dest for _, dest in container.transitions()]
    assert states == ["pre-launch", "env-resolved", "launching", "running", "post-exit", "terminated"], states

    # the JVM ran its shutdown hooks and exited with code 143: a failure by exit code, not a kill by a signal
    assert (upload / "reason").read_text().split() == ["failed", "143", str(UID)]
    assert (upload / "stderr-tail").is_file()
    output = container.stderr() + "\n".join(container.stdout_lines()) + container.termination_message()
    assert f"running as {UID}:0 with env file /proc/self/fd/" in output  # the memfd, not a file on disk
    assert TOKEN not in output, "the credential was shown"
    assert "uploaded" in output
    written = container.upper_entries()
    assert not [path for path, kind in written.items() if kind != "dir"], written  # only mount points
