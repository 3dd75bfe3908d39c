"""What a container test needs besides the two images of examples/image/ (the `base_image` and `lifecycle_image`
fixtures build them, cached by content key): images derived from the lifecycle image for the rows where the
image lacks something, and the Java classes the executor containers run.

* Derived images: `podman build` of a two-line Containerfile on the lifecycle image (by its id), as a platform
  team's derived image would change it: one RUN step as root, then back to USER 185. Tagged
  `localhost/spark-lifecycle-test:<variant>`, labelled with a key of the lifecycle image's id and the
  Containerfile, and rebuilt only when that key changes (under the build cache's lock, so concurrent sessions
  build once). A deleted file is a whiteout in the new layer, as containerd or CRI-O would apply it.
* Java classes: tests/helpers/decom.java (the executor stub), probe.java and hog.java (here), compiled with the
  host's javac for release 17 (the image's JRE), bind-mounted read-only at /opt/executor-classes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from examples.image import cache
from examples.image.build import KEY_LABEL, Image, built_once, podman_env
from examples.image.cache import REPO_ROOT, SYSTEM_PATH, run

TEST_IMAGE = "localhost/spark-lifecycle-test"
BUILD_TIMEOUT = 300.0  # seconds for one derived image (a RUN step: ~3 s here)
COMPILE_TIMEOUT = 120.0
# variant: the RUN step, as root (it fails when there is nothing to change, so a variant cannot silently be a no-op)
VARIANTS = {
    # the image without libnss-wrapper (a base that lacks the package)
    "no-nss-wrapper": "set -e; ls /usr/lib/*/libnss_wrapper.so; rm -f /usr/lib/*/libnss_wrapper.so",
    # the JRE's java without its exec bit (a layer that lost the mode)
    "java-not-executable": "set -e; test -x /opt/java/openjdk/bin/java; chmod 0644 /opt/java/openjdk/bin/java",
}

__all__ = ["REPO_ROOT", "compile_classes", "derived_image"]


def containerfile(base: Image, variant: str) -> str:
    return f"FROM {base.id}\nUSER root\nRUN {VARIANTS[variant]}\nUSER 185\n"


def derived_image(base: Image, variant: str, env: Mapping[str, str] | None = None) -> Image:
    """`localhost/spark-lifecycle-test:<variant>`: the lifecycle image changed by VARIANTS[variant]."""
    penv = podman_env(env)
    tag = f"{TEST_IMAGE}:{variant}"
    text = containerfile(base, variant)
    key = cache.digest([base.id.encode(), text.encode()])

    def podman_build() -> None:
        with tempfile.TemporaryDirectory(prefix="lifecycle-derived-") as context:
            Path(context, "Containerfile").write_text(text)
            run(["podman", "build", "--quiet", "--pull=never", "--label", f"{KEY_LABEL}={key}", "--tag", tag,
                 context], penv, BUILD_TIMEOUT)  # fmt: skip

    return built_once(tag, key, penv, podman_build)


def compile_classes(source: Path, out: Path, env: Mapping[str, str]) -> Path:
    """`javac --release 17 -d OUT SOURCE`, the output readable by any uid."""
    out.mkdir(parents=True, exist_ok=True)
    run(["javac", "--release", "17", "-nowarn", "-XDignore.symbol.file", "-d", str(out), str(source)],
        {**env, "PATH": SYSTEM_PATH}, COMPILE_TIMEOUT)  # fmt: skip
    cache.readable_by_all(out)
    out.chmod(0o755)
    return out
