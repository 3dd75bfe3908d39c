"""Pods made of namespaces on one machine, and the preStop command run in them as the kubelet runs it.

`unshare --pid --mount-proc --kill-child` gives the entrypoint its own PID and mount namespaces, and the hook
joins both with `nsenter -p -m`, as the kubelet's exec into the container does (the control socket is keyed by
the mount namespace, so the hook must join that one too). The network namespace is the host's.

Layouts (upstream-behaviour §2 for what decom.sh does in each):
* `tini`: tini is PID 1 (upstream's image): the hook takes its standalone path (scan /proc, pidfd).
  When the JVM has drained, tini exits, and the kernel SIGKILLs everything left in the namespace,
  the hook included (decom.sh's trailing sleeps are cut the same way).
* `tini-shared`: shareProcessNamespace: a pause process is PID 1 and `tini -s` (subreaper) below it.
* `container`: lifecycle is PID 1: the hook asks it over the control socket.
* `shared`: shareProcessNamespace: a pause process is PID 1 and lifecycle a subreaper below it.
* `custom`: the command itself is PID 1.

The stand-in executor is examples/stub-executor (main class KubernetesExecutorBackend, `compile_stub`).
Used by the tests (tests/integration/test_prestop.py, tests/hardening/), the benchmark (bench/decommission.py)
and the Spark scenario (examples/spark/executor.py: PAUSE and `pod_command`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from examples.proc import TIMEOUT, Streams, children, kill_by_pidfd, namespace_pid

REPO_ROOT = Path(__file__).resolve().parents[1]
STUB_SOURCE = REPO_ROOT / "examples" / "stub-executor" / "KubernetesExecutorBackend.java"
EXECUTOR_CLASS = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
BIN = os.path.dirname(sys.executable)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
PATH = f"{BIN}:{SYSTEM_PATH}"
LIFECYCLE = shutil.which("lifecycle", path=BIN)
HOOK = shutil.which("lifecycle-decommission", path=BIN)
TINI = shutil.which("tini", path=SYSTEM_PATH)
UNSHARE, NSENTER = shutil.which("unshare", path=SYSTEM_PATH), shutil.which("nsenter", path=SYSTEM_PATH)

# A pause container's process for the shared layouts: starts the entrypoint (JSON argv in POD_ENTRYPOINT, so
# that its own argv is only this script's), reaps whatever is orphaned to it (reporting each on stderr), and
# stays until SIGTERM, as kubernetes' pause does.
PAUSE = """\
import json, os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
argv = json.loads(os.environ.pop("POD_ENTRYPOINT"))
if os.fork() == 0:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.execv(argv[0], argv)
while signal.sigwait({signal.SIGCHLD, signal.SIGTERM}) == signal.SIGCHLD:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        print(f"pause: reaped {pid} exit {os.waitstatus_to_exitcode(status)}", file=sys.stderr, flush=True)
"""


def base_env(**more: str) -> dict[str, str]:
    """PATH with the console scripts; the host's /dev/termination-log is never written; plus `more`."""
    return {"PATH": PATH, "LANG": "C.UTF-8", "LIFECYCLE_TERMINATION_LOG": "", **more}


