"""`python -m examples.image build`: the stand-in base and examples/Dockerfile on it, with their sizes.
`python -m examples.image lock`: regenerate examples/constraints.txt from pyproject.toml's dependencies."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from examples.image import build
from examples.image.cache import REPO_ROOT, SYSTEM_PATH, run

MB = 1e6
LOCK_TIMEOUT = 600.0
LOCK_HEADER = """\
# The versions examples/Dockerfile installs with lifecycle (pip install -c): one commit, one image.
# Resolved on Python {python}, the oldest lifecycle supports, so that they install on every supported Python.
# Regenerate after changing the dependencies in pyproject.toml: python -m examples.image lock
"""


def do_build(_: argparse.Namespace) -> int:
    base = build.build_base()
    image = build.build_lifecycle(base)
    print(f"{base.tag}: {base.size / MB:.0f} MB (built in {base.seconds:.0f} s; 0 when cached)")
    print(f"{image.tag}: {image.size / MB:.0f} MB (built in {image.seconds:.0f} s; 0 when cached)")
    print(f"lifecycle adds {(image.size - base.size) / MB:.0f} MB:")
    added = build.layers(image.tag)[: -len(build.layers(base.tag))]
    for size, created_by in reversed(added):
        if size:
            step = " ".join(created_by.split(" /bin/sh -c ", 1)[-1].split())
            print(f"  {size / MB:6.1f} MB  {step[:100]}")
    return 0


def oldest_python() -> str:
    """The oldest Python lifecycle supports (3.10: the official Ubuntu-based Spark images' python3), so that one
    lock installs everywhere; Debian's python3 when there is none (the lock may then exclude 3.10)."""
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.10.*/bin/python3.10")):
        return str(candidate)
    return shutil.which("python3.10") or "/usr/bin/python3"


def do_lock(args: argparse.Namespace) -> int:
    """A venv of the oldest supported Python, lifecycle installed, `pip freeze`."""
    with tempfile.TemporaryDirectory(prefix="lifecycle-lock-") as scratch:
        venv = Path(scratch, "venv")
        env = {"PATH": SYSTEM_PATH, "HOME": scratch, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        run([args.python, "-m", "venv", str(venv)], env, LOCK_TIMEOUT)
        run([str(venv / "bin/pip"), "install", "-q", str(REPO_ROOT)], env, LOCK_TIMEOUT)
        frozen = run([str(venv / "bin/pip"), "freeze", "--exclude", "spark-lifecycle"], env, LOCK_TIMEOUT)
        version = run([str(venv / "bin/python"), "-c", "import sys; print(sys.version.split()[0])"], env, LOCK_TIMEOUT)
    target = REPO_ROOT / "examples/constraints.txt"
    target.write_text(LOCK_HEADER.format(python=version.strip()) + frozen)
    pins = len(frozen.splitlines())
    print(f"wrote {target.relative_to(REPO_ROOT)}: {pins} pins, resolved on Python {version.strip()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.image", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build (or find cached) the stand-in base and the lifecycle image")
    lock = commands.add_parser("lock", help="regenerate examples/constraints.txt")
    lock.add_argument("--python", default=oldest_python(), help="the interpreter to resolve with (%(default)s)")
    args = parser.parse_args(argv)
    try:
        return {"build": do_build, "lock": do_lock}[args.command](args)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"examples.image: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
