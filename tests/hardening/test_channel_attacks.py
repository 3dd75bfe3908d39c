"""Attacks on the preStop channel (issue #12, classes 3 and 4): what a client can make the supervisor hold, and
who may speak on the channel at either end.

Every pod is lifecycle as PID 1 of new PID and mount namespaces (examples/pods.py, as in test_prestop.py),
sharing the test's network namespace, so the test process itself is "another container of the pod": same
abstract socket namespace, another mount namespace, and a pid the pod cannot see. Clients inside the pod join
its PID and mount namespaces with nsenter, as the kubelet's exec does; `setpriv` makes one of another uid, and
`nsenter -p` alone one in the pod's PID namespace but the host's mount namespace. The child is
tests/helpers/print_signals.py (it prints each signal's number and exits 0 on SIGPWR), so whether the decommission
signal was sent is on its stdout. Nothing sleeps: each step waits for a process's own line or its exit, bounded.
Every process a test starts is SIGKILLed by pidfd when it ends (the pods fixture, `Client.kill`).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.pods import LIFECYCLE, NSENTER, SYSTEM_PATH, UNSHARE, HookResult, Pod, base_env
from examples.proc import Streams, children, kill_by_pidfd
from lifecycle import control
from lifecycle.errors import DECOM_DEADLINE, DECOM_DRAINED, DECOM_NOT_FOUND
from lifecycle.supervise import channel
from lifecycle.supervise.refusals import REFUSALS_LOGGED
from tests.helpers.processes import is_alive

PRLIMIT = shutil.which("prlimit", path=SYSTEM_PATH)
SETPRIV = shutil.which("setpriv", path=SYSTEM_PATH)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.hardening,
    pytest.mark.pid1,
    pytest.mark.skipif(
        os.geteuid() != 0 or None in (UNSHARE, NSENTER, PRLIMIT, SETPRIV),
        reason="needs root, unshare, nsenter, prlimit and setpriv",
    ),
    pytest.mark.timeout(180),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PRINT_SIGNALS = [sys.executable, "-I", str(REPO_ROOT / "tests" / "helpers" / "print_signals.py")]
CHILD = [*PRINT_SIGNALS, "--exit-on", "PWR:0"]  # the executor's stand-in: SIGPWR is "30", then exit 0
PWR_LINE = str(int(signal.SIGPWR))
TIMEOUT = 30.0
STARTUP = 1.5  # seconds for nsenter and an interpreter on a loaded machine
NOBODY = "65534"
REQUEST = b"request=decommission"

# A client of the channel: `python -c CLIENT NAME MODE [N]`. NAME `auto` is the well-known name of the client's
# own mount namespace; otherwise the name without its leading NUL. Modes:
#   cycles N    connect and close N times (a line `progress I` every 250, then `done`)
#   refusals N  N times: connect, send the request, read every answer to the end; `done {answers: count}`
#   hold N      open N connections (each connect bounded by 5 s), print `holding OPENED`, wait for a line on
#               stdin, close them all, print `released`
#   proxy       for each JSON line on stdin ({"messages": [hex], "read": bool}): connect, send each message,
#               with `read` collect the answers until end of stream (at most 2 s); print one JSON line back
CLIENT = r"""
import json, os, select, socket, struct, sys
name, mode = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 0
if name == "auto":
    name = "lifecycle-control/" + os.readlink("/proc/self/ns/mnt").removeprefix("mnt:[").rstrip("]")
address = "\0" + name

def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
    sock.connect(address)
    return sock

def answers(sock, seconds):
    got, eof = [], False
    sock.setblocking(False)
    while True:
        if not select.select([sock], [], [], seconds)[0]:
            return got, eof
        try:
            data = sock.recv(65536)
        except (BlockingIOError, ConnectionResetError):  # ECONNRESET: what was sent before it still comes
            continue
        except OSError:
            return got, True
        if not data:
            return got, True
        got.append(data.decode("utf-8", "replace"))

def send(sock, data):
    try:
        sock.send(data, socket.MSG_NOSIGNAL)
        return True
    except OSError:
        return False

if mode == "cycles":
    for i in range(1, count + 1):
        connect().close()
        if i % 250 == 0:
            print(f"progress {i}", flush=True)
    print("done", flush=True)
elif mode == "refusals":
    seen = {}
    for _ in range(count):
        sock = connect()
        send(sock, b"request=decommission")
        got, eof = answers(sock, 2.0)
        key = " ".join(line.splitlines()[0] for line in got) or "nothing"
        seen[key] = seen.get(key, 0) + 1
        sock.close()
    print("done " + json.dumps(seen), flush=True)
