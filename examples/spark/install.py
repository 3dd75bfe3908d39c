"""The pyspark distribution in its own venv, and the environment every Spark process here gets.

`pip install pyspark==4.3.0` is a whole Spark distribution: SPARK_HOME is the installed `pyspark/` package
directory (bin/spark-submit, bin/spark-class, jars/). It goes into its own venv, `.spark-venv` beside the
project's `.venv`, so the project's venv stays light; it is created once and reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPARK_VENV = REPO_ROOT / ".spark-venv"
PYSPARK_VERSION = "4.3.0"
INSTALL_TIMEOUT = 600.0  # seconds for `pip install pyspark` (a 456 MB sdist: ~35 s build on a warm machine)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOOPBACK = "127.0.0.1"


# ---- the pyspark distribution ---------------------------------------------------------------------------


def spark_python(venv: Path = SPARK_VENV) -> Path:
    """The interpreter of the Spark venv (has pyspark; runs the driver program and the Python workers)."""
    return venv / "bin" / "python"


def _base_python() -> str:
    """A plain interpreter to create the venv with (not a venv's own, which would nest venvs)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.access(base, os.X_OK) else (shutil.which("python3", path=SYSTEM_PATH) or sys.executable)


def installed_pyspark(version: str = PYSPARK_VERSION, venv: Path = SPARK_VENV) -> Path | None:
    """SPARK_HOME when pyspark==`version` is already installed in `venv`, else None."""
    return _installed_home(venv, version)


def _installed_home(venv: Path, version: str) -> Path | None:
    stamp = venv / f".pyspark-{version}"
    if not stamp.is_file():
        return None
    home = Path(stamp.read_text(encoding="utf-8").strip())
    if (home / "bin" / "spark-submit").is_file() and (home / "jars").is_dir():
        return home
    return None


@contextlib.contextmanager
def _install_lock(venv: Path, timeout: float) -> Iterator[None]:
    """One installer at a time (the tests and the demo may start together); bounded by `timeout`."""
    venv.mkdir(parents=True, exist_ok=True)  # `python -m venv` fills an existing directory
    lock = venv / ".install.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Another process installs: block on the lock in a helper that the kernel bounds for us.
            holder = subprocess.run(["flock", "-w", str(int(timeout)), str(lock), "true"], timeout=timeout + 10,
                                    stdin=subprocess.DEVNULL, check=False)
            if holder.returncode != 0:
                raise TimeoutError(f"another pyspark install held {lock} for more than {timeout:g}s") from None
            fcntl.flock(fd, fcntl.LOCK_EX)  # free now (the other installer finished)
        yield
    finally:
        os.close(fd)


def ensure_pyspark(version: str = PYSPARK_VERSION, venv: Path = SPARK_VENV, quiet: bool = False,
                   base_python: str | None = None) -> Path:
    """SPARK_HOME of pyspark==`version`, installed once into `venv` (`base_python -m venv` + pip install).

    Cached: when the venv already has this version the call returns at once, without running pip.
    `base_python` defaults to the interpreter this venv was made from (tests/container passes Debian's).
    """
    home = _installed_home(venv, version)
    if home is not None:
        return home
    with _install_lock(venv, INSTALL_TIMEOUT):
        home = _installed_home(venv, version)  # installed by whoever held the lock
        if home is not None:
            return home
        env = {"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        output = subprocess.DEVNULL if quiet else None
        if not spark_python(venv).exists():
            subprocess.run([base_python or _base_python(), "-m", "venv", str(venv)], check=True, timeout=120, env=env,
                           stdin=subprocess.DEVNULL, stdout=output)
        started = time.monotonic()
        subprocess.run([str(spark_python(venv)), "-m", "pip", "install", "-qq", f"pyspark=={version}"],
                       check=True, timeout=INSTALL_TIMEOUT, env=env, stdin=subprocess.DEVNULL, stdout=output)
        located = subprocess.run(
            [str(spark_python(venv)), "-I", "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
            check=True, timeout=60, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        home = Path(located.stdout.strip())
        if not (home / "bin" / "spark-submit").is_file():
            raise RuntimeError(f"pyspark {version} in {venv} has no bin/spark-submit under {home}")
        for script in (home / "bin").iterdir():  # sdist installs keep the mode; wheels may not
            script.chmod(script.stat().st_mode | 0o111)
        (venv / f".pyspark-{version}").write_text(f"{home}\n", encoding="utf-8")
        if not quiet:
            print(f"examples.spark: installed pyspark {version} into {venv} in {time.monotonic() - started:.0f}s",
                  file=sys.stderr)
        return home


# ---- the console scripts and the environment --------------------------------------------------------------


def lifecycle_bin(name: str = "lifecycle") -> str:
    """The console script installed beside the running interpreter (the project's .venv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
        return found
    return str(path)


def spark_env(spark_home: Path, **more: str) -> dict[str, str]:
    """The environment every Spark process here gets: loopback only, the Spark venv's Python."""
    python = str(spark_python())
    return {
        "PATH": SYSTEM_PATH,
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": LOOPBACK,
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        **more,
    }
