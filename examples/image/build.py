"""The two images, built locally with buildah and podman: a stand-in for the official Spark image, and
examples/Dockerfile on top of it, exactly as the README tells users to build it.

* `localhost/spark-base:<spark version>`: no registry is reachable here, so the base is assembled the way the
  official `apache/spark` images are shaped (docs/operators-guide.md, "Build your image", lists what matches
  and what differs): a Debian bookworm root filesystem from `debootstrap --variant=minbase` (cached in
  `.container-cache/rootfs-<key>`) with OpenJDK 17's headless JRE, tini, procps, bash and libnss-wrapper; JAVA_HOME
  at /opt/java/openjdk as in the eclipse-temurin images; the Spark distribution from the `pyspark` wheel at
  /opt/spark (bin/, sbin/, jars/, an empty conf/, python/lib/pyspark.zip and py4j's source zip, where Spark's
  Python workers look); user `spark` (uid and gid 185); WORKDIR /opt/spark/work-dir; a sketch of
  /opt/entrypoint.sh and /opt/decom.sh (examples/image/standin/). `buildah from scratch`, mount, copy, config,
  commit.
* `localhost/spark-lifecycle:<lifecycle version>-spark<spark version>`: `podman build -f examples/Dockerfile
  --build-arg SPARK_IMAGE=localhost/spark-base:<version> .` from the repository root.

Each image carries a label with the key of what went into it; a build is skipped when the tagged image's
label matches, so the tests and the demo build once per change. podman runs with CONTAINERS_CONF pointing at
examples/image/containers.conf unless the caller set one (rlimits a root without CAP_SYS_RESOURCE can give).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from examples.image import cache
from examples.image.cache import CACHE, REPO_ROOT, SYSTEM_PATH, run
from examples.spark import install

HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
PACKAGES = ("openjdk-17-jre-headless", "tini", "procps", "libnss-wrapper")  # bash is in minbase
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE = "localhost/spark-base"
IMAGE = "localhost/spark-lifecycle"
KEY_LABEL = "io.github.spark-lifecycle.build-key"
SPARK_UID = 185
JAVA_HOME = "/opt/java/openjdk"  # where eclipse-temurin (the official images' base) puts the JDK
PYTHON_SKIPPED = {"jars", "bin", "sbin", "data", "examples", "licenses", "work-dir", "__pycache__"}
DEBOOTSTRAP_TIMEOUT = 900.0  # seconds (~60 s here with a warm mirror)
BUILD_TIMEOUT = 900.0  # seconds for one podman or buildah build (~90 s here: apt and pip over the network)
STEP_TIMEOUT = 300.0
IMAGE_INPUTS = ("examples/Dockerfile", "examples/constraints.txt", "examples/entrypoint.sh", "examples/decom.sh",
                    ".dockerignore", "pyproject.toml", "README.md", "LICENSE")  # fmt: skip


@dataclass(frozen=True)
class Image:
    """A built (or cached) image: its tag, id, size in bytes, and the seconds this call spent building it."""

    tag: str
    id: str
    size: int
    seconds: float


def podman_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment podman and buildah run with: the caller's, the system PATH, this project's rlimits."""
    merged = dict(os.environ if env is None else env)
    merged["PATH"] = SYSTEM_PATH
    merged.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
    return merged


def inspect(tag: str, env: Mapping[str, str]) -> dict[str, object] | None:
    """`podman image inspect TAG` as a dict, or None when there is no such image."""
    done = subprocess.run(["podman", "image", "inspect", tag], env=dict(env), capture_output=True, text=True,
                          timeout=STEP_TIMEOUT, check=False)  # fmt: skip
    if done.returncode != 0:
        return None
    found = json.loads(done.stdout)
    return found[0] if found else None


def cached(tag: str, key: str, env: Mapping[str, str]) -> Image | None:
    data = inspect(tag, env)
    labels = (data or {}).get("Labels") or {}
    if data is None or not isinstance(labels, dict) or labels.get(KEY_LABEL) != key:
        return None
    return Image(tag, str(data["Id"]), int(str(data["Size"])), 0.0)


def drop_replaced(old: dict[str, object] | None, tag: str, env: Mapping[str, str]) -> None:
    """Remove the image a rebuild took the tag from, if nothing else names it (no dangling gigabytes)."""
    names = old.get("RepoTags") if old is not None else None
    others = [name for name in names if name != tag] if isinstance(names, list) else []
    if old is not None and not others:
        subprocess.run(["podman", "rmi", str(old["Id"])], env=dict(env), capture_output=True, timeout=STEP_TIMEOUT,
                       check=False)  # fmt: skip


