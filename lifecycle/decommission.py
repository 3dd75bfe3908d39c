"""`lifecycle-decommission`: the executor's preStop hook (`spark.kubernetes.decommission.script`).

Run by the kubelet with no arguments and no shell. Two paths:
1. lifecycle supervises this container: ask it over the control socket (control.py); the supervisor owns
   the state machine, sends the decommission signal, and tells us the moment the JVM exits. It waits (on
   our pidfd, bounded by LIFECYCLE_HOOK_GRACE) for this process to exit before it exits itself, so the hook
   returns 0 instead of being SIGKILLed with PID 1.
2. anything else is the entrypoint (tini, a shell): find the executor JVM by an exact argv element equal
   to its main class (never a substring), open a pidfd, re-check its identity (start time and argv), send
   the signal through the pidfd (a recycled PID can never be hit) and wait on the pidfd. Limitation: with
   tini as PID 1 of the container, tini exits with the JVM and the kernel SIGKILLs this hook, as it does
   decom.sh; with a shared process namespace (a pause process as PID 1) the hook exits cleanly.
Every millisecond before the request counts against the pod's grace period, so path 1 imports only os, sys,
time, select, _socket, struct and lifecycle's stdlib-only modules (no pydantic, dataclasses, typing, json, re,
enum or signal); path 2 loads the state machine and the signal module when it needs them.
"""

from __future__ import annotations

import os
import select
import sys
import time

from lifecycle import control, knobs
from lifecycle.errors import (
    DECOM_AMBIGUOUS,
    DECOM_DEADLINE,
    DECOM_DRAINED,
    DECOM_NOT_FOUND,
    DECOM_NOT_PERMITTED,
    EX_SOFTWARE,
    EX_USAGE,
    ConfigError,
    LifecycleError,
)
from lifecycle.log import Log, print_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Sequence

    from transitions import EventData

    from lifecycle.machine import Lifecycle

NAME = "lifecycle-decommission"
EXECUTOR_CLASSES = (
    "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",  # Spark 3.3+ (SPARK-36058)
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",  # Spark 2.3-3.2
)
PROGRESS_EVERY = 5.0  # seconds between "still waiting" log lines
ACCEPT_TIMEOUT = 3.0  # seconds for the supervisor's `accepted` (it answers in about a millisecond)
EXITED_SLACK = 5.0  # seconds after the supervisor's deadline and kill grace for its `exited`
SERVER_EXIT_WAIT = 1.0  # seconds for a supervisor that hung up to finish exiting
KNOB_NAMES = (knobs.DECOMMISSION_SIGNAL, knobs.DECOMMISSION_TIMEOUT, knobs.LOG_FORMAT, knobs.LOG_LEVEL)


class Target:
    """An executor JVM found by scanning /proc, with what identifies it."""

    __slots__ = ("cmdline", "pid", "start_time")

    def __init__(self, pid: int, start_time: int, cmdline: tuple[str, ...]) -> None:
        self.pid, self.start_time, self.cmdline = pid, start_time, cmdline


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot): with the PID, identifies a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def cmdline(pid: int) -> tuple[str, ...]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return tuple(part.decode("utf-8", "replace") for part in handle.read().split(b"\0")[:-1])
    except OSError:
        return ()


# java launcher options whose value is the next argument (java -help): skipped when finding the main class.
VALUE_OPTIONS = frozenset(
    {
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--add-reads",
        "--add-exports",
        "--add-opens",
        "--limit-modules",
        "--patch-module",
        "--enable-native-access",
        "--source",
    }
)