def compile_stub(out: Path, *more_sources: Path) -> Path:
    """javac the stub executor (and `more_sources`) into `out`."""
    javac = shutil.which("javac", path=SYSTEM_PATH)
    assert javac is not None, "needs javac"
    subprocess.run(
        [javac, "-nowarn", "-XDignore.symbol.file", "-d", str(out), str(STUB_SOURCE), *map(str, more_sources)],
        check=True, timeout=120, env={"PATH": SYSTEM_PATH}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return out


def exec_in_shell(command: list[str]) -> list[str]:
    """The same process, started through `sh -c 'exec …'`: no other process has its argv."""
    return ["sh", "-c", f"exec {shlex.join(command)}"]


def ready_pid(line: str) -> int:
    """N from a `ready (pid: N) …` line."""
    match = re.search(r"ready \(pid: (\d+)\)", line)
    assert match is not None, line
    return int(match.group(1))


def pod_command(
    entrypoint: Sequence[str], env: Mapping[str, str], shared: bool = False
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that start `entrypoint` as PID 1 of new PID and mount namespaces, or, `shared`,
    under a pause process that is PID 1 (shareProcessNamespace)."""
    assert UNSHARE is not None, "needs unshare"
    environment = dict(env)
    if shared:
        environment["POD_ENTRYPOINT"] = json.dumps(list(entrypoint))
        entrypoint = [sys.executable, "-I", "-c", PAUSE]
    return [UNSHARE, "--pid", "--mount-proc", "--kill-child", *entrypoint], environment


@dataclass(frozen=True)
class HookResult:
    """How one run of the hook ended (code -9: SIGKILLed, as nsenter re-raises its child's signal)."""

    code: int
    stderr: str
    seconds: float


class RunningHook:
    """`nsenter -t <pod PID 1> -p -m lifecycle-decommission`, as the kubelet's exec."""

    def __init__(self, target: int, env: dict[str, str]) -> None:
        assert NSENTER is not None and HOOK is not None
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [NSENTER, "-t", str(target), "-p", "-m", HOOK],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def pidfd(self) -> int:
        """A pidfd on the hook itself (nsenter's child in the pod), to see when it exits."""
        (pid,) = children(self.process.pid)
        return os.pidfd_open(pid)

    def finish(self, timeout: float = TIMEOUT) -> HookResult:
        """Block until the hook exits; its code, stderr and wall time."""
        _, stderr = self.process.communicate(timeout=timeout)
        return HookResult(self.process.returncode, stderr.decode("utf-8", "replace"), time.monotonic() - self.started)

    def kill(self) -> None:
        """SIGKILL the hook and nsenter, by pidfd, if they are still running."""
        if self.process.poll() is not None:
            return
        kill_by_pidfd([*children(self.process.pid), self.process.pid])
        self.process.communicate(timeout=TIMEOUT)


class Pod:
    """An entrypoint as PID 1 of new PID and mount namespaces, with every process started in them.

    `wrapper` goes before the layout's entrypoint (a gate, prlimit); `lifecycle` is the console script the
    lifecycle layouts run (bench/decommission.py passes a wheel install's).
    """

    ENTRYPOINTS: dict[str, Callable[[str], list[str]]] = {  # layout -> PID 1's argv before the command
        "tini": lambda lifecycle: [str(TINI), "-s", "--"],
        "tini-shared": lambda lifecycle: [str(TINI), "-s", "--"],
        "container": lambda lifecycle: [lifecycle],
        "shared": lambda lifecycle: [lifecycle],
        "custom": lambda lifecycle: [],
    }

    def __init__(
        self, layout: str, command: Sequence[str], env: Mapping[str, str], *, wrapper: Sequence[str] = (),
        lifecycle: str | None = LIFECYCLE, stdin: int = subprocess.DEVNULL,
    ) -> None:  # fmt: skip
        entrypoint = [*wrapper, *self.ENTRYPOINTS[layout](str(lifecycle)), *command]
        argv, environment = pod_command(entrypoint, env, shared=layout.endswith("shared"))
        self.layout = layout
        self.process = subprocess.Popen(
            argv, env=environment, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.streams = Streams(self.process)
        self.pidfds: dict[int, int] = {}
        self.hooks: list[RunningHook] = []

    def ready(self, count: int = 1, timeout: float = TIMEOUT) -> list[tuple[int, str]]:
        """Block until `count` JVMs have printed `ready (pid: N) …`: [(N, line)]; and, under lifecycle, until it
        has entered `running` (its control socket is listening from then on)."""
        lines = self.streams.wait_for("ready (pid: ", count=count, timeout=timeout)
        if self.layout in ("container", "shared"):
            self.streams.wait_for(" running as pid ", "err", timeout=timeout)
        return [(ready_pid(line), line) for line in lines]

    def processes(self) -> dict[int, int]:
        """{PID in the pod: PID on the host} for every process of the pod."""
        found, todo = {}, children(self.process.pid)
        while todo:
            pid = todo.pop()
            inner = namespace_pid(pid)
            if inner is not None:
                found[inner] = pid
            todo += children(pid)
        return found

    def pidfd(self, inner_pid: int) -> int:
        """A pidfd on the pod's process `inner_pid`, opened once and closed with the pod."""
        if inner_pid not in self.pidfds:
            self.pidfds[inner_pid] = os.pidfd_open(self.processes()[inner_pid])
        return self.pidfds[inner_pid]

    def start_hook(self, **env: str) -> RunningHook:
        """Start the hook in the pod's PID and mount namespaces with `env` (plus PATH)."""
        hook = RunningHook(self.processes()[1], base_env(**env))
        self.hooks.append(hook)
        return hook

    def run_hook(self, **env: str) -> HookResult:
        """Run the hook in the pod to completion."""
        return self.start_hook(**env).finish()

    def exit_code(self, timeout: float = TIMEOUT) -> int:
        """PID 1's exit code (unshare passes it on), once everything in the pod has finished writing."""
        self.streams.to_eof(timeout)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL every process of the pod (JVMs included) and its hooks, by pidfd, then unshare."""
        for hook in self.hooks:
            hook.kill()
        kill_by_pidfd(self.processes().values())
        for fd in self.pidfds.values():
            os.close(fd)
        self.process.kill()
        self.process.communicate(timeout=TIMEOUT)