elif mode == "hold":
    held = []
    for _ in range(count):
        try:
            held.append(connect())
        except OSError as exc:
            print(f"connect failed: {exc}", flush=True)
            break
    print(f"holding {len(held)}", flush=True)
    sys.stdin.readline()
    for sock in held:
        sock.close()
    print("released", flush=True)
elif mode == "proxy":
    for line in sys.stdin:
        case = json.loads(line)
        result = {"connected": True, "sent": 0, "answers": [], "eof": False}
        try:
            sock = connect()
        except OSError as exc:
            result["connected"] = False
            result["error"] = str(exc)
        else:
            for message in case["messages"]:
                result["sent"] += send(sock, bytes.fromhex(message))
            if case["read"] and case["messages"]:
                result["answers"], result["eof"] = answers(sock, 2.0)
            sock.close()
        print(json.dumps(result), flush=True)
"""

# Holds the well-known name of the mount namespace given (argv[1], the inode) from outside it, and answers
# every connection as a drained supervisor would: `event=accepted`, then `event=exited`. Prints `bound`, then
# `received <message>` for anything a client sends it.
SQUATTER = r"""
import os, select, socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
listener.bind("\0lifecycle-control/" + sys.argv[1])
listener.listen(64)
print("bound", flush=True)
while True:
    conn, _ = listener.accept()
    for answer in (b"event=accepted\nstate=decommissioning\nchild_pid=2\nsignal=SIGPWR",
                   b"event=exited\nexit_code=0\nchild_code=0\nreason=drained\ndeadline_passed=false"):
        try:
            conn.send(answer, socket.MSG_NOSIGNAL)
        except OSError:
            break
    if select.select([conn], [], [], 0.5)[0]:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if data:
            print("received " + data.decode("utf-8", "replace").replace("\n", " "), flush=True)
    conn.close()
"""

# PID 1 of a pod without lifecycle that binds the pod's well-known name and misbehaves as its argv[1] says, for
# the hook: it is in the pod's namespaces with the hook's uid, so the hook authenticates it and has to cope.
FAKE_SERVER = r"""
import os, select, socket, sys
mode = sys.argv[1]
name = "\0lifecycle-control/" + os.readlink("/proc/self/ns/mnt").removeprefix("mnt:[").rstrip("]")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
listener.bind(name)
listener.listen(0 if mode == "full-backlog" else 8)
if mode == "full-backlog":  # one connection nobody accepts fills a backlog of 0
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    filler.connect(name)
print(f"ready (pid: {os.getpid()}) {mode}", flush=True)
kept = []
while True:
    if mode == "full-backlog":
        select.select([], [], [])
    conn, _ = listener.accept()
    kept.append(conn)
    request = conn.recv(65536)
    print("received " + request.decode("utf-8", "replace"), flush=True)
    accepted = b"event=accepted\nstate=decommissioning\nchild_pid=2\nsignal=SIGPWR\ndeadline_s=1\nkill_grace_s=0"
    if mode == "garbage":
        conn.send(b"\xff\xfe garbage without an equals sign")
    elif mode == "accepted-then-garbage":
        conn.send(accepted)
        conn.send(b"\x00\x01\x02")
    elif mode == "accepted-then-silent":
        conn.send(accepted)
    elif mode == "accepted-then-hangup":
        conn.send(accepted)
        conn.close()
    elif mode == "unknown-event":
        conn.send(b"event=drained\nreason=trust me")
    # "silent": never a word
