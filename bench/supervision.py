"""What supervising costs: lifecycle against tini and dumb-init, in one run, side by side.

    start→exec   launching the wrapper (time.monotonic_ns just before posix_spawn) until the child's main()
                 reads CLOCK_MONOTONIC; the child writes that and exits at once ("one-shot" run)
    one-shot     the same run until the wrapper's exit is seen (its pidfd turns readable): the whole cost of
                 wrapping a command that does nothing, like §1.4's `/bin/true` figures
    RSS          VmRSS of the wrapper process while it supervises (after lifecycle's handover: the
                 supervisor has already forwarded a warm-up signal, and its cmdline names lifecycle.supervise)
    peak         the wrapper's lifetime peak RSS (wait4's ru_maxrss; exec keeps the larger of the two images)
    fwd          kill(wrapper, SIGUSR1) until the child's handler reads CLOCK_MONOTONIC
    exit         the child reads CLOCK_MONOTONIC and _exit(0)s; until the wrapper's pidfd turns readable

The child is a C program compiled with gcc into a temporary directory. Each supervised session: spawn,
wait for the child's `ready` line, one warm-up SIGUSR1 (not counted), read RSS, `--signals` timed SIGUSR1s,
one byte on the child's stdin (it exits), wait for the wrapper's pidfd. Every wait is a select() on pipes
and pidfds with a deadline; nothing sleeps. Wrappers take turns run by run, so drift hits all alike.

lifecycle comes from a wheel of this checkout installed into a fresh venv (`--install wheel`, the default), as an
image installs it: byte-compiled, and no editable-install finder run by `site` at every start (~15 ms here);
`--install dev` runs the development venv's editable install instead. `--other-lifecycle BIN_DIR` adds a row for
another build's `lifecycle` (before/after a change in one run); `--upstream-script FILE` adds a row for a real
entrypoint.sh, run in pass-through mode exactly as an image runs it (kept outside this repository).

Run from the repository root with the venv's python: python -m bench supervision [--runs 20] [--signals 5]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WAIT = 15.0  # seconds: the longest any single wait may take before the run is declared broken
RSS_TARGET_MIB = 16.0
FWD_TARGET_MS = 2.0  # lifecycle's forwarding median may exceed tini's by this much
EXIT_TARGET_MS = 5.0
START_TARGET = 4.0  # lifecycle's start→exec median may be this many times upstream's (issue #13)
MATERIAL = 0.25  # a relative difference above which "lifecycle (defaults)" is said to differ materially
MATERIAL_FLOOR = {"start": 5.0, "oneshot": 5.0, "rss": 1.0, "fwd": 0.2, "exit": 0.5}  # ms or MiB, absolute

CHILD_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One "TAG A [B]" line with write(2) only: async-signal-safe, so the handler uses it too. */
static void put(const char *tag, long long a, long long b) {
    char buf[96];
    size_t n = 0;
    long long v[2] = {a, b};
    while (*tag) buf[n++] = *tag++;
    for (int i = 0; i < (b >= 0 ? 2 : 1); i++) {
        char digits[24];
        int d = 0;
        long long x = v[i];
        do { digits[d++] = (char)('0' + x % 10); x /= 10; } while (x);
        buf[n++] = ' ';
        while (d) buf[n++] = digits[--d];
    }
    buf[n++] = '\n';
    ssize_t r;
    do r = write(1, buf, n); while (r < 0 && errno == EINTR);
}

static void on_signal(int sig) {
    int saved = errno;
    put("sig", now_ns(), sig);
    errno = saved;
}

int main(int argc, char **argv) {
    long long start = now_ns(); /* the first thing the program does */
    if (argc < 2 || strcmp(argv[1], "serve") != 0) {
        put("start", start, -1);
        _exit(0);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    put("ready", start, getpid());
    for (;;) { /* block on stdin: a byte or EOF means exit now */
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        put("exit", now_ns(), -1);
        _exit(0);
    }
}
"""


