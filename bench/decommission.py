"""What the preStop hook costs on top of the executor's own drain, per pod layout.

    overhead = hook wall time - drain
    hook wall time: from spawning `nsenter -t <pod PID 1> -p -m HOOK` (the kubelet's exec) to its exit
    drain:          from the stub executor's `SIG… received` line to the JVM's exit (its pidfd)

`to signal` (spawn → the JVM reports the signal) and `after exit` (JVM gone → hook gone) split the overhead.
Every run is a fresh pod: new PID and mount namespaces (`unshare --pid --mount-proc --kill-child`), with
lifecycle, tini or a pause process as PID 1 (examples/pods.py, as the tests make them), and the stub executor
(examples/stub-executor) compiled once. The baseline hook does what upstream's decom.sh (Spark 3.4+) does,
step by step (upstream-behaviour §2): find the PID with ps and grep, SIGPWR, `tail --pid`, two `sleep 1`s.
The floor row (`kill -s PWR`) signals the JVM's host PID with kill(1), no hook and no nsenter: its `to sig` is
the part of every hook's `to sig` that is the JVM's own (signal dispatch, the handler thread, the stub's line).

Rows marked SIGKILL: the hook was still running when the pod's PID 1 exited, and the kernel killed it with
everything else in the namespace; the kubelet records a failed preStop hook. Their times are not overheads.

Under tini the JVM runs as `tini -s -- sh -c 'exec java …'` rather than upstream's `tini -s -- java …`:
with the latter tini's own argv holds the executor class and lifecycle-decommission refuses to choose (exit 4).

lifecycle comes from a wheel of this checkout installed into a fresh venv (`--install wheel`, the default),
as an image installs it: byte-compiled, no editable-install finder in `site` (~15 ms of every start here).
`--install dev` runs the development venv's editable install instead.

Run as root: python -m bench.decommission [--runs 5] [--drain-ms 500] [--only TEXT] [--install wheel|dev]
"""

from __future__ import annotations

import argparse
import math
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from examples.pods import EXECUTOR_CLASS, Pod, base_env, compile_stub, exec_in_shell
from examples.proc import cmdline

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_BIN = os.path.dirname(sys.executable)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
TARGET_MS = 20.0  # overhead budget per decommission
TIMEOUT = 60.0  # seconds for any one wait

# The baseline: upstream's decom.sh (3.4+) restated. No `set -e`: like upstream, a failed step does not stop it.
BASELINE = """\
#!/usr/bin/env bash
set -x
echo "asked to decommission"
date
pid=$(ps -o pid=,args= -C java | grep Executor | tail -n 1 | awk '{print $1}')
echo "executor pid: ${pid}"
kill -s SIGPWR ${pid}
echo "waiting for ${pid} to exit"
tail --pid=${pid} -f /dev/null
sleep 1
date
echo "done"
date
sleep 1
"""


@dataclass(frozen=True)
class Scenario:
    hook: str  # "lifecycle-decommission", "baseline", or "kill -s PWR" (the floor: signal the JVM directly)
    layout: str  # "container" (the entrypoint is PID 1) or "shared" (a pause process is PID 1)
    entrypoint: str  # "lifecycle" or "tini"

    @property
    def label(self) -> str:
        where = f"{self.entrypoint} PID 1" if self.layout == "container" else f"pause → {self.entrypoint}"
        return f"{self.hook:22} {where}"

    @property
    def pod_layout(self) -> str:
        """The layout's name in examples/pods.py."""
        if self.entrypoint == "lifecycle":
            return self.layout
        return "tini" if self.layout == "container" else "tini-shared"


SCENARIOS = (
    Scenario("lifecycle-decommission", "container", "lifecycle"),
    Scenario("lifecycle-decommission", "shared", "lifecycle"),
    Scenario("lifecycle-decommission", "shared", "tini"),
    Scenario("lifecycle-decommission", "container", "tini"),
    Scenario("baseline", "shared", "tini"),
    Scenario("baseline", "container", "tini"),
    Scenario("baseline", "container", "lifecycle"),
    Scenario("kill -s PWR", "container", "tini"),
)


@dataclass(frozen=True)
class Sample:
    """One decommission, in seconds from spawning the hook (None: not seen)."""

    code: int
    signalled: float | None
    jvm_exited: float | None
    hook_exited: float

    @property
    def drain(self) -> float | None:
        if self.signalled is None or self.jvm_exited is None:
            return None
        return self.jvm_exited - self.signalled

    @property
    def overhead(self) -> float | None:
        return None if self.drain is None else self.hook_exited - self.drain


def tool(name: str, path: str = SYSTEM_PATH) -> str:
    """The program's path, or exit naming what is missing."""
    found = shutil.which(name, path=path)
    if found is None:
        raise SystemExit(f"bench.decommission: needs {name}")
    return found