"""


# ---- pods and clients -----------------------------------------------------------------------------------------


class ChannelPod(Pod):
    """A Pod (examples/pods.py) whose PID 1 is `command` under lifecycle (or alone with lifecycle=False), optionally
    under `prlimit --nofile`, and optionally gated: it waits for release() before it starts, so that something
    can be done first with its mount namespace (which exists from the start)."""

    def __init__(
        self, command: list[str], env: dict[str, str], lifecycle: bool = True, nofile: int | None = None,
        gated: bool = False,
    ) -> None:  # fmt: skip
        assert PRLIMIT is not None and LIFECYCLE is not None
        wrapper = []
        if gated:
            wrapper = ["sh", "-c", 'echo gated && read _ && exec "$@" </dev/null', "gate"]
        if nofile is not None:
            wrapper = [*wrapper, PRLIMIT, f"--nofile={nofile}:{nofile}"]
        stdin = subprocess.PIPE if gated else subprocess.DEVNULL
        super().__init__("container" if lifecycle else "custom", command, env, wrapper=wrapper, stdin=stdin)
        if gated:
            self.streams.wait_for("gated")  # PID 1 exists, and so does the pod's mount namespace

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not flush it again

    def host_pid(self) -> int:
        """PID 1 of the pod as the host numbers it."""
        (pid,) = children(self.process.pid)
        return pid

    def inode(self) -> str:
        """The pod's mount namespace inode: its well-known channel name is lifecycle-control/<inode>."""
        return os.readlink(f"/proc/{self.host_pid()}/ns/mnt").removeprefix("mnt:[").rstrip("]")

    def descriptors(self) -> int:
        """How many file descriptors PID 1 (lifecycle) holds."""
        return len(os.listdir(f"/proc/{self.host_pid()}/fd"))

    def log(self) -> str:
        return self.streams.text("err")


StartChannelPod = Callable[..., ChannelPod]


@pytest.fixture
def pods() -> Iterator[StartChannelPod]:
    """`pods(command, lifecycle=True, nofile=None, gated=False, **env)`; every process of every pod is killed after."""
    started: list[ChannelPod] = []

    def start(command: list[str], lifecycle: bool = True, nofile: int | None = None, gated: bool = False,
              **env: str) -> ChannelPod:  # fmt: skip
        pod = ChannelPod(command, base_env(**env), lifecycle, nofile, gated)
        started.append(pod)
        return pod

    yield start
    for pod in started:
        pod.kill()