# Upstream's way in: entrypoint.sh's steps for a pass-through command (upstream-behaviour §1.2, restated, not
# copied), then `exec tini -s --`; run as the image runs it, through its `#!/usr/bin/env bash` line. JAVA_HOME is
# set, as the images' base layers set it, so no JVM is started to find it. What the real script (3.5+) does that
# this does not: in executor mode, the longer CMD array. Where it differs: the pass-through notice goes to stderr
# (stdout carries the child's timing lines) and java_opts.txt to $TMPDIR (upstream: the working directory).
UPSTREAM_ENTRYPOINT = r"""#!/usr/bin/env bash
set -ex
uid=$(id -u)
gid=$(id -g)
set +e
entry=$(getent passwd "$uid")
set -e
if [ -z "$entry" ]; then
  if [ -w /etc/passwd ]; then
    echo "$uid:x:$uid:$gid:${SPARK_USER_NAME:-anonymous uid}:$SPARK_HOME:/bin/false" >> /etc/passwd
  else
    echo "no passwd entry for the anonymous uid" >&2
  fi
fi
if [ -z "$JAVA_HOME" ]; then
  JAVA_HOME=$(java -XshowSettings:properties -version 2>&1 >/dev/null | grep 'java.home' | awk '{print $3}')
fi
SPARK_CLASSPATH="$SPARK_CLASSPATH:${SPARK_HOME}/jars/*"
env | grep SPARK_JAVA_OPT_ | sort -t_ -k4 -n | sed 's/[^=]*=\(.*\)//g' > "$TMPDIR/java_opts.txt"
if [ "$(command -v readarray)" ]; then readarray -t SPARK_EXECUTOR_JAVA_OPTS < "$TMPDIR/java_opts.txt"; fi
if [ -n "$SPARK_EXTRA_CLASSPATH" ]; then SPARK_CLASSPATH="$SPARK_CLASSPATH:$SPARK_EXTRA_CLASSPATH"; fi
if [ -n "${PYSPARK_PYTHON+x}" ]; then export PYSPARK_PYTHON; fi
if [ -n "${PYSPARK_DRIVER_PYTHON+x}" ]; then export PYSPARK_DRIVER_PYTHON; fi
if [ -n "$HADOOP_HOME" ] && [ -z "$SPARK_DIST_CLASSPATH" ]; then
  export SPARK_DIST_CLASSPATH="$($HADOOP_HOME/bin/hadoop classpath)"
fi
if [ -n "${HADOOP_CONF_DIR+x}" ]; then SPARK_CLASSPATH="$HADOOP_CONF_DIR:$SPARK_CLASSPATH"; fi
if [ -n "${SPARK_CONF_DIR+x}" ]; then
  SPARK_CLASSPATH="$SPARK_CONF_DIR:$SPARK_CLASSPATH"
elif [ -n "$SPARK_HOME" ]; then
  SPARK_CLASSPATH="$SPARK_HOME/conf:$SPARK_CLASSPATH"
fi
SPARK_CLASSPATH="$SPARK_CLASSPATH:$PWD"
case "$1" in
  driver|executor) echo "not a pass-through command" >&2; exit 1 ;;
  *) echo "Non-spark-on-k8s command provided, proceeding in pass-through mode..." >&2; CMD=("$@") ;;
esac
exec /usr/bin/tini -s -- "${CMD[@]}"
"""


class BenchError(RuntimeError):
    pass


