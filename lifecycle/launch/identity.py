"""The anonymous-UID passwd entry (OpenShift's arbitrary UIDs), without writing to a read-only root.

Order of preference when the current uid has no passwd entry:
1. nss_wrapper (libnss_wrapper.so installed): LD_PRELOAD plus NSS_WRAPPER_PASSWD/NSS_WRAPPER_GROUP
   pointing at an in-memory file (memfd) that the container's processes read through /proc. Nothing is
   written to any filesystem. (spark-docker SPARK-43368 writes two mktemp files instead.)
2. append the entry to /etc/passwd when it is writable, as upstream's in-tree entrypoint does;
3. otherwise a warning; the JVM then reports user.name=? and Hadoop logins may fail.

The entry is upstream's: `<uid>:x:<uid>:<gid>:<SPARK_USER_NAME or "anonymous uid">:<SPARK_HOME>:/bin/false`
(spark-docker's printf puts the literal text `${SPARK_USER_NAME:-anonymous uid}` in GECOS: fixed here).
Every mode gets the entry, pass-through included, as in-tree: a pass-through spark-submit or
spark-shell needs a user name just as much, and the nss_wrapper path costs nothing on disk.
"""

from __future__ import annotations

import glob
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

NSS_WRAPPER_GLOBS = (
    "/usr/lib/*/libnss_wrapper.so",
    "/usr/lib/libnss_wrapper.so",
    "/lib/*/libnss_wrapper.so",
    "/lib/libnss_wrapper.so",
)  # spark-docker's search, in order
PASSWD = "/etc/passwd"
GROUP = "/etc/group"

PRESENT, NSS_WRAPPER, APPEND, NONE = "present", "nss_wrapper", "append", "none"


@dataclass(frozen=True)
class Identity:
    """What to do about the current uid's passwd entry; `action` is one of the four constants."""

    uid: int
    gid: int
    action: str
    entry: str = ""
    library: str = ""


def passwd_entry(uid: int, gid: int, user_name: str | None, spark_home: str | None) -> str:
    """Upstream's line, with `${SPARK_USER_NAME:-anonymous uid}` expanded (unset or empty → default)."""
    return f"{uid}:x:{uid}:{gid}:{user_name or 'anonymous uid'}:{spark_home or ''}:/bin/false"


def choose_identity(
    uid: int, gid: int, has_entry: bool, entry: str, library: str | None, passwd_writable: bool
) -> Identity:
    """Pure decision: nss_wrapper, then append, then nothing."""
    if has_entry:
        return Identity(uid, gid, PRESENT)
    if library:
        return Identity(uid, gid, NSS_WRAPPER, entry, library)
    if passwd_writable:
        return Identity(uid, gid, APPEND, entry)
    return Identity(uid, gid, NONE, entry)


def find_nss_wrapper() -> str | None:
    for pattern in NSS_WRAPPER_GLOBS:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                return path
    return None


def detect_identity(env: Mapping[str, str]) -> Identity:
    """Look up the current uid and decide what to do about its passwd entry."""
    uid, gid = os.getuid(), os.getgid()
    try:
        pwd.getpwuid(uid)
        has_entry = True
    except KeyError:
        has_entry = False
    entry = passwd_entry(uid, gid, env.get("SPARK_USER_NAME"), env.get("SPARK_HOME"))
    library = None if has_entry else find_nss_wrapper()
    return choose_identity(uid, gid, has_entry, entry, library, os.access(PASSWD, os.W_OK))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError:  # no /etc/group in a distroless image: the wrapper file then holds ours alone
        return ""
    return text if not text or text.endswith("\n") else text + "\n"


def _memfd_path(name: str, content: str) -> str:
    """An in-memory file readable by this process's descendants as /proc/<pid>/fd/<n>.

    The fd is inherited (no CLOEXEC) so it stays open as long as lifecycle (or the exec'd command) lives;
    the /proc/<pid> path also serves grandchildren that the JVM starts with closed fds (pyspark workers).
    """
    fd = os.memfd_create(name, 0)
    os.write(fd, content.encode("utf-8", "surrogateescape"))
    path = f"/proc/{os.getpid()}/fd/{fd}"
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        same = False
    return path if same else f"/proc/self/fd/{fd}"  # a /proc from another PID namespace


def apply_identity(identity: Identity, env: Mapping[str, str], dry_run: bool) -> tuple[dict[str, str], str]:
    """Carry out the decision; returns (variables to add to the child's environment, a log message)."""
    if identity.action == PRESENT:
        return {}, f"uid {identity.uid} has a passwd entry"
    if identity.action == NONE:
        return {}, (
            f"uid {identity.uid} has no passwd entry, no libnss_wrapper.so is installed and {PASSWD} "
            "is not writable: the JVM will see user.name=? (install libnss-wrapper in the image)"
        )
    if identity.action == APPEND:
        if not dry_run:
            fd = os.open(PASSWD, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, (identity.entry + "\n").encode())  # one O_APPEND write: never half a line
            finally:
                os.close(fd)
        return {}, f"appended '{identity.entry}' to {PASSWD}"
    group_line = f"{identity.gid}:x:{identity.gid}:\n"
    group = _read(GROUP)
    if any(line.split(":")[2:3] == [str(identity.gid)] for line in group.splitlines()):
        group_line = ""
    if dry_run:
        passwd_path = group_path = "/proc/<pid>/fd/<memfd>"
    else:
        passwd_path = _memfd_path("lifecycle-passwd", _read(PASSWD) + identity.entry + "\n")
        group_path = _memfd_path("lifecycle-group", group + group_line)
    preload = env.get("LD_PRELOAD", "")
    additions = {
        "LD_PRELOAD": f"{identity.library}:{preload}" if preload else identity.library,
        "NSS_WRAPPER_PASSWD": passwd_path,
        "NSS_WRAPPER_GROUP": group_path,
    }
    return (
        additions,
        f"nss_wrapper gives uid {identity.uid} the entry '{identity.entry}' (nothing written to disk)",
    )
