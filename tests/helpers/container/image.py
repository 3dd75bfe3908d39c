"""What a container test needs on the host, built once and cached: the image, lifecycle's venv, the Java classes.

* The image: a Debian bookworm root filesystem from `debootstrap --variant=minbase` with python3, a headless
  JRE 17 and libnss-wrapper, as a Spark image has them. Kept in `<repo>/.container-cache/image-<key>`, where
  the key hashes what goes into it; built in a temporary directory and renamed into place only when complete,
  so an interrupted build never leaves half an image. Containers get it as an overlay's lower layer.
* lifecycle: `pip install .` (not editable: the venv must stand alone) into a venv made with Debian's
  /usr/bin/python3 (the image's python3 is the same bookworm 3.11) at `<repo>/.container-cache/venv-<key>`,
  keyed by lifecycle's sources; containers bind-mount it read-only at the same path, because console
  scripts' shebangs are absolute.
* pyspark: `pip install pyspark==<PYSPARK_VERSION>` (a whole Spark distribution, examples/spark/install.py)
  into another venv of Debian's /usr/bin/python3 at `<repo>/.container-cache/pyspark-<version>-<key>` (the project's
  .spark-venv is made from an interpreter under /root, mode 0700, that the container's uid cannot run).
  Its python runs the PySpark workers inside the container, bind-mounted read-only at the same path, and
  its pyspark/ directory is the container's SPARK_HOME. Marked `.complete` only when whole.
* Java classes: tests/helpers/decom.java (the executor stub), probe.java and hog.java (here), compiled
  with the host's javac for release 17.

Builds happen under an exclusive flock on `<repo>/.container-cache/lock`, so concurrent sessions build once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from examples.spark import install

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE = REPO_ROOT / ".container-cache"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SUITE = "bookworm"
PACKAGES = ("python3", "openjdk-17-jre-headless", "libnss-wrapper")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT = 600.0  # seconds for debootstrap on a slow mirror (~50 s here, cold)
INSTALL_TIMEOUT = 300.0  # seconds for venv creation and pip install (~8 s here)
COMPILE_TIMEOUT = 120.0
KILL_WAIT = 10.0  # seconds for a SIGKILLed build to be reaped
STALE_AFTER = 3600.0  # seconds unused after which another key's image or venv is removed


@dataclass(frozen=True)
class Built:
    """A cached artefact and how long this session spent building it (0 when it was cached)."""

    path: Path
    seconds: float


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> str:
    """Run a command to completion, bounded; its output on success, AssertionError with the output otherwise.

    The command gets a process group of its own, killed whole (by its id) if anything interrupts the wait
    (the bound, pytest-timeout, ^C): debootstrap forks faster than a walk of its process tree can follow.
    """
    process = subprocess.Popen(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
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
        raise AssertionError(f"{' '.join(argv)} exited {process.returncode}:\n{output[-4000:]}")
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


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 .sources, or a one-line sources.list), for debootstrap."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            if SUITE in suites and uris and "main" in fields.get("Components", "").split():
                return uris[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt").glob("sources.list.d/*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
                    return words[1]
    return DEFAULT_MIRROR


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


def image_key() -> str:
    return digest([SUITE.encode(), b"minbase", *(p.encode() for p in PACKAGES)])


def build_image(env: Mapping[str, str]) -> Built:
    """The cached root filesystem, built (debootstrap, then `apt-get clean`) if missing."""
    image = CACHE / f"image-{image_key()}"
    with cache_lock():
        for stale in CACHE.glob("build-*"):  # a build interrupted earlier; no build runs while we hold the lock
            remove(stale)
        took = 0.0
        if not image.is_dir():
            started = time.monotonic()
            build = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
            try:
                rootfs = build / "rootfs"
                run(
                    ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs),
                     debian_mirror()],
                    env, BUILD_TIMEOUT,
                )  # fmt: skip
                run(["chroot", str(rootfs), "apt-get", "clean"], env, INSTALL_TIMEOUT)
                unmount_under(rootfs)
                (rootfs / "tmp").chmod(0o1777)  # a tmpfs mounted here takes this directory's mode
                rootfs.chmod(0o755)
                rootfs.rename(image)
            finally:
                remove(build)
            took = time.monotonic() - started
        mark_used(image)
        prune("image", image)
    return Built(image, took)


def lifecycle_sources() -> list[Path]:
    return [REPO_ROOT / "pyproject.toml", *sorted((REPO_ROOT / "lifecycle").rglob("*.py"))]


def venv_key() -> str:
    parts = [str(p.relative_to(REPO_ROOT)).encode() + b"\0" + p.read_bytes() for p in lifecycle_sources()]
    return digest(parts)


def build_venv(env: Mapping[str, str]) -> Built:
    """lifecycle installed (non-editable) into a venv of Debian's python3; rebuilt when its sources change."""
    venv = CACHE / f"venv-{venv_key()}"
    complete = venv / ".complete"
    with cache_lock():
        took = 0.0
        if not complete.exists():
            started = time.monotonic()
            remove(venv)  # an earlier build that did not finish
            run(["/usr/bin/python3", "-m", "venv", str(venv)], env, INSTALL_TIMEOUT)
            with tempfile.TemporaryDirectory(prefix="lifecycle-source-") as source:
                # a copy: pip's in-tree build must not leave build/ or egg-info in the work tree
                shutil.copytree(REPO_ROOT / "lifecycle", Path(source, "lifecycle"),
                                ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
                for name in ("pyproject.toml", "README.md", "LICENSE"):
                    if (REPO_ROOT / name).exists():
                        shutil.copy2(REPO_ROOT / name, Path(source, name))
                run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", source], env, INSTALL_TIMEOUT)
            readable_by_all(venv)
            complete.touch()
            took = time.monotonic() - started
        mark_used(venv)
        prune("venv", venv)
    return Built(venv, took)


@dataclass(frozen=True)
class Pyspark:
    """The cached pyspark venv: its interpreter (PYSPARK_PYTHON) and the distribution in it (SPARK_HOME)."""

    venv: Path
    spark_home: Path
    seconds: float  # spent building it this session (0 when it was cached)

    @property
    def python(self) -> Path:
        return install.spark_python(self.venv)


def pyspark_key(env: Mapping[str, str]) -> str:
    """The pyspark version and Debian python3's X.Y (a venv outlives patch releases, not minor ones)."""
    minor = run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], env, COMPILE_TIMEOUT)
    return digest([install.PYSPARK_VERSION.encode(), minor.strip().encode()])