def built_once(tag: str, key: str, penv: Mapping[str, str], build: Callable[[], None]) -> Image:
    """The image `tag` carrying `key`: the cached one, or what `build()` makes (it must put the key in KEY_LABEL),
    under the cache lock; the image the tag named before is dropped. `seconds`: this call's build time, 0 cached."""
    with cache.cache_lock():
        found = cached(tag, key, penv)
        if found is not None:
            return found
        started = time.monotonic()
        old = inspect(tag, penv)
        build()
        drop_replaced(old, tag, penv)
        built = cached(tag, key, penv)
        assert built is not None, f"{tag} was built but does not carry its build key"
        return dataclasses.replace(built, seconds=time.monotonic() - started)


# ---- the root filesystem -------------------------------------------------------------------------------


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


def rootfs_key() -> str:
    return cache.digest([SUITE.encode(), b"minbase", *(p.encode() for p in PACKAGES)])


def build_rootfs(env: Mapping[str, str]) -> tuple[Path, float]:
    """The cached Debian root filesystem (debootstrap, then `apt-get clean`); built if missing."""
    rootfs = CACHE / f"rootfs-{rootfs_key()}"
    with cache.cache_lock():
        for stale in CACHE.glob("build-*"):  # a build interrupted earlier; no build runs while we hold the lock
            cache.remove(stale)
        took = 0.0
        if not rootfs.is_dir():
            started = time.monotonic()
            build = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
            try:
                target = build / "rootfs"
                run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target),
                     debian_mirror()], env, DEBOOTSTRAP_TIMEOUT)  # fmt: skip
                run(["chroot", str(target), "apt-get", "clean"], env, STEP_TIMEOUT)
                cache.unmount_under(target)
                for lists in (target / "var/lib/apt/lists").glob("*"):  # as the official images leave them
                    if lists.is_file():
                        lists.unlink()
                (target / "tmp").chmod(0o1777)
                target.chmod(0o755)
                target.rename(rootfs)
            finally:
                cache.remove(build)
            took = time.monotonic() - started
        cache.mark_used(rootfs)
        cache.prune("rootfs", rootfs)
    return rootfs, took


# ---- the stand-in base image ---------------------------------------------------------------------------