def main_class(argv: Sequence[str]) -> str | None:
    """The main class of a `java` command line: the first argument that is not an option or its value.

    None for anything that is not a JVM launcher (tini, a shell) or runs a jar or a module. So a wrapper
    such as `tini -s -- java … KubernetesExecutorBackend` or a `-Dx=<class>` value never matches.
    """
    if not argv or os.path.basename(argv[0]) != "java":
        return None
    args = iter(argv[1:])
    for arg in args:
        if arg in VALUE_OPTIONS:
            next(args, None)
        elif arg in ("-jar", "-m", "--module"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def find_executors() -> tuple[list[Target], list[str]]:
    """(executor JVMs, a short description of every other process seen): a java process whose main class
    is exactly the executor's, never a substring of its command line (decom.sh's `grep Executor`)."""
    found, seen = [], []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        argv = cmdline(pid)
        started = start_time(pid)
        if not argv or started is None:
            continue
        if main_class(argv) in EXECUTOR_CLASSES:
            found.append(Target(pid, started, argv))
        else:
            seen.append(f"{pid} {os.path.basename(argv[0])}")
    return found, seen


def describe(target: Target) -> str:
    """pid and argv without the classpath value (long, and not what tells executors apart)."""
    argv = list(target.cmdline)
    for flag in ("-cp", "-classpath", "--class-path"):
        if flag in argv[:-1]:
            argv[argv.index(flag) + 1] = "…"
    return f"pid {target.pid}: {' '.join(argv)[:300]}"


class Hook:
    """The hook's side of the state machine: attach (running) → decommissioning → terminated."""

    def __init__(self, log: Log, settings: knobs.Knobs, target: Target, pidfd: int) -> None:
        self.log, self.knobs, self.target, self.pidfd = log, settings, target, pidfd
        self.exit_code = DECOM_DRAINED
        self.signalled_at = 0.0
        self.model: Lifecycle | None = None

    def on_transition(self, event: EventData) -> None:
        from lifecycle.actions import phase_value

        assert event.transition is not None
        source, dest = phase_value(event.transition.source), phase_value(event.transition.dest)
        self.log.info(
            "transition", f"{source} -> {dest} ({event.event.name})", source=source, dest=dest, trigger=event.event.name
        )

    def start_decommission(self, event: EventData) -> None:
        assert self.model is not None
        try:
            self.send_signal()
        except LifecycleError as exc:
            self.model.failed(error=exc)  # queued: runs once this transition is complete

    def send_signal(self) -> None:
        import signal

        # Identity re-check after the pidfd is open: the pidfd pins the process we found, or none.
        if start_time(self.target.pid) != self.target.start_time or cmdline(self.target.pid) != self.target.cmdline:
            raise LifecycleError(
                f"pid {self.target.pid} is no longer the executor that was found (it exited, or "
                "its start time or argv changed); nothing was signalled",
                DECOM_NOT_FOUND,
            )
        sig = self.knobs.decommission_signal
        from lifecycle.process import catches_signal

        if catches_signal(self.target.pid, sig) is False:  # the supervisor's rule, for the same reason
            self.log.warning(
                "decommission",
                f"executor pid {self.target.pid} does not handle {knobs.signal_name(sig)}: sending SIGTERM "
                "instead (is spark.decommission.enabled=true and the executor registered?)",
            )
            sig = signal.SIGTERM
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except ProcessLookupError:
            raise LifecycleError(
                f"executor pid {self.target.pid} exited before it could be signalled", DECOM_NOT_FOUND
            ) from None
        except PermissionError:
            raise LifecycleError(
                f"not permitted to signal executor pid {self.target.pid} (run the hook as the container's user)",
                DECOM_NOT_PERMITTED,
            ) from None
        self.signalled_at = time.monotonic()
        self.log.info(
            "decommission",
            f"sent {knobs.signal_name(sig)} to executor pid {self.target.pid}",
            pid=self.target.pid,
            signal=knobs.signal_name(sig),
        )

    def terminate(self, event: EventData) -> None:
        error = event.kwargs.get("error")
        if error is not None:
            self.exit_code = error.exit_code
            self.log.error("error", error.message)
            return
        self.log.info(
            "drained",
            f"executor pid {self.target.pid} exited {time.monotonic() - self.signalled_at:.3f}s after the signal",
        )

    # The hook attaches in `running` and only ever decommissions: the other actions are never reached.
    def supervise(self, event: EventData) -> None:
        raise LifecycleError("internal error: the hook does not supervise", DECOM_NOT_PERMITTED)

    resolve_environment = launch = repeat_decommission = escalate = supervise


def wait_for_exit(pidfd: int, log: Log, timeout: float | None, what: str) -> bool:
    """Block on the pidfd until the process exits (True) or the deadline passes (False)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        left = PROGRESS_EVERY if deadline is None else min(PROGRESS_EVERY, deadline - time.monotonic())
        if left <= 0:
            return False
        if poller.poll(knobs.wait_ms(left)):
            return True
        log.info("waiting", f"still waiting for {what} to exit", elapsed_s=round(log.elapsed_ms() / 1000, 1))


def typed(value: str) -> object:
    """A control-message value for the JSON log: true/false as booleans, whole numbers as ints."""
    if value in ("true", "false"):
        return value == "true"
    if value.removeprefix("-").isdigit() and value.isascii():
        return int(value)
    return value


class Fallback(Exception):
    """The supervisor's path gave no trustworthy answer: find the JVM ourselves (path 2), saying why."""


def reach_supervisor(log: Log) -> tuple[_socket.socket, control.Peer] | None:
    """A connection to this container's lifecycle supervisor, authenticated (control.identify); None if none.

    The well-known name first (the fast path: nothing else is imported or read). A process that holds that
    name but is not this container's (another container of the pod, a host process) gets nothing from us, not
    even the request; then the supervisor's published private name (`published_supervisors`).
    """
    name = control.address()
    conn, why = control.dial(name)
    if conn is not None:
        peer = control.identify(conn)
        if peer.problem is None:
            return conn, peer
        conn.close()
        log.warning(
            "control",
            f"the decommission channel is held by {peer.describe()}, not this container's lifecycle: "
            f"{peer.problem}; ignored",
        )
    elif why.startswith("its backlog"):
        log.warning("control", f"the decommission channel did not take the connection: {why}")
    return published_supervisors(log, skip=name)


def published_supervisors(log: Log, skip: str) -> tuple[_socket.socket, control.Peer] | None:
    """The lifecycle supervisor of this container by the channel name it publishes in its command line (its
    hand-over payload): PID 1 first (lifecycle is the entrypoint), then every other process; only processes in
    our mount namespace, and only a server that is that very process."""
    ours = control.mount_namespace()
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc: nothing to find (the standalone path says so)
        return None
    pids = sorted(int(name) for name in names if name.isdigit() and int(name) not in (1, os.getpid()))
    for pid in [1, *pids]:
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != ours:
                continue
        except OSError:  # gone, or not ours to inspect
            continue
        argv = cmdline(pid)
        if len(argv) < 2 or "from lifecycle.supervisor import main" not in argv[-2]:
            continue
        import json

        try:
            payload = json.loads(argv[-1])
        except ValueError:
            continue
        published = payload.get("control_name") if isinstance(payload, dict) else None
        if not isinstance(published, str) or not published.startswith(control.PREFIX) or "\0" + published == skip:
            continue
        conn, why = control.dial("\0" + published)
        if conn is None:
            log.warning("control", f"lifecycle's supervisor (pid {pid}) publishes a channel that refused: {why}")
            continue
        peer = control.identify(conn)
        if peer.problem is None and peer.pid == pid:
            log.info("control", f"reached lifecycle's supervisor (pid {pid}) on the private channel it publishes")
            return conn, peer
        conn.close()
        peer.close()
        log.warning("control", f"the channel published by pid {pid} is held by {peer.describe()}: "
                    f"{peer.problem or 'another process'}; ignored")  # fmt: skip
    return None


def answer_bound(message: control.Message) -> float | None:
    """When the supervisor must have said how the JVM ended, from its `accepted` answer: its decommission
    deadline, its kill grace and EXITED_SLACK; None (no bound but the kubelet's) without a deadline."""
    try:
        deadline = float(message["deadline_s"])
        kill_grace = float(message.get("kill_grace_s", "0"))
    except (KeyError, ValueError):
        return None
    return time.monotonic() + deadline + kill_grace + EXITED_SLACK


def via_supervisor(conn: _socket.socket, peer: control.Peer, log: Log) -> int:
    """Path 1: the supervisor does the work; we wait for its 'exited' message.

    Bounded: no `accepted` within ACCEPT_TIMEOUT, a malformed or unexpected message, a refusal, or a hang-up
    before `accepted` raise Fallback (the caller finds the JVM itself: a wrong answer never becomes exit 0);
    no `exited` once the supervisor's own deadline and kill grace have passed is exit 5.
    """
    if not control.send(conn, control.REQUEST):
        raise Fallback("the lifecycle supervisor hung up before the request")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    accepted = False
    bound: float | None = time.monotonic() + ACCEPT_TIMEOUT
    while True:
        left = PROGRESS_EVERY if bound is None else min(PROGRESS_EVERY, bound - time.monotonic())
        if left <= 0:
            if not accepted:
                raise Fallback(f"the lifecycle supervisor did not answer within {ACCEPT_TIMEOUT:g}s")
            raise LifecycleError("the lifecycle supervisor did not say how the executor ended by its own deadline "
                                 f"and kill grace (+{EXITED_SLACK:g}s)", DECOM_DEADLINE)  # fmt: skip
        if not poller.poll(knobs.wait_ms(left)):  # bounded: wakes to log progress
            if accepted:
                elapsed = round(log.elapsed_ms() / 1000, 1)
                log.info("waiting", "still waiting for the executor to exit", elapsed_s=elapsed)
            continue
        is_open, message = control.receive(conn)
        if not is_open:
            if not accepted:
                raise Fallback("the lifecycle supervisor closed the channel before accepting the request")
            if peer.pidfd is not None and not control.has_exited(peer.pidfd, SERVER_EXIT_WAIT):
                raise Fallback("the lifecycle supervisor closed the channel but is still running")
            log.info("drained", "the lifecycle supervisor exited: the executor is gone with it")  # PID 1's exit
            return DECOM_DRAINED
        if message is None:
            raise Fallback("the lifecycle supervisor sent a malformed message")
        if not message:
            continue
        fields = {f"supervisor_{key}": typed(value) for key, value in message.items()}
        event = message.get("event")
        if event in ("refused", "busy"):
            raise Fallback(f"the lifecycle supervisor refused the request ({event}): {message.get('reason')}")
        if event == "accepted" and not accepted:
            accepted = True
            bound = answer_bound(message)
            log.info(
                "decommission",
                f"lifecycle (state {message.get('state')}) sent {message.get('signal')} to "
                f"the executor (pid {message.get('child_pid')})",
                **fields,
            )
        elif event == "exited":
            deadline = message.get("deadline_passed") == "true"
            name = "deadline" if deadline else "drained"
            log.emit("warning" if deadline else "info", name, message.get("reason", ""), **fields)
            conn.detach()  # the kernel closes it when we exit; the supervisor waits for our exit (pidfd)
            return DECOM_DEADLINE if deadline else DECOM_DRAINED
        else:
            raise Fallback(f"unexpected message from the lifecycle supervisor: event={event}")


def standalone(settings: knobs.Knobs, log: Log) -> int:
    # (no lifecycle supervisor of this container answered, or it gave no trustworthy answer)
    """Path 2: find, pin, re-check, signal and wait, driven by the same state machine from `running`."""
    from lifecycle.redaction import Redactor  # off the fast path: `re`, ~5 ms

    log.redact = Redactor.from_environ().text  # JVM command lines (-Dspark.ssl.keyStorePassword=…) are shown here
    found, seen = find_executors()
    if not found:
        raise LifecycleError(
            f"no executor JVM found (no process has an argument equal to {EXECUTOR_CLASSES[0]} or "
            f"{EXECUTOR_CLASSES[1]}); processes seen: {', '.join(seen[:20]) or 'none'}",
            DECOM_NOT_FOUND,
        )
    if len(found) > 1:
        raise LifecycleError(
            f"{len(found)} executor JVMs found, none signalled: " + "; ".join(describe(t) for t in found),
            DECOM_AMBIGUOUS,
        )
    target = found[0]
    try:
        pidfd = os.pidfd_open(target.pid)
    except ProcessLookupError:
        raise LifecycleError(
            f"executor pid {target.pid} exited before it could be signalled", DECOM_NOT_FOUND
        ) from None
    except OSError as exc:  # EPERM, or ENOSYS/seccomp: without a pidfd no signal can be made race-free
        raise LifecycleError(
            f"cannot open a pidfd for executor pid {target.pid}: {exc.strerror} "
            "(Linux >= 5.3 without a seccomp filter on pidfd_open is needed)",
            DECOM_NOT_PERMITTED,
        ) from None
    from lifecycle.machine import Lifecycle, Phase, build_machine

    hook = Hook(log, settings, target, pidfd)
    model = hook.model = Lifecycle(hook)
    build_machine(model, initial=Phase.running)
    log.info("attached", f"found executor {describe(target)}", pid=target.pid)
    try:
        model.decommission_requested()
        if model.state is Phase.terminated:
            return hook.exit_code
        if wait_for_exit(pidfd, log, settings.decommission_timeout, f"executor pid {target.pid}"):
            model.child_exited()
        else:
            model.failed(
                error=LifecycleError(
                    f"executor pid {target.pid} still running after LIFECYCLE_DECOMMISSION_TIMEOUT="
                    f"{settings.decommission_timeout:g}s",
                    DECOM_DEADLINE,
                )
            )
    finally:
        os.close(pidfd)
    return hook.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """The preStop entry: no arguments; settings from the same LIFECYCLE_* variables as the entrypoint."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        from lifecycle.redaction import display_arg  # an error path: the import cost does not matter here

        print_error(f"takes no arguments (it is run by the kubelet as a preStop hook), got {display_arg(args[0])!r}",
                    NAME)  # fmt: skip
        return EX_USAGE
    started = time.monotonic()
    try:
        log_format, log_level = knobs.log_knobs()
        values = knobs.parse_knobs(names=KNOB_NAMES)  # only what is set: a bad value is still exit 78
    except ConfigError as exc:
        print_error(exc.message, NAME)
        return exc.exit_code
    log = Log(log_format, log_level, started, name=NAME)
    try:
        reached = reach_supervisor(log)
        if reached is not None:  # the supervisor's own LIFECYCLE_* settings decide the signal and the deadline
            try:
                return via_supervisor(*reached, log)
            except Fallback as why:
                reached[0].close()
                log.warning("fallback", f"{why}: finding the executor JVM itself")
        return standalone(knobs.Knobs(**values), log)
    except LifecycleError as exc:
        log.error("error", exc.message)
        return exc.exit_code
    except Exception as exc:  # a bug: still one line and a documented code, never a traceback
        log.error("error", f"internal error: {type(exc).__name__}: {exc}")
        return EX_SOFTWARE


def run() -> None:
    """The console script: main(), then exit at once (the interpreter's clean-up is time the kubelet waits)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
