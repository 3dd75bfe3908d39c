"""The anonymous-UID passwd entry (OpenShift-style arbitrary UIDs), for real.

Each run happens as root in a private mount namespace (`unshare --mount`), where a temporary copy of
/etc/passwd is bind-mounted over /etc/passwd (read-only when asked), libnss_wrapper.so can be hidden
by bind-mounting /dev/null over it (identity.find_nss_wrapper wants a regular file), and /tmp is an
empty tmpfs, so that "nothing is written to /tmp" is exact. lifecycle then runs as uid 1000770000,
gid 0 (`setpriv`), a uid with no passwd entry.

That uid cannot read the test's own interpreter under /root (mode 0700), so lifecycle runs from a
venv made once per session (the `anonymous_lifecycle` fixture, tests/helpers/identity.py).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.identity import ANONYMOUS_UID, SYSTEM_PATH, apt_install, installed_nss_wrappers, run

SPARK_HOME = "/opt/spark"
ENTRY = f"{ANONYMOUS_UID}:x:{ANONYMOUS_UID}:0:anonymous uid:{SPARK_HOME}:/bin/false"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),  # the first test also builds the session's venv (and may apt-get install)
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare --mount, mount --bind and setpriv"),
    pytest.mark.skipif(
        not all(shutil.which(tool, path=SYSTEM_PATH) for tool in ("unshare", "mount", "setpriv")),
        reason="needs util-linux's unshare, mount and setpriv",
    ),
]

# Runs as root inside the new mount namespace: $1 passwd copy, $2 1 for read-only, $3 where to list /tmp,
# then paths to hide up to "--", then the command.
NAMESPACE_SCRIPT = r"""
set -eu
passwd=$1 readonly=$2 listing=$3
shift 3
mount --bind "$passwd" /etc/passwd
if [ "$readonly" = 1 ]; then mount -o remount,ro,bind /etc/passwd; fi
while [ "$1" != -- ]; do mount --bind /dev/null "$1"; shift; done
shift
exec 3>"$listing"
mount -t tmpfs -o mode=1777 lifecycle-test-tmp /tmp
cd /
set +e
"$@" 3>&-
status=$?
ls -A /tmp >&3
exit "$status"
"""

# What the child sees: its passwd entry through NSS (None without one) and the identity variables.
PROBE = r"""
import json, os, pwd
try:
    entry = list(pwd.getpwuid(os.getuid()))
except KeyError:
    entry = None
names = ("LD_PRELOAD", "NSS_WRAPPER_PASSWD", "NSS_WRAPPER_GROUP")
print(json.dumps({"uid": os.getuid(), "passwd": entry, "env": {n: os.environ.get(n) for n in names}}))
"""
PROBE_COMMAND = ("python3", "-c", PROBE)
PROBE_ENTRY = [str(ANONYMOUS_UID), "x", ANONYMOUS_UID, 0, "anonymous uid", SPARK_HOME, "/bin/false"]


@dataclass(frozen=True)
class Run:
    """How one run in the namespace ended, and what /tmp held afterwards."""

    code: int
    stdout: str
    stderr: str
    tmp_listing: list[str]

    def probe(self) -> dict[str, object]:
        """The PROBE child's report (its last stdout line)."""
        report: dict[str, object] = json.loads(self.stdout.splitlines()[-1])
        return report


# ---- session fixtures (anonymous_lifecycle and install_env: tests/conftest.py) -----------------------------


@pytest.fixture(scope="session")
def nss_wrapper(install_env: dict[str, str]) -> str:
    """The installed libnss_wrapper.so (Debian's libnss-wrapper), installed with apt-get if missing."""
    if not installed_nss_wrappers() and shutil.which("apt-get", path=SYSTEM_PATH):
        apt_install("libnss-wrapper", install_env)
    found = installed_nss_wrappers()
    if not found:
        pytest.skip("libnss_wrapper.so is not installed and `apt-get install libnss-wrapper` did not install it")
    return found[0]


# ---- per-test fixtures -----------------------------------------------------------------------------------


@dataclass
class Namespace:
    """Runs lifecycle as the anonymous uid against a passwd copy, in a fresh private mount namespace."""

    lifecycle: str
    passwd: Path
    listing: Path
    original: str

    def run(self, *command: str, readonly: bool, hide_nss_wrapper: bool, **env: str) -> Run:
        hidden = installed_nss_wrappers() if hide_nss_wrapper else []
        argv = [
            "unshare", "--mount", "--propagation", "private",
            "/bin/sh", "-c", NAMESPACE_SCRIPT, "namespace",
            str(self.passwd), "1" if readonly else "0", str(self.listing), *hidden, "--",
            "setpriv", f"--reuid={ANONYMOUS_UID}", "--regid=0", "--clear-groups",
            self.lifecycle, *command,
        ]  # fmt: skip
        environment = {"PATH": SYSTEM_PATH, "SPARK_HOME": SPARK_HOME, "LIFECYCLE_TERMINATION_LOG": "", **env}
        result = run(argv, environment)
        listing = self.listing.read_text().split() if self.listing.exists() else []
        return Run(result.returncode, result.stdout, result.stderr, listing)

    def passwd_text(self) -> str:
        return self.passwd.read_text()