def python_zips(spark_home: Path, lib: Path) -> None:
    """Spark's Python side as the official distribution ships it: python/lib/pyspark.zip and py4j's source zip
    (Spark puts both on its Python workers' PYTHONPATH from SPARK_HOME)."""
    lib.mkdir(parents=True)
    with zipfile.ZipFile(lib / "pyspark.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(spark_home.rglob("*")):
            relative = path.relative_to(spark_home)
            if path.is_file() and not PYTHON_SKIPPED.intersection(relative.parts):
                archive.write(path, Path("pyspark", relative))
    site = spark_home.parent
    py4j = next(site.glob("py4j-*.dist-info")).name.removeprefix("py4j-").removesuffix(".dist-info")
    with zipfile.ZipFile(lib / f"py4j-{py4j}-src.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((site / "py4j").rglob("*.py")):
            archive.write(path, path.relative_to(site))


def base_key(rootfs: Path) -> str:
    standin = sorted((HERE / "standin").iterdir())
    # What goes in, not where it lies: two checkouts of one commit share the image.
    return cache.digest([rootfs.name.encode(), install.PYSPARK_VERSION.encode(), Path(__file__).read_bytes(),
                         *(p.read_bytes() for p in standin)])  # fmt: skip


def build_base(env: Mapping[str, str] | None = None) -> Image:
    """localhost/spark-base:<spark version>, built with buildah when missing or out of date."""
    penv = podman_env(env)
    rootfs, debootstrap_took = build_rootfs(penv)
    spark_home = install.ensure_pyspark(quiet=True)
    tag = f"{BASE}:{install.PYSPARK_VERSION}"
    key = base_key(rootfs)

    def assemble() -> None:
        container = run(["buildah", "from", "scratch"], penv, STEP_TIMEOUT).strip().splitlines()[-1]
        try:
            mount = Path(run(["buildah", "mount", container], penv, STEP_TIMEOUT).strip().splitlines()[-1])
            run(["cp", "-a", f"{rootfs}/.", f"{mount}/"], penv, STEP_TIMEOUT)
            for left in (mount / "tmp").iterdir():  # e.g. hsperfdata_root from ca-certificates-java's set-up
                shutil.rmtree(left) if left.is_dir() and not left.is_symlink() else left.unlink()
            spark = mount / "opt/spark"
            spark.mkdir(parents=True)
            for part in ("bin", "sbin", "jars"):
                run(["cp", "-a", str(spark_home / part), str(spark / part)], penv, STEP_TIMEOUT)
            (spark / "conf").mkdir()
            (spark / "RELEASE").write_text(f"Spark {install.PYSPARK_VERSION} (from the pyspark wheel)\n")
            python_zips(spark_home, spark / "python/lib")
            (spark / "work-dir").mkdir()
            (mount / "opt/java").mkdir(parents=True)
            arch = run(["dpkg", "--print-architecture"], penv, STEP_TIMEOUT).strip()
            (mount / JAVA_HOME.lstrip("/")).symlink_to(f"/usr/lib/jvm/java-17-openjdk-{arch}")
            for script in ("entrypoint.sh", "decom.sh"):
                shutil.copy2(HERE / "standin" / script, mount / "opt" / script)
                (mount / "opt" / script).chmod(0o755)
            run(["chroot", str(mount), "groupadd", "--system", f"--gid={SPARK_UID}", "spark"], penv, STEP_TIMEOUT)
            run(["chroot", str(mount), "useradd", "--system", f"--uid={SPARK_UID}", "--gid=spark", "--no-create-home",
                 "--home-dir=/opt/spark", "--shell=/bin/false", "spark"], penv, STEP_TIMEOUT)  # fmt: skip
            run(["chroot", str(mount), "chown", "-R", "spark:spark", "/opt/spark"], penv, STEP_TIMEOUT)
            (spark / "work-dir").chmod(0o775)  # g+w: an arbitrary uid in group 0 ... and spark's group
            cache.readable_by_all(spark)
            run(["buildah", "unmount", container], penv, STEP_TIMEOUT)
            run(["buildah", "config",
                 "--env", f"JAVA_HOME={JAVA_HOME}", "--env", f"PATH={JAVA_HOME}/bin:{SYSTEM_PATH}",
                 "--env", "LANG=C.UTF-8", "--env", "SPARK_HOME=/opt/spark",
                 "--workingdir", "/opt/spark/work-dir", "--user", str(SPARK_UID),
                 "--entrypoint", json.dumps(["/opt/entrypoint.sh"]),
                 "--label", f"{KEY_LABEL}={key}",
                 "--label", "org.opencontainers.image.description=stand-in for apache/spark, built locally",
                 container], penv, STEP_TIMEOUT)  # fmt: skip
            run(["buildah", "commit", "--rm", "--quiet", container, tag], penv, BUILD_TIMEOUT)
        except BaseException:
            subprocess.run(["buildah", "rm", container], env=penv, capture_output=True, timeout=STEP_TIMEOUT,
                           check=False)  # fmt: skip
            raise

    image = built_once(tag, key, penv, assemble)
    return dataclasses.replace(image, seconds=image.seconds + debootstrap_took)


# ---- examples/Dockerfile on it -------------------------------------------------------------------------


def lifecycle_version() -> str:
    for line in (REPO_ROOT / "lifecycle/__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("lifecycle/__init__.py has no __version__")


def extra_ca_certs() -> str:
    """The CA certificates this host trusts beyond its distribution's (a TLS-intercepting proxy's), as PEM."""
    found = sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    return "".join(path.read_text() for path in found)


def image_key(base: Image) -> str:
    inputs = [REPO_ROOT / name for name in IMAGE_INPUTS]
    inputs += sorted((REPO_ROOT / "lifecycle").rglob("*.py"))
    return cache.digest([base.id.encode(), cache.files_digest(inputs).encode()])


def build_lifecycle(base: Image, env: Mapping[str, str] | None = None, ca_certs: str | None = None) -> Image:
    """`podman build -f examples/Dockerfile --build-arg SPARK_IMAGE=<base> .`, when missing or out of date.

    `ca_certs` (default: this host's extra CAs) goes in as the `build-ca` secret; PIP_INDEX_URL and friends from
    the environment go in as the build arguments of the same names.
    """
    penv = podman_env(env)
    tag = f"{IMAGE}:{lifecycle_version()}-spark{install.PYSPARK_VERSION}"
    key = image_key(base)

    def podman_build() -> None:
        args = ["podman", "build", "--quiet", "-f", "examples/Dockerfile", "--build-arg", f"SPARK_IMAGE={base.tag}",
                "--label", f"{KEY_LABEL}={key}", "--tag", tag]  # fmt: skip
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
            if penv.get(name):
                args += ["--build-arg", f"{name}={penv[name]}"]
        certs = extra_ca_certs() if ca_certs is None else ca_certs
        with tempfile.NamedTemporaryFile("w", prefix="build-ca-", suffix=".pem") as bundle:
            if certs:
                bundle.write(certs)
                bundle.flush()
                args += ["--secret", f"id=build-ca,src={bundle.name}"]
            run([*args, str(REPO_ROOT)], penv, BUILD_TIMEOUT)

    return built_once(tag, key, penv, podman_build)


def layers(tag: str, env: Mapping[str, str] | None = None) -> list[tuple[int, str]]:
    """`podman history`: (size in bytes, the instruction) per layer, newest first."""
    output = run(["podman", "history", "--no-trunc", "--format", "json", tag], podman_env(env), STEP_TIMEOUT)
    return [(int(entry["size"]), str(entry.get("CreatedBy") or entry.get("createdBy") or "")) for entry in
            json.loads(output)]  # fmt: skip
