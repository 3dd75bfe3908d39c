"""The anonymous UID (OpenShift-style arbitrary UIDs): lifecycle installed where such a uid can run it, and the
nss_wrapper library lifecycle would find.

That uid cannot read the test's own interpreter under /root (mode 0700), so lifecycle runs from a venv made
with Debian's /usr/bin/python3 under /var/tmp (not /tmp: tests mount a tmpfs over /tmp, which would hide it).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifecycle.launch.identity import NSS_WRAPPER_GLOBS
from tests.helpers.processes import communicate_bounded
from tests.helpers.supervised import REPO_ROOT

ANONYMOUS_UID = 1000770000
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
TIMEOUT = 30.0  # seconds for one run; each takes well under one
INSTALL_TIMEOUT = 100.0  # seconds for venv creation, pip or apt-get (pytest-timeout allows 120 per test)


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), killing whatever is left of it if the bound passes."""
    process = subprocess.Popen(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = communicate_bounded(process, timeout)
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


def installed_nss_wrappers() -> list[str]:
    """Every libnss_wrapper.so lifecycle would find, by real path."""
    found = {os.path.realpath(path) for pattern in NSS_WRAPPER_GLOBS for path in glob.glob(pattern)}
    return sorted(path for path in found if os.path.isfile(path))


def apt_install(package: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return run(
        ["apt-get", "install", "-y", "--no-install-recommends", package],
        {**env, "DEBIAN_FRONTEND": "noninteractive"},
        INSTALL_TIMEOUT,
    )


def installer_env() -> dict[str, str]:
    """The environment for installers: the session's (pip's index settings live there), with a PATH."""
    return {**os.environ, "PATH": os.environ.get("PATH") or SYSTEM_PATH}


def install_anonymous_lifecycle(root: Path, env: Mapping[str, str]) -> str:
    """lifecycle installed in a venv under `root` that any uid can run; its console script, checked as that uid."""
    root.chmod(0o755)
    venv = root / "venv"
    made = run(["/usr/bin/python3", "-m", "venv", str(venv)], env, INSTALL_TIMEOUT)
    if made.returncode != 0:
        apt_install("python3-venv", env)
        made = run(["/usr/bin/python3", "-m", "venv", str(venv)], env, INSTALL_TIMEOUT)
    assert made.returncode == 0, f"/usr/bin/python3 -m venv failed: {made.stderr}"
    source = root / "source"  # a copy: pip's in-tree build must not leave build/ in the work tree
    source.mkdir()
    shutil.copytree(REPO_ROOT / "lifecycle", source / "lifecycle", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, source / name)
    pip = run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)], env, INSTALL_TIMEOUT)
    assert pip.returncode == 0, f"pip install into {venv} failed: {pip.stderr[-2000:]}"
    lifecycle = str(venv / "bin" / "lifecycle")
    check = run(
        ["setpriv", f"--reuid={ANONYMOUS_UID}", "--regid=0", "--clear-groups", lifecycle, "--version"],
        {"PATH": SYSTEM_PATH},
    )
    assert check.returncode == 0, f"uid {ANONYMOUS_UID} cannot run {lifecycle}: {check.stderr}"
    return lifecycle
