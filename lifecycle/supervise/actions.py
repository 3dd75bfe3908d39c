"""SupervisorActions: the lean supervisor's state actions (running, decommissioning, post-exit, terminated), one
method each as machine.ACTIONS names them, with the effects they have on the child. The loop that feeds the machine
events is loop.py; the entry point is main.py."""

from __future__ import annotations

import os
import select
import signal
import time
from typing import TYPE_CHECKING

from lifecycle import knobs, scripts
from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.knobs import Knobs, signal_name, wait_ms
from lifecycle.log import Log
from lifecycle.oom import OomWatch
from lifecycle.process import catches_signal, exit_code, open_pidfd, reap, send_signal
from lifecycle.redaction import known_secrets
from lifecycle.reporting import Reporter
from lifecycle.signals import SignalInbox
from lifecycle.supervise.channel import HookServer
from lifecycle.supervise.drain import Drain
from lifecycle.supervise.leftovers import Leftovers
from lifecycle.termination import StderrTail

if TYPE_CHECKING:
    from collections.abc import Callable

    from transitions import EventData

PUMP_CHUNKS = 16  # reads of the child's stderr (64 KiB each) per turn of the loop: signals come first


class SupervisorActions(Reporter):
    """running, decommissioning and terminated: the state actions of the lean supervisor, and their effects
    on the child (signals, reaping, its stderr, what it leaves behind, the preStop commands)."""

    def __init__(
        self,
        log: Log,
        knobs: Knobs,
        label: str,
        pid: int,
        stderr_fd: int | None,
        oom: OomWatch | None = None,
        control_fd: int | None = None,
        mode: str = "pass-through",
        mask: set[int] | None = None,
    ) -> None:
        super().__init__(log, knobs, label)
        # The launch plan's mode: LIFECYCLE_MODE for the post-exit scripts; "worker" drains its executors,
        # "master" has no decommission.
        self.mode = mode
        self.mask = mask or set()  # the signal mask lifecycle was started with (the post-exit scripts get it)
        self.post_exit: list[scripts.Script] = []
        self.oom_killed = False
        self.pid = pid
        self.drain: Drain | None = None  # a worker's executors, from its decommission request on
        self.drained = False  # every executor the Worker launched exited before its deadline (state `stopping`)
        self.oom = oom or OomWatch()
        self.pidfd = open_pidfd(pid)
        self.status: int | None = None
        self.deadline: float | None = None
        self.escalations = 0
        self.decommissioned_at: float | None = None
        self.stderr_fd = stderr_fd
        self.tail = StderrTail(known_secrets(os.environ)) if stderr_fd is not None else None
        self.inbox = SignalInbox()
        self.poller = select.poll()
        self.refused_signals = 0  # EPERM from signalling the child (it became another user)
        self.sent_kill = False  # lifecycle itself SIGKILLed the child (a deadline): then it was no OOM kill
        # The preStop command's channel, bound by handover.py before the child started (none for a driver, or
        # when another lifecycle of this container holds it: handover logged why).
        self.channel = HookServer(log, control_fd, self.poller, self.serve_hook)

    # ---- state actions -------------------------------------------------------------------------
    def supervise(self, event: EventData) -> None:
        self.log.info(
            "running", f"{self.label} running as pid {self.pid}", child_pid=self.pid, pidfd=self.pidfd is not None
        )

    def request_decommission(self, source: str) -> bool:
        """A decommission request (the trigger signal, the preStop command): to the machine, except for a master,
        which has none (the Master JVM has no handler for the signal: it would die). False when declined."""
        if self.mode == "master":
            self.log.warning("decommission", f"decommission request ({source}) declined: a standalone master has "
                             "nothing to drain and no handler for the signal; it stops on SIGTERM")  # fmt: skip
            return False
        assert self.model is not None
        self.model.decommission_requested(source=source)
        return True

    def start_decommission(self, event: EventData) -> None:
        sig = self.knobs.decommission_signal
        self.decommissioned_at = time.monotonic()
        source = event.kwargs.get("source", "request")
        if catches_signal(self.pid, sig) is False:
            # The JVM has no handler (spark.decommission.enabled=false, or it has not registered yet):
            # the signal's default action would kill it with no shutdown hooks. SIGTERM at least runs them.
            self.log.warning(
                "decommission",
                f"{self.label} does not handle {signal_name(sig)}: sending SIGTERM "
                "instead (is spark.decommission.enabled=true and the executor registered?)",
            )
            sig = signal.SIGTERM
        try:
            send_signal(self.pid, sig)
        except PermissionError:
            self.not_permitted(sig)
        timeout = self.knobs.decommission_timeout
        if timeout is not None:
            self.deadline = time.monotonic() + timeout
        self.log.info(
            "decommission",
            f"sent {signal_name(sig)} to {self.label} (pid {self.pid}) on {source}; "
            + (f"deadline {timeout:g}s" if timeout is not None else "waiting for it to exit (no deadline)"),
            signal=signal_name(sig),
            deadline_s=timeout,
        )
        if self.mode == "worker" and sig == self.knobs.decommission_signal:  # after a SIGTERM, no drain: a stop
            self.start_drain()

    def start_drain(self) -> None:
        """A Worker: wait on each executor JVM it launched (drain.py); none at all drains it at once."""
        self.drain = Drain(self.log, self.pid, self.poller)
        found = self.drain.scan()
        self.log.info("drain", f"worker: waiting for {len(found)} executor(s) it launched to exit: "
                      f"{', '.join(map(str, found)) or 'none'}", executors=found)  # fmt: skip

    def record_executor_exit(self, event: EventData) -> None:
        """A worker's executor has exited (the transition's log line carries its pid and how many are left)."""

    def stop_drained(self, event: EventData) -> None:
        """stopping: the drain is complete; the Worker never exits by itself: SIGTERM now, SIGKILL after the grace."""
        self.drained = True
        self.signal_child(signal.SIGTERM)
        self.deadline = time.monotonic() + self.knobs.kill_grace
        self.log.info("stopping", f"worker drained: sent SIGTERM to the Worker (pid {self.pid}); SIGKILL in "
                      f"{self.knobs.kill_grace:g}s ({knobs.KILL_GRACE})")  # fmt: skip

    def repeat_decommission(self, event: EventData) -> None:
        self.log.info(
            "decommission", "already decommissioning: request ignored", source=event.kwargs.get("source", "request")
        )

    def escalate(self, event: EventData) -> None:
        if self.drained:  # stopping: the Worker outlived the kill grace after its drain
            self.signal_child(signal.SIGKILL)
            self.deadline = None
            self.log.warning("deadline", f"the Worker outlived {knobs.KILL_GRACE} after its drain: sent SIGKILL")
            return
        self.escalations += 1
        if self.escalations == 1:
            self.signal_child(signal.SIGTERM)  # as the kubelet's would be
            self.deadline = time.monotonic() + self.knobs.kill_grace
            self.log.warning(
                "deadline",
                f"decommission deadline passed: sent SIGTERM to {self.label}; SIGKILL "
                f"in {self.knobs.kill_grace:g}s ({knobs.KILL_GRACE})",
            )
        else:
            self.signal_child(signal.SIGKILL)
            self.deadline = None
            self.log.warning("deadline", f"{self.label} outlived {knobs.KILL_GRACE}: sent SIGKILL")

    def run_post_exit(self, event: EventData) -> None:
        """post-exit: tell the preStop commands how the child ended at once, then run the post-exit scripts
        (postexit.py); whatever goes wrong here is logged, and the run goes on to `terminated` all the same."""
        from lifecycle.supervise import postexit

        assert self.model is not None
        outcome = event.kwargs["outcome"]
        results: list[scripts.Result] = []
        try:
            self.exit_code, _ = self.remapped(outcome[0], outcome[2])
            self.notify_hooks(event)
            results = postexit.run_all(self, self.post_exit, outcome)
        except Exception as exc:
            self.log.error("internal-error", f"internal error in post-exit: {type(exc).__name__}: {exc}")
        self.model.scripts_finished(outcome=outcome, results=[result.record() for result in results])

    def terminate(self, event: EventData) -> None:
        """Each step guarded on its own: a fault in one must not skip stopping leftovers or the message."""
        steps: tuple[Callable[[], None], ...] = (
            lambda: Reporter.terminate(self, event), lambda: self.notify_hooks(event, again=False), self.close_drain,
            self.stop_descendants, self.wait_for_hooks)  # fmt: skip
        for step in steps:
            try:
                step()
            except Exception as exc:
                self.exit_code = EX_SOFTWARE if step is steps[0] else self.exit_code
                self.log.error("internal-error", f"internal error while terminating: {type(exc).__name__}: {exc}")

    # ---- effects ---------------------------------------------------------------------------------
    def forward(self, sig: int) -> None:
        try:
            sent = send_signal(self.pid, sig, group=self.knobs.signal_group)
        except PermissionError:
            self.not_permitted(sig)
            return
        self.log.debug(
            "forward", f"forwarded {signal_name(sig)} to {self.label}", signal=signal_name(sig), delivered=sent
        )

    def signal_child(self, sig: int) -> None:
        """A deadline's signal: to the child, and its group with LIFECYCLE_SIGNAL_GROUP=1 (process.send_signal)."""
        self.sent_kill = self.sent_kill or sig == signal.SIGKILL
        try:
            send_signal(self.pid, sig, group=self.knobs.signal_group)
        except PermissionError:
            self.not_permitted(sig)

    def not_permitted(self, sig: int) -> None:
        """EPERM: the child now runs as a user we may not signal (it exec'd a setuid program). Warn once."""
        self.refused_signals += 1
        if self.refused_signals == 1:
            self.log.warning(
                "forward",
                f"not permitted to send {signal_name(sig)} to {self.label} (pid {self.pid}): it runs as "
                "another user now (a setuid program?); later refusals are counted, not logged",
                signal=signal_name(sig),
            )

    def collect(self) -> None:
        _, status = reap(self.pid)
        if status is not None:
            self.status = status

    def pump_stderr(self, chunks: int = PUMP_CHUNKS) -> bool:
        """Copy what the child wrote to stderr on to ours (never blocking: log.out buffers or drops), keeping
        the tail; at most `chunks` reads a call, so a chatty child cannot starve the loop. False at end of file."""
        assert self.stderr_fd is not None and self.tail is not None
        for _ in range(chunks):
            try:
                data = os.read(self.stderr_fd, 65536)
            except (BlockingIOError, InterruptedError):  # drained for now (ok to proceed)
                return True
            if not data:
                return False
            self.tail.feed(data)
            self.log.out.write(data)
        return True

    def pump_stderr_quietly(self) -> None:
        """Copy what is in the capture pipe; close it at end of file."""
        if self.stderr_fd is not None and not self.pump_stderr():
            os.close(self.stderr_fd)
            self.stderr_fd = None

    def outcome(self) -> tuple[int, int | None, str, list[str]]:
        assert self.status is not None
        code, sig = exit_code(self.status)
        if sig is not None:
            reason = f"{self.label} was killed by {signal_name(sig)}"
            oom_killed = self.oom.killed() if sig == signal.SIGKILL and not self.sent_kill else None
            self.oom_killed = bool(oom_killed)
            if oom_killed:
                reason += f": {oom_killed}"
                self.log.warning("oom", f"{self.label} (pid {self.pid}) {oom_killed}")
        else:
            reason = f"{self.label} exited with code {code}"
        if self.decommissioned_at is not None:
            drained = time.monotonic() - self.decommissioned_at
            reason += f" {drained:.3f}s after the decommission request"
        if self.drained and self.drain is not None:  # the Worker's own code on the stop (143) is no failure
            reason = (f"worker drained: {self.drain.exited} executor(s) exited, then the Worker was stopped "
                      f"({reason})")  # fmt: skip
            return 0, None, reason, []
        tail = self.tail.lines() if self.tail is not None and code != 0 else []
        return code, sig, reason, tail

    def exit_reason(self, code: int, sig: int | None) -> str:
        """How the child ended, as one word (LIFECYCLE_EXIT_REASON for the post-exit scripts)."""
        if self.escalations:
            return "deadline"  # lifecycle's decommission deadline sent SIGTERM (then perhaps SIGKILL)
        if self.decommissioned_at is not None:
            return "decommissioned"
        if self.oom_killed:
            return "oom-killed"
        if sig is not None:
            return "killed"
        return "completed" if code == 0 else "failed"

    def find_post_exit(self) -> list[str]:
        """List LIFECYCLE_POST_EXIT_DIR now that the child has exited: the names, for child_exited's condition."""
        try:
            found, skipped = scripts.find(self.knobs.post_exit_dir, knobs.POST_EXIT_DIR)
        except LifecycleError as exc:
            self.log.error("post-exit", f"{exc.message}: no post-exit script runs")
            return []
        for name in skipped:
            self.log.warning("post-exit", f"skipped {name} in {knobs.POST_EXIT_DIR}: not an executable file")
        self.post_exit = found
        return [script.name for script in found]

    def close_drain(self) -> None:
        if self.drain is not None:
            self.drain.close()

    def stop_descendants(self) -> None:
        """What the child left behind: SIGTERM, LIFECYCLE_ORPHAN_GRACE, SIGKILL (leftovers.py)."""
        Leftovers(self.log, self.pid, self.knobs.orphan_grace, self.wake).stop()
        self.pump_stderr_quietly()

    def wake(self, pidfds: list[int], timeout: float | None) -> None:
        """One poll while waiting at the end: these pidfds, signals, the child's stderr, our output, preStop
        commands arriving now. Signals are drained, not forwarded: the child they were for has exited."""
        poller = select.poll()
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        poller.register(self.inbox.read_fd, select.POLLIN)  # SIGCHLD, for leftovers without a pidfd
        if self.stderr_fd is not None:
            poller.register(self.stderr_fd, select.POLLIN)  # descendants may still write to it
        if self.log.out.waiting():
            poller.register(self.log.out.fd, select.POLLOUT)
        for fd in self.channel.fds():
            poller.register(fd, select.POLLIN)  # a preStop command arriving now
        poller.poll(wait_ms(timeout))
        self.pump_stderr_quietly()
        self.log.out.flush()
        self.inbox.drain()
        self.channel.service()

    # ---- the preStop command's channel (channel.py) ------------------------------------------------
    def serve_hook(self, pid: int) -> dict[str, object]:
        """An authenticated preStop command (pid `pid`) asks: decommission; the answer (`accepted`, or for a
        master `declined`)."""
        assert self.model is not None
        if self.status is None and not self.request_decommission(f"the preStop command (pid {pid})"):
            return {"event": "declined", "reason": f"lifecycle runs a standalone {self.mode}, which has no "
                    "decommission (nothing to drain); it stops on the kubelet's SIGTERM"}  # fmt: skip
        return {
            "event": "accepted",
            "state": self.model.state.value,
            "child_pid": self.pid,
            "signal": signal_name(self.knobs.decommission_signal),
            "deadline_s": self.knobs.decommission_timeout,
            "kill_grace_s": self.knobs.kill_grace,
        }

    def notify_hooks(self, event: EventData, again: bool = True) -> None:
        """Tell every attached preStop command how the child ended, the moment it has (in post-exit, before the
        scripts: the kubelet's grace period runs on; not `again` in terminated)."""
        if not again and self.channel.exited is not None:
            return
        outcome = event.kwargs.get("outcome")
        self.channel.on_child_exit(
            {
                "event": "exited",
                "exit_code": self.exit_code,
                "child_code": outcome[0] if outcome else None,
                "reason": outcome[2] if outcome else str(event.kwargs.get("error")),
                "deadline_passed": self.escalations > 0,
            }
        )

    def wait_for_hooks(self) -> None:
        """Stay until attached hooks have exited (at most LIFECYCLE_HOOK_GRACE), then close the channel."""
        self.channel.wait(self.knobs.hook_grace)

    # ---- the loop --------------------------------------------------------------------------------
