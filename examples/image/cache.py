"""The build cache under `<repo>/.container-cache`: bounded commands, one builder at a time, stale entries pruned.

Shared by the image builds (examples/image/build.py) and the container tests' helpers. Builds happen under an
exclusive flock on `<repo>/.container-cache/lock`, so concurrent sessions build once; a build goes into a
temporary directory renamed into place only when complete, so an interrupted build never leaves half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".container-cache"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KILL_WAIT = 10.0  # seconds for a SIGKILLed command to be reaped
STALE_AFTER = 3600.0  # seconds unused after which another key's entry is removed


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float, stdin: int | None = None) -> str:
    """Run a command to completion, bounded; its output on success, RuntimeError with the output otherwise.

    The command gets a process group of its own, killed whole (by its id) if anything interrupts the wait
    (the bound, pytest-timeout, ^C): debootstrap and podman fork faster than a walk of their tree can follow.
    """
    process = subprocess.Popen(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL if stdin is None else stdin, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(process.pid, signal.SIGKILL)
        assert process.stdout is not None
        process.stdout.close()
        process.wait(KILL_WAIT)
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}:\n{output[-4000:]}")
    return output


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """Exclusive use of the cache for building (blocks, without polling, until another session is done)."""
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(parts: Sequence[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()[:16]


def files_digest(paths: Sequence[Path]) -> str:
    """A key for files' names (relative to the repository) and contents."""
    return digest([str(p.relative_to(REPO_ROOT)).encode() + b"\0" + p.read_bytes() for p in paths])


def unmount_under(path: Path) -> None:
    """Lazily unmount whatever is mounted at or below `path` (debootstrap mounts /proc in its target)."""
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    for point in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, timeout=30, capture_output=True)


def remove(path: Path) -> None:
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def mark_used(path: Path) -> None:
    path.with_name(path.name + ".used").touch()  # its mtime: when a session last used the entry


def prune(prefix: str, keep: Path) -> None:
    """Remove this cache's other `prefix-*` entries unused for STALE_AFTER (the caller holds the lock)."""
    now = time.time()
    for marker in CACHE.glob(f"{prefix}-*.used"):
        entry = marker.with_name(marker.name.removesuffix(".used"))
        if entry != keep and now - marker.stat().st_mtime > STALE_AFTER:
            remove(entry)
            marker.unlink(missing_ok=True)


def readable_by_all(root: Path) -> None:
    """a+rX over a tree: a container's arbitrary uid reads it whatever umask it was built with."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o111 else 0))
