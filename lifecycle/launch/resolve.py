"""Effects of the env-resolved step: find JAVA_HOME and the Hadoop classpath.

Each function is bounded (subprocess timeouts) and reports problems as LifecycleError or as a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

from lifecycle.errors import EXIT_NOT_FOUND, LifecycleError

JAVA_PROBE_TIMEOUT = 30.0  # seconds for `java -XshowSettings:properties -version` (fallback only)
HADOOP_CLASSPATH_TIMEOUT = 60.0  # seconds for `$HADOOP_HOME/bin/hadoop classpath`

Warn = Callable[[str], None]


def find_java_home(env: Mapping[str, str]) -> tuple[str, str]:
    """(JAVA_HOME, how it was found): JAVA_HOME if non-empty, else the `java` on PATH through its symlinks.

    Upstream (SPARK-37875) starts a JVM with -XshowSettings:properties to read java.home; that costs a
    JVM start per container. Resolving the symlinks of the `java` on PATH gives the same directory
    whenever the launcher sits at <java.home>/bin/java, as it does in every JDK and JRE layout; the JVM
    query is kept as a fallback for wrappers that do not.
    """
    configured = env.get("JAVA_HOME", "")
    if configured:
        return configured, "JAVA_HOME"
    found = shutil.which("java", path=env.get("PATH", os.defpath))
    if found is None:
        raise LifecycleError(
            "java: not found: JAVA_HOME is unset or empty and there is no java on PATH "
            "(set JAVA_HOME to the JDK or JRE directory)",
            EXIT_NOT_FOUND,
        )
    real = os.path.realpath(found)
    bin_dir = os.path.dirname(real)
    if os.path.basename(real) == "java" and os.path.basename(bin_dir) == "bin":
        return os.path.dirname(bin_dir), f"java on PATH ({found} -> {real})"
    return _query_java_home(found), f"java.home reported by {found} (-XshowSettings:properties)"


def _query_java_home(java: str) -> str:
    try:
        result = subprocess.run(
            [java, "-XshowSettings:properties", "-version"],
            capture_output=True, text=True, timeout=JAVA_PROBE_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LifecycleError(f"java: cannot ask {java} for java.home: {exc}", EXIT_NOT_FOUND) from None
    for line in result.stderr.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key == "java.home":
            return value  # kept whole: a path with spaces survives (upstream's awk '{print $3}' cuts it)
    raise LifecycleError(f"java: {java} did not report java.home (set JAVA_HOME)", EXIT_NOT_FOUND)


def host_fqdn() -> str:
    """What `hostname -f` prints (start-master.sh's SPARK_MASTER_HOST default): the canonical name of this
    host's name (getaddrinfo with AI_CANONNAME), or the host name itself when it does not resolve."""
    import socket

    name = socket.gethostname()
    try:
        found = socket.getaddrinfo(name, None, flags=socket.AI_CANONNAME)
    except OSError:  # not resolvable (no DNS, no /etc/hosts entry): `hostname -f` fails; the plain name works
        return name
    return next((entry[3] for entry in found if entry[3]), name)


def hadoop_classpath(env: Mapping[str, str], warn: Warn) -> str | None:
    """`$HADOOP_HOME/bin/hadoop classpath` when HADOOP_HOME is set and SPARK_DIST_CLASSPATH is not.

    None when it is not run. A failure is a warning and gives "" (upstream: `export` hides the failure).
    """
    hadoop_home = env.get("HADOOP_HOME", "")
    if not hadoop_home or env.get("SPARK_DIST_CLASSPATH", ""):
        return None
    command = [f"{hadoop_home}/bin/hadoop", "classpath"]
    try:
        result = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=HADOOP_CLASSPATH_TIMEOUT, check=False,
        )  # fmt: skip
    except OSError as exc:
        warn(f"HADOOP_HOME: cannot run {command[0]}: {exc.strerror}; SPARK_DIST_CLASSPATH is left empty")
        return ""
    except subprocess.TimeoutExpired:
        warn(
            f"HADOOP_HOME: {command[0]} classpath took over {HADOOP_CLASSPATH_TIMEOUT:g}s; "
            "SPARK_DIST_CLASSPATH is left empty"
        )
        return ""
    if result.returncode != 0:
        warn(f"HADOOP_HOME: {command[0]} classpath exited {result.returncode}; SPARK_DIST_CLASSPATH is left empty")
        return ""
    return result.stdout.rstrip("\n")  # $(…) strips trailing newlines only