class Client:
    """A process running CLIENT (or another script), with stdout read as lines; SIGKILLed by pidfd when done."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.streams = Streams(self.process)

    def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = TIMEOUT) -> int:
        self.streams.to_eof(timeout)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            kill_by_pidfd([*children(self.process.pid), self.process.pid])
        self.process.wait(timeout=TIMEOUT)


@pytest.fixture
def clients() -> Iterator[Callable[[list[str]], Client]]:
    started: list[Client] = []

    def start(argv: list[str]) -> Client:
        client = Client(argv)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


def in_pod(pod: Pod, *args: str, mount: bool = True, uid: str | None = None) -> list[str]:
    """argv for CLIENT run in the pod's PID namespace (and mount namespace unless mount=False), as `uid`."""
    assert NSENTER is not None and SETPRIV is not None
    argv = [NSENTER, "-t", str(pod.processes()[1]), "-p", *(["-m"] if mount else [])]
    if uid is not None:
        argv += [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return [*argv, sys.executable, "-I", "-c", CLIENT, *args]


def started_pod(pods: StartChannelPod, **kwargs: object) -> ChannelPod:
    pod = pods(CHILD, **kwargs)
    pod.ready()
    return pod


def drain(pod: ChannelPod) -> HookResult:
    """The real preStop command drains the child; lifecycle exits 0 after it."""
    result = pod.run_hook()
    assert result.code == DECOM_DRAINED, f"{result.stderr}\n{pod.streams.dump()}"
    assert "sent SIGPWR to the executor (pid 2)" in result.stderr, result.stderr
    assert pod.exit_code() == 0, pod.streams.dump()
    assert signalled(pod)
    return result


def signalled(pod: ChannelPod) -> bool:
    """Whether the child has printed SIGPWR's number (it had the decommission signal)."""
    return PWR_LINE in [line for _, line in pod.streams.lines["out"]]


def assert_clean(pod: ChannelPod) -> None:
    log = pod.log()
    assert "Traceback" not in log and "internal error" not in log, log


def refusals(log: str) -> tuple[int, int, list[int]]:
    """(refusal lines, refusals counted in summary lines, each summary's total so far) in lifecycle's log."""
    lines = [line for line in log.splitlines() if "lifecycle: " in line and "preStop channel connection" in line]
    summaries = [re.search(r"(\d+) more preStop channel connection\(s\) refused .*\((\d+) refused in all\)", line)
                 for line in lines]  # fmt: skip
    counted = [match for match in summaries if match is not None]
    return len(lines) - len(counted), sum(int(m.group(1)) for m in counted), [int(m.group(2)) for m in counted]


# ---- a. descriptors: thousands of connections, and connections held --------------------------------------------


def test_thousands_of_connections_leave_lifecycle_holding_a_bounded_number_of_descriptors(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """Under RLIMIT_NOFILE 1024: 3,000 connect/close cycles from inside the container (authenticated) and 3,000 from
    outside (refused), then 2,000 connections held open from each side. lifecycle's descriptor count should stay
    bounded all along, and a real preStop drain should still work afterwards (hook 0, lifecycle 0)."""
    pod = started_pod(pods, nofile=1024)
    baseline = pod.descriptors()
    bound = baseline + 3 * channel.MAX_HOOKS + 4  # connections, their pidfds, departing pidfds, transients
    most = baseline

    inside = clients(in_pod(pod, "auto", "cycles", "3000"))
    while "done" not in inside.streams.text("out"):
        inside.streams.pump(time.monotonic() + TIMEOUT)
        most = max(most, pod.descriptors())
    assert inside.finish() == 0, inside.streams.dump()

    outside = clients([sys.executable, "-I", "-c", CLIENT, "lifecycle-control/" + pod.inode(), "cycles", "3000"])
    while "done" not in outside.streams.text("out"):
        outside.streams.pump(time.monotonic() + TIMEOUT)
        most = max(most, pod.descriptors())
    assert outside.finish() == 0, outside.streams.dump()

    assert PRLIMIT is not None
    for argv in (
        [PRLIMIT, "--nofile=4096:4096", *in_pod(pod, "auto", "hold", "2000")],
        [PRLIMIT, "--nofile=4096:4096", sys.executable, "-I", "-c", CLIENT, "lifecycle-control/" + pod.inode(),
         "hold", "2000"],
    ):  # fmt: skip
        holder = clients(argv)
        (line,) = holder.streams.wait_for("holding ")
        assert line == "holding 2000", holder.streams.dump()
        most = max(most, pod.descriptors())
        holder.say("release")
        holder.streams.wait_for("released")
        assert holder.finish() == 0

    assert most <= bound, f"lifecycle held {most} descriptors (baseline {baseline}, bound {bound})"
    assert is_alive(pod.pidfd(1)) and is_alive(pod.pidfd(2))
    assert not signalled(pod)
    drain(pod)
    assert_clean(pod)
    _, _, totals = refusals(pod.log())
    assert totals and totals[-1] >= 3000  # every refusal counted, whether logged or not


def test_at_the_descriptor_limit_lifecycle_sheds_connections_and_keeps_supervising(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """With so few descriptors that 16 connections cannot all be kept (EMFILE), lifecycle should accept and close
    the excess through its reserve descriptor, say so, never busy-loop or die, and drain afterwards."""
    pod = started_pod(pods, nofile=1024)
    limit = pod.descriptors()  # not one descriptor free but the reserve
    assert PRLIMIT is not None
    # Lower lifecycle's own limit while it runs (prlimit --pid): every accept meets EMFILE.
    subprocess.run([PRLIMIT, f"--pid={pod.host_pid()}", f"--nofile={limit}:1024"], check=True, timeout=TIMEOUT)
    holder = clients(in_pod(pod, "auto", "hold", "40"))
    assert holder.streams.wait_for("holding ") == ["holding 40"], holder.streams.dump()
    pod.streams.wait_for("refused a preStop channel connection: Too many open files (the descriptor limit)", "err")
    assert pod.descriptors() <= limit
    before = sum(cpu_seconds(pod.host_pid()))
    time.sleep(0.5)  # CPU time needs time to pass: a busy loop on the readable listener would burn ~0.5 s of it
    assert sum(cpu_seconds(pod.host_pid())) - before < 0.25, "lifecycle spins at the descriptor limit"
    assert is_alive(pod.pidfd(1)) and is_alive(pod.pidfd(2))
    holder.say("release")
    holder.streams.wait_for("released")
    assert holder.finish() == 0
    subprocess.run([PRLIMIT, f"--pid={pod.host_pid()}", "--nofile=1024:1024"], check=True, timeout=TIMEOUT)
    drain(pod)
    assert_clean(pod)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


# ---- b. refused peers: bounded log lines, every one counted ------------------------------------------------------


def test_refused_peers_in_a_loop_give_a_bounded_number_of_log_lines_and_a_count(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """300 requests from another uid inside the container: each is answered `refused`; lifecycle's log should show
    at most REFUSALS_LOGGED lines per window and a summary counting the rest; the child is never signalled."""
    pod = started_pod(pods)
    client = clients(in_pod(pod, "auto", "refusals", "300", uid=NOBODY))
    (line,) = client.streams.wait_for("done ")
    assert client.finish() == 0
    seen = json.loads(line.removeprefix("done "))
    assert list(seen) == ["event=refused"] and seen["event=refused"] == 300, seen
    assert not signalled(pod)
    drain(pod)
    logged, counted, totals = refusals(pod.log())
    assert logged + counted == 300, pod.log()
    assert logged <= REFUSALS_LOGGED * (1 + len(totals)), pod.log()
    assert totals[-1] == 300, pod.log()
    assert f"uid 65534 is neither root nor the uid {os.geteuid()}" in pod.log()
    assert_clean(pod)


# ---- c. a squatter on the well-known name ----------------------------------------------------------------------


def start_squatter(pod: ChannelPod, clients: Callable[[list[str]], Client]) -> Client:
    """A host process (the pod's network namespace, another mount namespace) holding the pod's well-known name."""
    squatter = clients([sys.executable, "-I", "-c", SQUATTER, pod.inode()])
    squatter.streams.wait_for("bound")
    return squatter


def test_a_squatter_on_the_name_gets_an_error_line_a_private_channel_and_never_a_request(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """A process outside the container binds the well-known name before lifecycle starts and answers as a drained
    supervisor would. lifecycle should log an error and listen on a private name; the hook should ignore the
    squatter (never sending it the request), find the private channel through PID 1's command line, and drain
    the child for real: hook 0 only once the child had SIGPWR and exited, lifecycle 0."""
    pod = pods(CHILD, gated=True)
    squatter = start_squatter(pod, clients)
    pod.release()
    pod.ready()
    (error,) = [line for line in pod.log().splitlines() if "error: the decommission channel's name is held by" in line]
    assert "not this container's lifecycle: listening on a private name instead" in error
    assert "outside this container's PID namespace" in error
    assert not signalled(pod)

    result = drain(pod)

    assert "the decommission channel is held by a process outside this container's PID namespace" in result.stderr
    assert "reached lifecycle's supervisor (pid 1) on the private channel it publishes" in result.stderr
    assert "received" not in squatter.streams.text("out"), squatter.streams.dump()
    assert_clean(pod)


def test_a_squatter_without_lifecycle_never_yields_exit_0(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """No lifecycle in the pod, a squatter answering `accepted` and `exited`: the hook should ignore it, find no
    supervisor and no JVM, and exit 3; the child is never signalled."""
    pod = pods(CHILD, lifecycle=False, gated=True)
    squatter = start_squatter(pod, clients)
    pod.release()
    pod.ready()

    result = pod.run_hook()

    assert result.code == DECOM_NOT_FOUND, result.stderr
    assert "not this container's lifecycle" in result.stderr and "no executor JVM found" in result.stderr
    assert "received" not in squatter.streams.text("out")
    assert not signalled(pod) and is_alive(pod.pidfd(1))


def test_a_squatter_of_the_private_name_is_impossible_and_a_late_squatter_changes_nothing(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """Once lifecycle holds the well-known name nobody can take it: a squatter started afterwards fails to bind,
    and the drain goes through the well-known name as usual."""
    pod = started_pod(pods)
    late = clients([sys.executable, "-I", "-c", SQUATTER, pod.inode()])
    assert late.finish() != 0
    assert "Address already in use" in late.streams.text("err")
    result = drain(pod)
    assert "private channel" not in result.stderr and "not this container's lifecycle" not in result.stderr


# ---- d. a foreign mount namespace with the same uid ------------------------------------------------------------


def test_requests_from_another_mount_namespace_are_refused_and_the_child_is_never_signalled(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """The same uid (root) asking from outside the container: from the host (pid not visible in the pod), and from
    the pod's PID namespace but the host's mount namespace (pid visible, namespace not ours). Each should be
    refused and closed; the child never signalled; the real drain still works."""
    pod = started_pod(pods)
    name = "lifecycle-control/" + pod.inode()
    for argv, why in (
        ([sys.executable, "-I", "-c", CLIENT, name, "refusals", "2"], "not visible in this container's PID namespace"),
        (in_pod(pod, name, "refusals", "2", mount=False), "in another mount namespace"),
    ):
        client = clients(argv)
        (line,) = client.streams.wait_for("done ")
        assert client.finish() == 0
        assert json.loads(line.removeprefix("done ")) == {"event=refused": 2}, line  # 4 lines: none rate-limited
        pod.streams.wait_for(why, "err")
    assert not signalled(pod)
    assert is_alive(pod.pidfd(2))
    drain(pod)
    assert_clean(pod)


def test_the_request_from_the_test_process_itself_is_refused(pods: StartChannelPod) -> None:
    """In-process: the test (host mount namespace, root) connects, sends the request, and reads the refusal."""
    pod = started_pod(pods)
    conn, why = control.dial("\0lifecycle-control/" + pod.inode())
    assert conn is not None, why
    try:
        assert control.send(conn, control.REQUEST)
        assert select.select([conn], [], [], TIMEOUT)[0]
        is_open, message = control.receive(conn)
        assert is_open and message is not None and message["event"] == "refused", message
        assert select.select([conn], [], [], TIMEOUT)[0]
        assert control.receive(conn) == (False, None)  # closed at once: nothing kept for a refused peer
    finally:
        conn.close()
    assert not signalled(pod)
    drain(pod)


# ---- e. arbitrary bytes and message sequences -------------------------------------------------------------------

messages = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"request=", b"=decommission", b"request=decommission\n", b"event=accepted", b"\n", b"=",
                         b"request=decommission\nx=y", b"\xff\xfe\x00", b"x" * 65_000]),
    ).filter(lambda data: control.decode(data) != control.REQUEST),  # the request itself would end the run
    max_size=4,
)  # fmt: skip


def test_arbitrary_messages_never_kill_lifecycle_and_a_drain_still_works(
    pods: StartChannelPod, clients: Callable[[list[str]], Client]
) -> None:
    """200 generated clients (derandomized) inside the container send arbitrary bytes and message sequences: each
    gets at most a refusal and a closed connection; lifecycle stays alive, never logs a traceback or an internal
    error, never signals the child, and drains correctly afterwards."""
    pod = started_pod(pods)
    proxy = clients(in_pod(pod, "auto", "proxy"))
    lifecycle = pod.pidfd(1)
    examples: list[int] = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(sent=messages, read=st.booleans())
    def exchange(sent: list[bytes], read: bool) -> None:
        examples.append(len(sent))
        proxy.say(json.dumps({"messages": [data.hex() for data in sent], "read": read}))
        count = len(proxy.streams.lines["out"])
        proxy.streams.wait_for("{", count=count + 1)
        result = json.loads(proxy.streams.lines["out"][count][1])
        assert result["connected"], result
        if read and sent and sent[0]:  # a zero-length message reads as a hang-up: closed with no answer
            assert result["answers"] and result["answers"][0].startswith("event=refused"), result
        if read and sent:
            assert result["eof"], result
        assert is_alive(lifecycle)

    exchange()
    assert len(examples) >= 200
    assert proxy.process.stdin is not None
    proxy.process.stdin.close()
    assert proxy.finish() == 0
    assert not signalled(pod)
    drain(pod)
    assert_clean(pod)


# ---- f. the hook against a server that misbehaves ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code", "seconds"),
    [
        ("silent", DECOM_NOT_FOUND, 3.0),  # no `accepted` within ACCEPT_TIMEOUT: it finds the JVM itself
        ("garbage", DECOM_NOT_FOUND, 0.0),
        ("accepted-then-garbage", DECOM_NOT_FOUND, 0.0),
        ("accepted-then-hangup", DECOM_NOT_FOUND, 1.0),  # the server hung up but did not exit
        ("unknown-event", DECOM_NOT_FOUND, 0.0),
        ("accepted-then-silent", DECOM_DEADLINE, 6.0),  # deadline_s=1 + kill_grace_s=0 + EXITED_SLACK 5
        ("full-backlog", DECOM_NOT_FOUND, 2.0),  # connect bounded by CONNECT_TIMEOUT
    ],
)
def test_the_hook_against_a_misbehaving_server_exits_with_a_documented_code_never_0(
    pods: StartChannelPod, mode: str, code: int, seconds: float
) -> None:
    """A server in the container (authenticated: PID 1, the hook's uid and mount namespace) that never answers,
    answers garbage, hangs up, or lets the backlog fill: the hook should give up on it within a bound, say why,
    fall back to finding the JVM itself (there is none: exit 3), or exit 5 after the server's own deadline."""
    pod = pods([sys.executable, "-I", "-c", FAKE_SERVER, mode], lifecycle=False)
    pod.ready()

    result = pod.run_hook()

    assert result.code == code, result.stderr
    assert result.code != DECOM_DRAINED
    assert seconds <= result.seconds < seconds + STARTUP + 1.0, result
    if code == DECOM_NOT_FOUND:
        assert "no executor JVM found" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
