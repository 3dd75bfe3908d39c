"""`python -m examples.image build`: the stand-in base and examples/Dockerfile on it, with their sizes.
`python -m examples.image lock`: regenerate examples/constraints.txt from pyproject.toml's dependencies."""

from __future__ import annotations

import argparse
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


def do_lock(_: argparse.Namespace) -> int:
    """A venv of Debian's python3 (the interpreter images have), lifecycle installed, `pip freeze`."""
    with tempfile.TemporaryDirectory(prefix="lifecycle-lock-") as scratch:
        venv = Path(scratch, "venv")
        env = {"PATH": SYSTEM_PATH, "HOME": scratch, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        run(["/usr/bin/python3", "-m", "venv", str(venv)], env, LOCK_TIMEOUT)
        run([str(venv / "bin/pip"), "install", "-q", str(REPO_ROOT)], env, LOCK_TIMEOUT)
        frozen = run([str(venv / "bin/pip"), "freeze", "--exclude", "spark-lifecycle"], env, LOCK_TIMEOUT)
    target = REPO_ROOT / "examples/constraints.txt"
    target.write_text(LOCK_HEADER + frozen)
    print(f"wrote {target.relative_to(REPO_ROOT)}: {len(frozen.splitlines())} pins")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.image", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build (or find cached) the stand-in base and the lifecycle image")
    commands.add_parser("lock", help="regenerate examples/constraints.txt")
    args = parser.parse_args(argv)
    try:
        return {"build": do_build, "lock": do_lock}[args.command](args)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"examples.image: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
