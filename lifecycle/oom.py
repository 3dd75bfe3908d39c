"""Was the child OOM-killed? The kernel counts OOM kills per memory cgroup; lifecycle reads the counter.

A JVM over the container's memory limit dies of SIGKILL, which on its own looks like any `kill -9`. The
memory cgroup's `oom_kill` counter (cgroup v2 `memory.events`; v1 `memory.oom_control`, kernel 4.13+) tells
them apart: lifecycle reads it before it starts the child and again when the child dies of SIGKILL, and says
OOMKilled in the log and the termination message when it went up.

The cgroup is found from /proc/self/cgroup and /proc/self/mountinfo, so it works on the host (a nested
cgroup path under the mount), in a container with a cgroup namespace (`/`), and in a runc container on
cgroup v1, where the container's own cgroup directory is bind-mounted at /sys/fs/cgroup/memory. Every
failure to read means "unknown" (None): the exit is then reported as a plain SIGKILL, as before.
"""

from __future__ import annotations

import os


def memory_cgroup_dir(proc: str = "/proc/self") -> tuple[str, str] | None:
    """(directory, version) of this process's memory cgroup as mounted here, or None when there is none."""
    try:
        with open(f"{proc}/cgroup") as handle:
            memberships = handle.read().splitlines()
        with open(f"{proc}/mountinfo") as handle:
            mounts = handle.read().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    for line in mounts:
        # id parent major:minor root mountpoint options [optional…] - fstype source superoptions
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint, fstype = unescape(fields[3]), unescape(fields[4]), tail[0]
        if v1_path is not None and fstype == "cgroup" and "memory" in tail[2].split(","):
            found = inside(mountpoint, root, v1_path)
            if found and os.path.exists(os.path.join(found, "memory.oom_control")):
                return found, "v1"
        elif v1_path is None and v2_path is not None and fstype == "cgroup2":
            found = inside(mountpoint, root, v2_path)
            if found and os.path.exists(os.path.join(found, "memory.events")):
                return found, "v2"
    return None


MOUNTINFO_ESCAPES = (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\"))


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo octal."""
    for escaped, char in MOUNTINFO_ESCAPES:
        field = field.replace(escaped, char)
    return field


def inside(mountpoint: str, root: str, path: str) -> str | None:
    """Where cgroup `path` is under a mount of cgroup directory `root` at `mountpoint`; None if not under it.

    runc on cgroup v1 bind-mounts the container's cgroup (root = its path) while /proc/self/cgroup still
    names that path, or `/` with a cgroup namespace: both land on the mount point itself.
    """
    if path == root or path == "/":
        return mountpoint
    prefix = root.rstrip("/") + "/"
    if root != "/" and not path.startswith(prefix):
        return None
    return os.path.join(mountpoint, path[len(prefix) :] if root != "/" else path.lstrip("/"))


def oom_kills(where: tuple[str, str] | None) -> int | None:
    """The cgroup's oom_kill counter, or None when it cannot be read."""
    if where is None:
        return None
    directory, version = where
    name = "memory.oom_control" if version == "v1" else "memory.events"
    try:
        with open(os.path.join(directory, name)) as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def memory_limit(where: tuple[str, str] | None) -> int | None:
    """The cgroup's memory limit in bytes, or None when unlimited or unreadable."""
    if where is None:
        return None
    directory, version = where
    name = "memory.limit_in_bytes" if version == "v1" else "memory.max"
    try:
        with open(os.path.join(directory, name)) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) >= 1 << 62:  # "max" (v2) or the v1 page-rounded "unlimited"
        return None
    return int(text)


def oom_group(where: tuple[str, str] | None) -> bool | None:
    """cgroup v2's memory.oom.group: True when an OOM kill ends every process of the cgroup together.

    The kubelet sets it on every container's cgroup since Kubernetes 1.28 (cgroup v2). Then the OOM killer
    takes lifecycle with the JVM, so lifecycle cannot report OOMKilled itself; the kubelet does (the
    container's `reason: OOMKilled`). None: cgroup v1 (no such setting), or unreadable.
    """
    if where is None or where[1] != "v2":
        return None
    try:
        with open(os.path.join(where[0], "memory.oom.group")) as handle:
            return handle.read().strip() == "1"
    except OSError:
        return None


def describe_oom_group(group: bool | None) -> str:
    """One line for the dry run and the debug log."""
    if group is None:
        return "memory.oom.group: not applicable (cgroup v1 or unreadable): lifecycle reports OOMKilled itself"
    if group:
        return (
            "memory.oom.group=1: an OOM kill ends every process of the container, lifecycle included; "
            "the kubelet reports OOMKilled, lifecycle cannot write a termination message for it"
        )
    return "memory.oom.group=0: the OOM killer takes the JVM alone; lifecycle reports OOMKilled"


class OomWatch:
    """The counter before the child started, compared when it dies of SIGKILL."""

    def __init__(self, before: int | None = None, where: tuple[str, str] | None = None) -> None:
        self.where = where
        self.before = before

    @classmethod
    def start(cls) -> OomWatch:
        where = memory_cgroup_dir()
        return cls(oom_kills(where), where)

    def killed(self) -> str | None:
        """The OOMKilled reason when the counter went up since start, else None."""
        after = oom_kills(self.where)
        if self.before is None or after is None or after <= self.before:
            return None
        limit = memory_limit(self.where)
        shown = f"memory limit {limit / (1 << 20):g} MiB" if limit is not None else "no memory limit set here"
        return (
            f"OOMKilled: the kernel's OOM killer ended it ({shown}; the cgroup's oom_kill count went "
            f"{self.before} -> {after}): raise the pod's memory limit or lower the JVM's heap and overhead"
        )