@pytest.fixture
def namespace(anonymous_lifecycle: str, tmp_path: Path) -> Namespace:
    """A group-writable copy of /etc/passwd (as in Spark's image: group root, g+w) to mount over the real one."""
    passwd = tmp_path / "passwd"
    shutil.copyfile("/etc/passwd", passwd)
    passwd.chmod(0o664)
    os.chown(passwd, 0, 0)
    original = passwd.read_text()
    assert f"\n{ANONYMOUS_UID}:" not in "\n" + original, "the host already has an entry for the test uid"
    return Namespace(anonymous_lifecycle, passwd, tmp_path / "tmp-listing", original)


# ---- no nss_wrapper: append, or warn -------------------------------------------------------------------


def test_entry_is_appended_when_passwd_is_writable(namespace: Namespace, both_run_modes: str) -> None:
    """Without nss_wrapper and with a writable /etc/passwd, upstream's line should be appended once."""
    result = namespace.run(*PROBE_COMMAND, readonly=False, hide_nss_wrapper=True, LIFECYCLE_RUN_MODE=both_run_modes)

    assert result.code == 0, result.stderr
    assert namespace.passwd_text() == namespace.original + ENTRY + "\n"
    probe = result.probe()
    assert probe["passwd"] == PROBE_ENTRY
    assert probe["env"] == {"LD_PRELOAD": None, "NSS_WRAPPER_PASSWD": None, "NSS_WRAPPER_GROUP": None}


def test_entry_is_not_appended_again_on_restart(namespace: Namespace) -> None:
    """A second start as the same uid should find the entry and leave /etc/passwd as the first start left it."""
    first = namespace.run("id", "-un", readonly=False, hide_nss_wrapper=True)
    second = namespace.run("id", "-un", readonly=False, hide_nss_wrapper=True)

    assert (first.code, second.code) == (0, 0), second.stderr
    assert namespace.passwd_text().count(f"\n{ANONYMOUS_UID}:") == 1
    assert namespace.passwd_text() == namespace.original + ENTRY + "\n"
    assert first.stdout == second.stdout == f"{ANONYMOUS_UID}\n"


def test_spark_user_name_becomes_the_gecos_field(namespace: Namespace) -> None:
    """SPARK_USER_NAME should replace 'anonymous uid' in the appended entry's GECOS field."""
    result = namespace.run("true", readonly=False, hide_nss_wrapper=True, SPARK_USER_NAME="alice")

    assert result.code == 0, result.stderr
    appended = namespace.passwd_text().removeprefix(namespace.original)
    assert appended == f"{ANONYMOUS_UID}:x:{ANONYMOUS_UID}:0:alice:{SPARK_HOME}:/bin/false\n"


def test_read_only_passwd_without_nss_wrapper_warns_and_runs(namespace: Namespace, both_run_modes: str) -> None:
    """With neither a writable /etc/passwd nor nss_wrapper, lifecycle should warn once and run the command anyway."""
    result = namespace.run(*PROBE_COMMAND, readonly=True, hide_nss_wrapper=True, LIFECYCLE_RUN_MODE=both_run_modes)

    assert result.code == 0, result.stderr
    assert namespace.passwd_text() == namespace.original
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1, result.stderr
    assert f"uid {ANONYMOUS_UID} has no passwd entry" in warnings[0]
    assert "not writable" in warnings[0]
    probe = result.probe()
    assert (probe["uid"], probe["passwd"]) == (ANONYMOUS_UID, None)
    assert "Traceback" not in result.stderr


# ---- nss_wrapper ----------------------------------------------------------------------------------------


def test_nss_wrapper_gives_the_entry_without_writing_anything(
    namespace: Namespace, nss_wrapper: str, both_run_modes: str
) -> None:
    """With nss_wrapper and a read-only /etc/passwd, the child should see the entry and no file should be written."""
    result = namespace.run(*PROBE_COMMAND, readonly=True, hide_nss_wrapper=False, LIFECYCLE_RUN_MODE=both_run_modes)

    assert result.code == 0, result.stderr
    probe = result.probe()
    assert probe["passwd"] == PROBE_ENTRY
    env = probe["env"]
    assert isinstance(env, dict)
    assert env["LD_PRELOAD"] == nss_wrapper
    assert str(env["NSS_WRAPPER_PASSWD"]).startswith("/proc/")
    assert str(env["NSS_WRAPPER_GROUP"]).startswith("/proc/")
    assert namespace.passwd_text() == namespace.original
    assert result.tmp_listing == []


def test_nss_wrapper_is_preferred_to_a_writable_passwd(namespace: Namespace, nss_wrapper: str) -> None:
    """With nss_wrapper installed, lifecycle should not append to /etc/passwd even when it is writable."""
    result = namespace.run(*PROBE_COMMAND, readonly=False, hide_nss_wrapper=False)

    assert result.code == 0, result.stderr
    assert result.probe()["passwd"] == PROBE_ENTRY
    assert namespace.passwd_text() == namespace.original
    assert result.tmp_listing == []


def test_nss_wrapper_entry_reaches_grandchildren(namespace: Namespace, nss_wrapper: str, both_run_modes: str) -> None:
    """A process the command starts (here sh's `id`) should resolve the anonymous uid's name too."""
    result = namespace.run(
        "sh", "-c", "id -un; echo done", readonly=True, hide_nss_wrapper=False, LIFECYCLE_RUN_MODE=both_run_modes
    )

    assert result.code == 0, result.stderr
    assert result.stdout == f"{ANONYMOUS_UID}\ndone\n"