def build_pyspark(env: Mapping[str, str]) -> Pyspark:
    """pyspark installed into a venv of Debian's python3 (install.ensure_pyspark), readable by any uid."""
    venv = CACHE / f"pyspark-{install.PYSPARK_VERSION}-{pyspark_key(env)}"
    complete = venv / ".complete"
    with cache_lock():
        took = 0.0
        if not complete.exists():
            started = time.monotonic()
            remove(venv)  # an earlier build that did not finish
            built = install.ensure_pyspark(venv=venv, quiet=True, base_python="/usr/bin/python3")
            # upstream's Dockerfile makes /opt/spark/work-dir: the mount point of the working directory's emptyDir
            (built / "work-dir").mkdir(exist_ok=True)
            readable_by_all(venv)
            complete.touch()
            took = time.monotonic() - started
        home = install.installed_pyspark(venv=venv)
        assert home is not None, f"{venv} is marked complete but holds no pyspark {install.PYSPARK_VERSION}"
        mark_used(venv)
        prune("pyspark", venv)
    return Pyspark(venv, home, took)


def readable_by_all(root: Path) -> None:
    """a+rX over a tree: the container's arbitrary uid reads it whatever umask it was built with."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o111 else 0))


def compile_classes(source: Path, out: Path, env: Mapping[str, str]) -> Path:
    """`javac --release 17 -d OUT SOURCE`, the output readable by any uid."""
    out.mkdir(parents=True, exist_ok=True)
    run(["javac", "--release", "17", "-nowarn", "-XDignore.symbol.file", "-d", str(out), str(source)],
        {**env, "PATH": SYSTEM_PATH}, COMPILE_TIMEOUT)  # fmt: skip
    readable_by_all(out)
    return out