def own_kib(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# ---- processes ---------------------------------------------------------------------------------------------


@dataclass
class Line:
    tag: str
    values: list[int]
    arrived: int  # monotonic ns when the bench read it


class Run:
    """One wrapper process with pipes on stdin/stdout/stderr and a pidfd; everything waited for by select."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.argv = list(argv)
        self.lines: list[Line] = []
        self.cursor = 0
        self.partial = b""
        self.stderr = bytearray()
        self.exited_at: int | None = None
        self.child_pid: int | None = None
        self.child_pidfd: int | None = None  # to kill the child safely (no PID reuse) if a run breaks
        self.reaped = False
        self.spawner_hwm = own_kib("VmHWM")  # posix_spawn's vfork: exec folds this into the child's ru_maxrss
        in_r, self.stdin = os.pipe()
        self.stdout, out_w = os.pipe()
        self.errfd, err_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        try:
            self.spawned = time.monotonic_ns()
            self.pid = os.posix_spawn(
                self.argv[0], self.argv, env, file_actions=actions, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ)
            )
        except OSError:
            for fd in (self.stdin, self.stdout, self.errfd):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        self.pidfd: int | None = os.pidfd_open(self.pid)
        self.open = {self.stdout, self.errfd}

    # -- waiting
    def pump(self, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Read whatever arrives (stdout lines, stderr, the pidfd) until done() or the deadline."""
        deadline = time.monotonic() + timeout
        while not done():
            watch = list(self.open) + ([self.pidfd] if self.pidfd is not None else [])
            if not watch:
                raise BenchError(f"{self.label()}: everything closed before {what}{self.stderr_text()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.label()}: no {what} within {timeout:g}s{self.stderr_text()}")
            ready, _, _ = select.select(watch, [], [], left)
            now = time.monotonic_ns()
            if self.pidfd is not None and self.pidfd in ready:
                self.exited_at = now
                os.close(self.pidfd)
                self.pidfd = None
            if self.stdout in ready:
                self.read_stdout(now)
            if self.errfd in ready:
                data = os.read(self.errfd, 65536)
                if data:
                    self.stderr += data
                else:
                    self.open.discard(self.errfd)

    def read_stdout(self, now: int) -> None:
        data = os.read(self.stdout, 65536)
        if not data:
            self.open.discard(self.stdout)
            return
        self.partial += data
        *complete, self.partial = self.partial.split(b"\n")
        for raw in complete:
            tag, *values = raw.decode(errors="replace").split() or [""]
            if not tag or not all(v.isdigit() for v in values):
                continue  # not one of the child's timing lines (a real entrypoint.sh's pass-through notice)
            self.lines.append(Line(tag, [int(v) for v in values], now))
            if tag == "ready" and self.child_pidfd is None:
                self.child_pid = int(values[1])
                try:
                    self.child_pidfd = os.pidfd_open(self.child_pid)
                except ProcessLookupError:
                    pass

    def next_line(self, tag: str, what: str) -> Line:
        """The next unread stdout line, which must carry `tag`."""

        def arrived() -> bool:
            return len(self.lines) > self.cursor

        self.pump(arrived, what)
        line = self.lines[self.cursor]
        self.cursor += 1
        if line.tag != tag:
            raise BenchError(f"{self.label()}: expected {tag!r}, got {line.tag} {line.values}{self.stderr_text()}")
        return line

    def wait_exit(self, what: str = "exit") -> int:
        self.pump(lambda: self.exited_at is not None, what)
        assert self.exited_at is not None
        return self.exited_at

    def drain(self) -> None:
        """After the exit: the pipes' last bytes (their writers are gone, so EOF comes at once)."""
        self.pump(lambda: not self.open, "end of output", timeout=5.0)

    def reap(self) -> int | None:
        """Reap the wrapper; its lifetime peak RSS in KiB (ru_maxrss), None if the spawner's own may hide it."""
        _, status, usage = os.wait4(self.pid, 0)
        self.reaped = True
        if os.waitstatus_to_exitcode(status) != 0:
            raise BenchError(f"{self.label()}: exit status {os.waitstatus_to_exitcode(status)}{self.stderr_text()}")
        return int(usage.ru_maxrss) if usage.ru_maxrss > self.spawner_hwm * 1.05 else None

    # -- /proc
    def status_kib(self, *keys: str) -> dict[str, int]:
        found = {}
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in keys:
                    found[key] = int(rest.split()[0])
        return found

    def cmdline(self) -> str:
        with open(f"/proc/{self.pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")

    # -- cleanup
    def close(self) -> None:
        """Kill whatever is left of this run (the wrapper by PID, the child by pidfd), reap, close every fd."""
        if not self.reaped:  # an unreaped child's PID cannot be reused: kill(2) is safe
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.child_pidfd is not None:
            try:
                signal.pidfd_send_signal(self.child_pidfd, signal.SIGKILL)
            except ProcessLookupError:  # exited already, as it should have
                pass
        if not self.reaped:
            os.waitpid(self.pid, 0)
            self.reaped = True
        for fd in (self.stdin, self.stdout, self.errfd, self.pidfd, self.child_pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pidfd = self.child_pidfd = None

    def label(self) -> str:
        words = [Path(a).name if i == 0 else a.splitlines()[0][:40] for i, a in enumerate(self.argv[:4])]
        return " ".join(words)

    def stderr_text(self) -> str:
        text = self.stderr.decode(errors="replace").strip()
        return "\n  its stderr:\n    " + "\n    ".join(text.splitlines()[-15:]) if text else ""


# ---- what is measured ------------------------------------------------------------------------------------------


@dataclass
class Wrapper:
    key: str
    label: str
    prefix: list[str]  # argv before the child's
    env: dict[str, str]
    lean: bool = False  # lifecycle: check the handover happened before reading RSS
    ready_log: str | None = None  # a stderr line the supervisor writes once it runs (info logging only)


@dataclass
class Samples:
    start: list[float] = field(default_factory=list)  # ms
    oneshot: list[float] = field(default_factory=list)  # ms
    rss: list[float] = field(default_factory=list)  # MiB
    peak: list[float] = field(default_factory=list)  # MiB
    fwd: list[float] = field(default_factory=list)  # ms
    exit: list[float] = field(default_factory=list)  # ms
    rss_detail: dict[str, int] = field(default_factory=dict)  # KiB, the last session's

    def extend(self, other: Samples) -> None:
        for name in ("start", "oneshot", "rss", "peak", "fwd", "exit"):
            getattr(self, name).extend(getattr(other, name))
        self.rss_detail = other.rss_detail or self.rss_detail


def ms(ns: int) -> float:
    return ns / 1e6


def one_shot(wrapper: Wrapper, child: str, samples: Samples) -> None:
    run = Run([*wrapper.prefix, child, "stamp"], wrapper.env)
    try:
        start = run.next_line("start", "start line").values[0]
        exited = run.wait_exit()
        run.drain()
        run.reap()
    finally:
        run.close()
    samples.start.append(ms(start - run.spawned))
    samples.oneshot.append(ms(exited - run.spawned))


def session(wrapper: Wrapper, child: str, signals: int, samples: Samples) -> None:
    run = Run([*wrapper.prefix, child, "serve"], wrapper.env)
    try:
        run.next_line("ready", "ready line")
        # Warm-up: a signal sent while lifecycle is still handing over stays blocked and pending until the
        # lean supervisor unblocks; once the child has it, the supervisor is in its event loop.
        os.kill(run.pid, signal.SIGUSR1)
        run.next_line("sig", "warm-up signal at the child")
        if wrapper.ready_log is not None:
            text = wrapper.ready_log.encode()
            run.pump(lambda: text in run.stderr, repr(wrapper.ready_log))
        if wrapper.lean and "lifecycle.supervise" not in run.cmdline():
            raise BenchError(f"{run.label()}: no handover to lifecycle.supervise: {run.cmdline()!r}")
        status = run.status_kib("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
        samples.rss.append(status["VmRSS"] / 1024)
        samples.rss_detail = status
        hwm = status["VmHWM"]
        for _ in range(signals):
            sent = time.monotonic_ns()
            os.kill(run.pid, signal.SIGUSR1)
            handled = run.next_line("sig", "forwarded SIGUSR1 at the child").values[0]
            samples.fwd.append(ms(handled - sent))
        os.write(run.stdin, b"x")
        exited = run.wait_exit()
        child_exit = run.next_line("exit", "child's exit line").values[0]
        run.drain()
        lifetime = run.reap()
        samples.peak.append(max(hwm, lifetime or 0) / 1024)
    finally:
        run.close()
    samples.exit.append(ms(exited - child_exit))


# The floor for any Python supervisor: the time to a first statement, and a bare interpreter's RSS.
PYTHON_START = """\
import os, time
t = time.monotonic_ns()
s = {k: v.split()[0] for k, _, v in (line.partition(":") for line in open("/proc/self/status")) if k[:2] == "Vm"}
os.write(1, b"start %d %s %s\\n" % (t, s["VmRSS"].encode(), s["VmHWM"].encode()))
"""


def python_floor(python: str, env: dict[str, str], samples: Samples) -> None:
    """`python -c` to its first statement (start, RSS) and `python -c pass` to its exit (one-shot column)."""
    run = Run([python, "-c", PYTHON_START], env)
    try:
        start, rss, hwm = run.next_line("start", "start line").values
        run.wait_exit()
        run.drain()
        run.reap()
    finally:
        run.close()
    samples.start.append(ms(start - run.spawned))
    samples.rss.append(rss / 1024)  # KiB
    samples.peak.append(hwm / 1024)
    run = Run([python, "-c", "pass"], env)
    try:
        exited = run.wait_exit()
        run.drain()
        run.reap()
    finally:
        run.close()
    samples.oneshot.append(ms(exited - run.spawned))


def direct_session(child: str, env: dict[str, str], signals: int, samples: Samples) -> None:
    """No wrapper: the signal goes straight to the child and its own exit is watched (the floor of fwd/exit)."""
    session(Wrapper("direct", "", [], env), child, signals, samples)
    samples.rss.pop()
    samples.peak.pop()


# ---- setup -------------------------------------------------------------------------------------------------------


def compile_child(directory: Path) -> str:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise BenchError("gcc not found: the child program is compiled at bench time")
    source = directory / "child.c"
    source.write_text(CHILD_SOURCE)
    binary = directory / "child"
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return str(binary)


def clean_env() -> dict[str, str]:
    """The caller's environment without any wrapper's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "TINI_", "DUMB_INIT_"))}


def tool(path: str) -> str:
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} not found or not executable")
    return path


def script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def wrappers(
    scratch: Path, bin_dir: Path, with_defaults: bool, others: Sequence[Path] = (), real_script: Path | None = None
) -> list[Wrapper]:
    env = clean_env()
    lifecycle = tool(str(bin_dir / "lifecycle"))
    java = shutil.which("java")
    java_home = str(Path(java).resolve().parents[1]) if java else "/usr/lib/jvm/default-java"
    upstream_env = {**env, "JAVA_HOME": java_home, "SPARK_HOME": str(scratch), "TMPDIR": str(scratch)}
    quiet = {**env, "LIFECYCLE_TERMINATION_LOG": "", "LIFECYCLE_LOG_LEVEL": "warning"}
    like = script(scratch / "like.sh", UPSTREAM_ENTRYPOINT)
    found = [
        Wrapper("tini", "tini -s", [tool("/usr/bin/tini"), "-s", "--"], env),
        Wrapper("upstream", "entrypoint.sh-like + tini ⁵", [like], upstream_env),
    ]
    if real_script is not None:  # run from the scratch directory, where it writes java_opts.txt
        real = script(scratch / "entrypoint.sh", real_script.read_text())
        found.append(Wrapper("real", "entrypoint.sh (given) + tini ⁶", [real], upstream_env))
    found += [
        Wrapper("dumb-init", "dumb-init", [tool("/usr/bin/dumb-init")], env),
        Wrapper("lifecycle", "lifecycle ¹", [lifecycle], quiet, lean=True),
    ]
    for index, other in enumerate(others, 1):
        label = "lifecycle ¹, other build ⁷" + (f" {'abcdefgh'[index - 1]}" if len(others) > 1 else "")
        found.append(Wrapper(f"other{index}", label, [tool(str(other / "lifecycle"))], quiet, lean=True))
    if with_defaults:
        defaults = dict(env)
        if not os.path.exists("/dev/termination-log"):  # the kubelet mounts one in every container
            log = scratch / "termination-log"
            log.touch()
            defaults["LIFECYCLE_TERMINATION_LOG"] = str(log)
        found.append(
            Wrapper("defaults", "lifecycle (defaults) ²", [lifecycle], defaults, lean=True, ready_log="running as pid")
        )
    return found


# ---- report ------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def med(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def spread(values: Sequence[float], digits: int) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.{digits}f} / {percentile(values, 0.9):.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "—"
    return f"{value / base:.1f}x"


def single(values: Sequence[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f}" if values else "—"


COLUMNS = [
    ("wrapper", "<"),
    ("start→exec ms med / p90", ">"),
    ("÷ tini", ">"),
    ("one-shot ms med / p90", ">"),
    ("RSS MiB", ">"),
    ("÷ tini", ">"),
    ("peak MiB", ">"),
    ("fwd ms med / p90", ">"),
    ("÷ tini", ">"),
    ("exit ms med / p90", ">"),
    ("÷ tini", ">"),
]


def table(rows: list[tuple[str, Samples]], tini: Samples) -> str:
    cells = []
    for label, s in rows:
        cells.append(
            [
                label,
                spread(s.start, 2),
                ratio(med(s.start), med(tini.start)),
                spread(s.oneshot, 2),
                single(s.rss, 1),
                ratio(med(s.rss), med(tini.rss)),
                single(s.peak, 1),
                spread(s.fwd, 3),
                ratio(med(s.fwd), med(tini.fwd)),
                spread(s.exit, 3),
                ratio(med(s.exit), med(tini.exit)),
            ]
        )
    widths = [max(len(name), *(len(row[i]) for row in cells)) for i, (name, _) in enumerate(COLUMNS)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.ljust(width) if align == "<" else value.rjust(width)
            for value, width, (_, align) in zip(values, widths, COLUMNS, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if a == ">" else ("-" * (w + 2)) for w, (_, a) in zip(widths, COLUMNS, strict=True)
    )
    return "\n".join([line([name for name, _ in COLUMNS]), rule + "|", *(line(row) for row in cells)])


def verdicts(name: str, s: Samples, tini: Samples) -> list[str]:
    out = []
    if s.rss:
        rss = max(s.rss)
        ok = rss <= RSS_TARGET_MIB
        out.append(
            f"{'PASS' if ok else 'MISS'}  {name}: supervising RSS <= {RSS_TARGET_MIB:g} MiB: "
            f"{rss:.1f} MiB (largest of {len(s.rss)} sessions)"
        )
    if s.fwd and tini.fwd:
        diff = statistics.median(s.fwd) - statistics.median(tini.fwd)
        diff90 = percentile(s.fwd, 0.9) - percentile(tini.fwd, 0.9)
        ok = diff <= FWD_TARGET_MS
        out.append(
            f"{'PASS' if ok else 'MISS'}  {name}: forwarding within {FWD_TARGET_MS:g} ms of tini's: "
            f"median {diff:+.3f} ms (p90 {diff90:+.3f} ms)"
        )
    if s.exit:
        value = statistics.median(s.exit)
        ok = value < EXIT_TARGET_MS
        out.append(
            f"{'PASS' if ok else 'MISS'}  {name}: exit latency < {EXIT_TARGET_MS:g} ms: median {value:.3f} ms "
            f"(p90 {percentile(s.exit, 0.9):.3f} ms)"
        )
    return out


def material(a: Samples, b: Samples) -> list[str]:
    """Metrics where b's median differs from a's by more than MATERIAL (relative) and MATERIAL_FLOOR (absolute)."""
    found = []
    for key, floor in MATERIAL_FLOOR.items():
        x, y = med(getattr(a, key)), med(getattr(b, key))
        if x is None or y is None:
            continue
        if abs(y - x) > floor and abs(y - x) > MATERIAL * max(abs(x), 1e-9):
            found.append(f"{key} {x:.3g} → {y:.3g}")
    return found


def version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def processes() -> int:
    return sum(name.isdigit() for name in os.listdir("/proc"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench supervision", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="one-shot runs and sessions per wrapper (default 20)")
    parser.add_argument("--signals", type=int, default=5, help="timed SIGUSR1s per session (default 5)")
    parser.add_argument(
        "--defaults-runs",
        type=int,
        default=None,
        help="runs and sessions for lifecycle with default settings (default: half of --runs; 0 skips the row)",
    )
    parser.add_argument(
        "--install", choices=("wheel", "dev"), default="wheel",
        help="wheel: a fresh non-editable install of this checkout, as in an image (default); dev: the editable .venv",
    )  # fmt: skip
    parser.add_argument(
        "--other-lifecycle", type=Path, metavar="BIN_DIR", action="append", default=[],
        help="also run BIN_DIR/lifecycle (another build: before/after a change, in one run); may be repeated",
    )  # fmt: skip
    parser.add_argument(
        "--upstream-script", type=Path, metavar="FILE",
        help="also run this entrypoint.sh (e.g. apache/spark's own) as the image runs it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    defaults_runs = args.runs // 2 if args.defaults_runs is None else args.defaults_runs
    if args.runs < 1 or args.signals < 1 or defaults_runs < 0:
        parser.error("--runs and --signals must be at least 1, --defaults-runs at least 0")
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-supervision-") as name:
        scratch = Path(name)
        child = compile_child(scratch)
        env = clean_env()
        if args.install == "wheel":
            from bench.decommission import wheel_install

            bin_dir = Path(wheel_install(scratch / "install"))
        else:
            bin_dir = BIN
        others = [path.resolve() for path in args.other_lifecycle]
        measured = wrappers(scratch, bin_dir, defaults_runs > 0, others, args.upstream_script)
        python = str(bin_dir / "python")  # the interpreter lifecycle runs on: its floor
        os.chdir(scratch)  # every wrapper starts there (a real entrypoint.sh writes java_opts.txt where it starts)
        direct_wrapper = Wrapper("direct", "", [], env)
        results = {w.key: Samples() for w in measured}
        direct, floor = Samples(), Samples()
        # Warm-up, not counted: page cache, .pyc files, the dynamic loader's caches.
        for w in [*measured, direct_wrapper]:
            one_shot(w, child, Samples())
        python_floor(python, env, Samples())
        paired = Samples()  # row ¹'s samples from the runs where the defaults row ran too: compared with it
        for index in range(args.runs):  # wrappers take turns, so load changes hit them all alike
            with_defaults = (index * defaults_runs) // args.runs != ((index + 1) * defaults_runs) // args.runs
            for w in measured:
                if w.key == "defaults" and not with_defaults:
                    continue
                this = Samples()
                one_shot(w, child, this)
                session(w, child, args.signals, this)
                results[w.key].extend(this)
                if w.key == "lifecycle" and with_defaults:
                    paired.extend(this)
            one_shot(direct_wrapper, child, direct)
            direct_session(child, env, args.signals, direct)
            python_floor(python, env, floor)
            if sys.stderr.isatty():
                print(f"\rrun {index + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print("\r" + " " * 20 + "\r", end="", file=sys.stderr, flush=True)
        elapsed = time.monotonic() - began
        os.chdir(REPO_ROOT)

    tini = results["tini"]
    rows = [(w.label, results[w.key]) for w in measured]
    rows += [("python -c (floor) ³", floor), ("no wrapper (floor) ⁴", direct)]
    sessions = f"{args.runs} one-shot runs + {args.runs} sessions x {args.signals} signals per wrapper"
    if defaults_runs:
        both = min(defaults_runs, args.runs)
        sessions += f" ({both} + {both} for lifecycle (defaults), spread evenly)"
    installed = "a wheel of this checkout in a fresh venv" if args.install == "wheel" else "the editable .venv"
    print(f"supervision: {sessions}; {elapsed:.1f} s; lifecycle from {installed}")
    print(
        f"host: {os.cpu_count()} CPUs, load {load_before:.2f} → {os.getloadavg()[0]:.2f}, {processes()} processes in "
        f"/proc; Linux {platform.release()}; Python {platform.python_version()}; "
        f"{version(['/usr/bin/tini', '--version'])}; {version(['/usr/bin/dumb-init', '--version'])}"
    )
    print()
    print(table(rows, tini))
    print()
    print("med / p90: median and 90th percentile (nearest rank); ÷ tini: ratio of medians; MiB = 2^20 bytes")
    print("RSS: VmRSS while supervising (lifecycle: after the handover); peak: the wrapper's lifetime high-water")
    print("     mark (lifecycle: its start-up image, from wait4's ru_maxrss), else VmHWM of the supervising image")
    print("¹ LIFECYCLE_TERMINATION_LOG= (empty) and LIFECYCLE_LOG_LEVEL=warning")
    if defaults_runs:
        where = (
            "/dev/termination-log"
            if os.path.exists("/dev/termination-log")
            else "a temporary file: this host has no /dev/termination-log, which the kubelet mounts in every pod"
        )
        print("² no LIFECYCLE_* variables: info logging; the child's stderr captured for the termination message")
        print(f"  ({where})")
    print("³ start→exec: `python -c` to its first statement; RSS/peak: that interpreter's; one-shot: `python -c pass`")
    print("⁴ the child run directly: exec cost; fwd: kill(child) itself; exit: the child's own pidfd")
    print("⁵ upstream's way in: entrypoint.sh's pass-through steps restated in bash (set -ex, id, getent, the")
    print("  SPARK_JAVA_OPT_ pipeline, the classpath), then exec tini -s; JAVA_HOME set, as in the images")
    if args.upstream_script:
        print(f"⁶ {args.upstream_script}, pass-through mode, same environment as ⁵")
    for index, other in enumerate(others, 1):
        which = f" {'abcdefgh'[index - 1]}" if len(others) > 1 else ""
        print(f"⁷{which} {other / 'lifecycle'}, settings as ¹")
    detail = results["lifecycle"].rss_detail
    if detail:
        print(
            f"lifecycle supervisor (last session): RssAnon {detail.get('RssAnon', 0) / 1024:.1f} MiB + "
            f"RssFile {detail.get('RssFile', 0) / 1024:.1f} MiB + RssShmem {detail.get('RssShmem', 0) / 1024:.1f} MiB"
        )
    if defaults_runs:
        diff = material(paired, results["defaults"])  # the same runs' row ¹, so the same machine load
        print(
            "lifecycle (defaults) differs materially from lifecycle ¹ in the same runs: " + "; ".join(diff)
            if diff
            else "lifecycle (defaults) does not differ materially from lifecycle ¹ in the same runs"
        )
    print()
    print("targets:")
    for line in verdicts("lifecycle ¹", results["lifecycle"], tini):
        print("  " + line)
    for key, label in (("upstream", "entrypoint.sh-like ⁵"), ("real", "entrypoint.sh ⁶")):
        lifecycle, upstream = med(results["lifecycle"].start), med(results[key].start) if key in results else None
        if lifecycle is not None and upstream:
            verdict = "PASS" if lifecycle <= START_TARGET * upstream else "MISS"
            print(f"  {verdict}  lifecycle ¹: start→exec within {START_TARGET:g}x {label}'s: {lifecycle:.1f} ms, "
                  f"{lifecycle / upstream:.1f}x {upstream:.1f} ms")  # fmt: skip
    if defaults_runs:
        for line in verdicts("lifecycle (defaults) ²", results["defaults"], tini):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