def start_pod(scenario: Scenario, classes: Path, drain_ms: int, bin_dir: str) -> Pod:
    """A fresh pod running the stub executor, with the scenario's PID 1 (examples/pods.py); ready to be drained."""
    executor = [tool("java"), f"-Ddrain.ms={drain_ms}", "-cp", str(classes), EXECUTOR_CLASS]
    env = base_env(PATH=f"{bin_dir}:{SYSTEM_PATH}")
    if scenario.entrypoint == "lifecycle":
        pod = Pod(scenario.pod_layout, executor, env, lifecycle=tool("lifecycle", bin_dir))
    else:
        tool("tini")  # or exit naming it
        pod = Pod(scenario.pod_layout, exec_in_shell(executor), env)
    try:
        pod.ready(timeout=TIMEOUT)  # the JVM's `ready` line, and under lifecycle its `running` line
    except BaseException:
        pod.kill()
        raise
    return pod


def jvm_pid(pod: Pod) -> int:
    """The host PID of the executor JVM (its argv ends with the main class)."""
    (pid,) = [pid for pid in pod.processes().values() if cmdline(pid)[-1:] == [EXECUTOR_CLASS]]
    return pid


def measure(scenario: Scenario, pod: Pod, hook: list[str], bin_dir: str, enter: bool = True) -> Sample:
    """Run the hook once in the pod; timestamps of the JVM's signal line, the JVM's exit and the hook's exit.

    enter=False runs it from the host, without nsenter (the floor row: kill the JVM's host PID directly).
    """
    pidfds = {"jvm": os.pidfd_open(jvm_pid(pod))}
    target = pod.processes()[1]  # the pod's PID 1 as the host numbers it: what nsenter -t joins
    streams, heard = pod.streams, len(pod.streams.lines["out"])  # the stub's lines from here on
    started = time.monotonic()
    process = subprocess.Popen(
        [tool("nsenter"), "-t", str(target), "-p", "-m", *hook] if enter else hook,
        env={"PATH": f"{bin_dir}:{SYSTEM_PATH}", "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pidfds["hook"] = os.pidfd_open(process.pid)
    seen: dict[str, float] = {}  # "signalled", "jvm", "hook": seconds after the spawn
    try:
        # Until the hook has exited and, if the JVM was signalled (or, from the host, will be), the JVM too.
        while "hook" not in seen or (("signalled" in seen or not enter) and "jvm" not in seen):
            left = started + TIMEOUT - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{scenario.label}: not done within {TIMEOUT}s")
            watched = [fd for name, fd in pidfds.items() if name not in seen] + list(streams.names)
            ready, _, _ = select.select(watched, [], [], left)
            now = time.monotonic()
            for name, fd in pidfds.items():
                if fd in ready:
                    seen[name] = now - started
            streams.read(ready, now)
            said = streams.lines["out"][heard:]
            if "signalled" not in seen and any(" received, draining" in line for _, line in said):
                seen["signalled"] = now - started
    finally:
        for fd in pidfds.values():
            os.close(fd)
        if process.poll() is None:
            process.kill()
    return Sample(process.wait(timeout=TIMEOUT), seen.get("signalled"), seen.get("jvm"), seen["hook"])


@contextmanager
def scratch() -> Iterator[tuple[Path, Path]]:
    """The compiled stub and the baseline script, in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-decommission-") as name:
        root = Path(name)
        (root / "classes").mkdir()
        compile_stub(root / "classes")
        baseline = root / "baseline-decom.sh"
        baseline.write_text(BASELINE)
        baseline.chmod(0o755)
        yield root / "classes", baseline


def wheel_install(root: Path) -> str:
    """Build a wheel of this checkout and install it into a new venv under root; its bin directory.

    The venv gets lifecycle alone (byte-compiled by pip, as in an image); its dependencies, which only the
    entrypoint's start-up needs, are reached through a .pth line naming the development venv's site-packages
    (a plain path: that directory's own .pth files, the editable finder among them, are not run).
    """

    def run(*argv: str) -> None:
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600, check=True)

    pip = (sys.executable, "-m", "pip", "-q", "--disable-pip-version-check")
    run(*pip, "wheel", "--no-deps", "-w", str(root / "wheel"), str(REPO_ROOT))
    (wheel,) = (root / "wheel").glob("spark_lifecycle-*.whl")
    venv = root / "venv"
    run(tool("python3"), "-m", "venv", "--without-pip", str(venv))
    run(*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel))
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(str(Path(sys.prefix))))
    (site_packages / "zz-lifecycle-deps.pth").write_text(dev_site + "\n")
    return str(venv / "bin")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(value: float) -> str:
    """Seconds as a milliseconds column."""
    return f"{value * 1000:9.1f}"


def row(scenario: Scenario, samples: list[Sample]) -> str:
    """One table row: exit codes, then medians and p90s in milliseconds."""
    codes = Counter("SIGKILL" if s.code == -signal.SIGKILL else str(s.code) for s in samples)
    exits = ", ".join(f"{count}x {code}" for code, count in sorted(codes.items()))
    done = [s for s in samples if s.overhead is not None and s.signalled is not None and s.jvm_exited is not None]
    if not done:
        return f"{scenario.label:40} {exits:14} (the JVM never reported the signal)"
    walls = [s.hook_exited for s in done]
    overheads = [s.overhead for s in done if s.overhead is not None]
    drains = [s.drain for s in done if s.drain is not None]
    to_signal = [s.signalled for s in done if s.signalled is not None]
    after = [s.hook_exited - s.jvm_exited for s in done if s.jvm_exited is not None]
    if scenario.hook == "kill -s PWR":  # exits before the JVM does: only the JVM's reaction time means anything
        return f"{scenario.label:40} {exits:14}{'':45}{ms(statistics.median(to_signal))}{'':>9}"
    return (
        f"{scenario.label:40} {exits:14}"
        f"{ms(statistics.median(walls))}{ms(percentile(walls, 0.9))}{ms(statistics.median(drains))}"
        f"{ms(statistics.median(overheads))}{ms(percentile(overheads, 0.9))}"
        f"{ms(statistics.median(to_signal))}{ms(statistics.median(after))}"
    )


HEADER = (
    f"{'hook / layout':40} {'exit':14}{'wall':>9}{'wall':>9}{'drain':>9}{'overhead':>9}{'overhead':>9}"
    f"{'to sig':>9}{'after':>9}\n"
    f"{'':40} {'':14}{'median':>9}{'p90':>9}{'median':>9}{'median':>9}{'p90':>9}{'median':>9}{'median':>9}"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario `--runs` times and print the table (milliseconds)."""
    parser = argparse.ArgumentParser(prog="python -m bench.decommission", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="decommissions per scenario (default 5)")
    parser.add_argument("--drain-ms", type=int, default=500, help="the stub executor's drain (default 500)")
    parser.add_argument("--only", default="", help="run only scenarios whose label contains this text")
    parser.add_argument(
        "--install", choices=("wheel", "dev"), default="wheel",
        help="wheel: a fresh non-editable install of this checkout, as in an image (default); dev: the editable .venv",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench.decommission: needs root (unshare and nsenter)")
    results: list[tuple[Scenario, list[Sample]]] = []
    with scratch() as (classes, baseline):
        bin_dir = wheel_install(classes.parent) if args.install == "wheel" else DEV_BIN
        hook = tool("lifecycle-decommission", bin_dir)
        for scenario in SCENARIOS:
            if args.only not in scenario.label:
                continue
            samples = []
            for _ in range(args.runs):
                pod = start_pod(scenario, classes, args.drain_ms, bin_dir)
                try:
                    if scenario.hook == "kill -s PWR":
                        floor = [tool("kill"), "-s", "PWR", str(jvm_pid(pod))]
                        samples.append(measure(scenario, pod, floor, bin_dir, False))
                        continue
                    hook_argv = [hook] if scenario.hook != "baseline" else [tool("bash"), str(baseline)]
                    samples.append(measure(scenario, pod, hook_argv, bin_dir))
                finally:
                    pod.kill()
            results.append((scenario, samples))
            print(row(scenario, samples), file=sys.stderr, flush=True)
    print(
        f"decommission overhead, ms; {args.runs} runs each; stub drain {args.drain_ms} ms; lifecycle from the "
        f"{'wheel install' if args.install == 'wheel' else 'editable .venv'}; SIGKILL: killed with PID 1"
    )
    print(HEADER)
    for scenario, samples in results:
        print(row(scenario, samples))
    medians = {  # only decommissions that ended with exit 0: a hook killed with PID 1 has failed, however fast
        scenario.layout: statistics.median(
            [s.overhead for s in samples if s.overhead is not None and s.code == 0] or [math.inf]
        )
        * 1000
        for scenario, samples in results
        if scenario.hook == "lifecycle-decommission" and scenario.entrypoint == "lifecycle"
    }
    verdict = "met" if medians and max(medians.values()) < TARGET_MS else "not met"
    shown = ", ".join(f"{layout} layout {value:.1f} ms" for layout, value in sorted(medians.items()))
    print(
        f"target: overhead < {TARGET_MS:g} ms for lifecycle-decommission with lifecycle as the entrypoint, in both "
        f"pod layouts: {verdict} (medians: {shown or 'not run'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
