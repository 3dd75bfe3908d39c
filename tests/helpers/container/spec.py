"""The OCI runtime config (config.json) of a restricted executor pod, as containerd would hand it to runc.

Read-only root, uid 1000770000 with gid 0 and no supplementary groups, no capabilities in any set, no_new_privs,
a memory limit, emptyDirs (tmpfs) at /tmp and the working directory, a new network namespace (runc brings its
loopback up), the kubelet's /dev/termination-log bind mount, and SPARK_HOME, the executor classes and
lifecycle's venv bind-mounted read-only (the venv at its host path: console scripts' shebangs are absolute).

`Options.host_network` is a pod with `hostNetwork: true` instead: containerd's CRI plugin then joins the
host's network *and* UTS namespaces (no hostname of its own, HOSTNAME is the node's), everything else the same.
"""

from __future__ import annotations

import copy
import resource
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_PARENT = "/lifecycle-tests"
UID, GID = 1000770000, 0  # OpenShift's arbitrary uid, group root (restricted SCC)
SPARK_HOME = "/opt/spark"
WORK_DIR = f"{SPARK_HOME}/work-dir"
CLASSES = "/opt/executor-classes"
TERMINATION_LOG = "/dev/termination-log"
MIB = 1 << 20
# runc's default mounts (`runc spec`, runc 1.1), what every container runtime gives.
DEFAULT_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]  # fmt: skip
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]  # fmt: skip
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


@dataclass(frozen=True)
class Assets:
    """What every container of the session shares: the image, lifecycle's venv, SPARK_HOME and the JRE."""

    image: Path
    venv: Path
    spark_home: Path  # on the host: jars/ (empty) and work-dir/ (a mount point), bind-mounted at SPARK_HOME
    java_home: str  # in the image

    @property
    def lifecycle(self) -> str:
        return str(self.venv / "bin" / "lifecycle")

    @property
    def hook(self) -> str:
        return str(self.venv / "bin" / "lifecycle-decommission")


@dataclass
class Options:
    """One container's differences: PID 1's args and env, its limit, and what its pod spec or image lacks."""

    args: Sequence[str]
    env: Mapping[str, str]
    classes: Path | None = None  # compiled executor classes, mounted at CLASSES (SPARK_CLASSPATH)
    memory: int = 512 * MIB
    termination_log: bool = True  # the kubelet's bind mount at /dev/termination-log
    tmp_tmpfs: bool = True  # an emptyDir at /tmp
    cwd: str = WORK_DIR
    whiteouts: Sequence[str] = ()  # image paths deleted by the top layer (overlayfs whiteouts)
    replaced: Mapping[str, tuple[bytes, int]] = field(default_factory=dict)  # path: (content, mode) in that layer
    spark_home: Path | None = None  # mounted at SPARK_HOME instead of the assets' (needs a work-dir/ in it)
    binds: Sequence[Path] = ()  # more host directories, bind-mounted read-only at the same path
    host_network: bool = False  # hostNetwork: the host's network and UTS namespaces
    capture_stderr: bool = False  # stderr through a pipe read line by line (Container.err), not into a file


def nofile_limit() -> int:
    """RLIMIT_NOFILE for the container: the host's hard limit (root here lacks CAP_SYS_RESOURCE to go above)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)


def container_spec(assets: Assets, options: Options, rootfs: Path, cid: str, termination_log: Path) -> dict[str, Any]:
    """The OCI runtime config (config.json) for one container."""
    hostname = socket.gethostname() if options.host_network else cid
    env = {"PATH": SYSTEM_PATH, "HOSTNAME": hostname, "HOME": "/", **options.env}  # containerd: HOME=/, no entry
    mounts = copy.deepcopy(DEFAULT_MOUNTS)
    if options.tmp_tmpfs:
        mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777"]})  # fmt: skip
    mounts.append({"destination": SPARK_HOME, "type": "bind", "source": str(options.spark_home or assets.spark_home),
                   "options": ["rbind", "ro", "nosuid", "nodev"]})  # fmt: skip
    mounts.append({"destination": WORK_DIR, "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]})  # fmt: skip
    if options.classes is not None:
        mounts.append({"destination": CLASSES, "type": "bind", "source": str(options.classes),
                       "options": ["rbind", "ro", "nosuid", "nodev"]})  # fmt: skip
    for path in (assets.venv, *options.binds):
        mounts.append({"destination": str(path), "type": "bind", "source": str(path),
                       "options": ["rbind", "ro", "nosuid", "nodev"]})  # fmt: skip
    if options.termination_log:
        mounts.append({"destination": TERMINATION_LOG, "type": "bind", "source": str(termination_log),
                       "options": ["rbind", "rw"]})  # fmt: skip
    nofile = nofile_limit()
    namespaces = ("pid", "ipc", "mount") if options.host_network else ("pid", "network", "ipc", "uts", "mount")
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": UID, "gid": GID},
            "args": list(options.args),
            "env": [f"{name}={value}" for name, value in env.items()],
            "cwd": options.cwd,
            "capabilities": {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "mounts": mounts,
        "linux": {
            "cgroupsPath": f"{CGROUP_PARENT}/{cid}",
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": options.memory}},
            "namespaces": [{"type": t} for t in namespaces],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }
    if not options.host_network:  # runc refuses a hostname without a UTS namespace of the container's own
        spec["hostname"] = cid
    return spec
