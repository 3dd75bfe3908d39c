"""The effects behind each state's action. Stdlib only at import: heavy modules load inside the
start-up actions, so the lean supervisor (supervisor.py) can import this module cheaply."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from lifecycle import termination
from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.invocation import Invocation
from lifecycle.knobs import Knobs, signal_name
from lifecycle.log import DRAIN, Log
from lifecycle.machine import Lifecycle, Phase
from lifecycle.redaction import display_arg

if TYPE_CHECKING:
    from transitions import EventData

    from lifecycle.plan import LaunchPlan


def phase_value(name: object) -> str:
    """The documented state name for a transitions state name or Phase."""
    if isinstance(name, Phase):
        return name.value
    return Phase[str(name)].value


def write_text(stream: TextIO, text: str) -> None:
    """Text that may hold undecodable bytes from argv or the environment (surrogate escapes): each such byte
    is shown as a \\xNN escape, so the output is always valid in the stream's encoding; never an error."""
    try:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte became
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        stream.write(shown)
    except UnicodeEncodeError:  # a narrower encoding than UTF-8 (C/POSIX locale without UTF-8 mode)
        stream.write(shown.encode("ascii", "backslashreplace").decode("ascii"))
    stream.flush()


class Actions:
    """Effects shared by both processes: logging transitions and the terminated state's action."""

    def __init__(self, log: Log, knobs: Knobs, label: str) -> None:
        self.log = log
        self.knobs = knobs
        self.label = label  # "executor", "driver" or the pass-through command, for messages
        self.model: Lifecycle | None = None
        self.exit_code = EX_SOFTWARE
        self.passed: list[str] = [Phase.initializing.value]

    def on_transition(self, event: EventData) -> None:
        assert event.transition is not None
        source = phase_value(event.transition.source)
        dest = phase_value(event.transition.dest) if event.transition.dest else source
        if dest != source:
            self.passed.append(dest)
        self.log.info(
            "transition",
            f"{source} -> {dest} ({event.event.name})",
            source=source,
            dest=dest,
            trigger=event.event.name,
        )

    def guarded(self, action: Callable[[], None]) -> None:
        """Run an action; a LifecycleError (or a bug) becomes the `failed` event, never a traceback."""
        assert self.model is not None
        try:
            action()
        except LifecycleError as exc:
            self.model.failed(error=exc)
        except Exception as exc:  # a bug in lifecycle: still one line, and a documented code
            self.model.failed(error=LifecycleError(f"internal error: {type(exc).__name__}: {exc}", EX_SOFTWARE))

    def terminate(self, event: EventData) -> None:
        """Map the outcome to an exit code, write the termination message, log the end."""
        error: LifecycleError | None = event.kwargs.get("error")
        if error is not None:
            self.exit_code = error.exit_code
            for line in error.message.splitlines():
                self.log.error("error", line)
            self.finish(error.exit_code, None, error.message.splitlines()[0], [])
            return
        code, sig, reason, tail = event.kwargs["outcome"]
        self.exit_code = self.knobs.exit_remap.get(code, code)
        if self.exit_code != code:
            reason += f"; exit code {code} remapped to {self.exit_code} ({'LIFECYCLE_EXIT_REMAP'})"
        self.finish(self.exit_code, sig, reason, tail)

    def finish(self, code: int, sig: int | None, reason: str, tail: list[str]) -> None:
        message = termination.compose(Phase.terminated.value, code, signal_name(sig) if sig else None, reason, tail)
        written = termination.write(self.knobs.termination_log, message)
        self.log.info(
            "terminated",
            f"exit {code}: {reason}",
            exit_code=code,
            signal=signal_name(sig) if sig else None,
            termination_log=written,
        )

    # Run-phase actions exist only in the supervisor (supervisor.py); reaching them here is a bug.
    def supervise(self, event: EventData) -> None:
        raise LifecycleError("internal error: supervise outside the supervisor", EX_SOFTWARE)

    start_decommission = repeat_decommission = escalate = supervise

    def resolve_environment(self, event: EventData) -> None:
        raise LifecycleError("internal error: resolve_environment in the supervisor", EX_SOFTWARE)

    launch = resolve_environment


class Launcher(Actions):
    """initializing → env-resolved → launching: settings, plan, then exec or spawn and hand over."""

    def __init__(
        self,
        invocation: Invocation,
        log: Log,
        knobs: Knobs,
        started: float,
        mask: set[int],
        ignored: set[int],
        inherited: tuple[int, ...] = (),
    ) -> None:
        super().__init__(log, knobs, invocation.mode)
        self.invocation = invocation
        self.started = started
        self.mask = mask  # the signal mask lifecycle was started with: the child gets it back
        self.ignored = ignored
        self.inherited = inherited  # descriptors lifecycle was started with: the child gets them too (as tini)
        self.settings: Any = None
        self.plan: LaunchPlan | None = None
        self.details: dict[str, Any] = {}

    def start(self) -> None:
        """The initializing state's action: load and validate every setting."""
        assert self.model is not None
        self.guarded(self._load_settings)

    def _load_settings(self) -> None:
        from lifecycle import settings  # pydantic-settings: ~150 ms, only on this path

        mode = self.invocation.mode
        runtime, spark, executor = settings.load_all(mode)
        self.knobs = runtime.to_knobs()
        self.settings = (spark, executor)
        assert self.model is not None
        self.model.settings_loaded()

    def resolve_environment(self, event: EventData) -> None:
        self.guarded(self._resolve_environment)

    def _resolve_environment(self) -> None:
        from lifecycle import identity, plan, resolve

        spark, executor = self.settings
        env = dict(os.environ)
        mode = self.invocation.mode
        warn: Callable[[str], None] = lambda message: self.log.warning("warning", message)  # noqa: E731
        who = identity.detect_identity(env)
        additions, message = identity.apply_identity(who, env, self.invocation.dry_run)
        (warn if who.action == identity.NONE else lambda m: self.log.info("identity", m))(message)
        java_home, java_source = (None, "")
        if mode == "executor":
            java_home, java_source = resolve.find_java_home(env)
        dist = resolve.hadoop_classpath(env, warn)
        facts = plan.Facts(os.getcwd(), java_home, java_source, dist, additions)
        plan_mode = mode if mode in ("driver", "executor") else plan.PASSTHROUGH
        if plan_mode == plan.PASSTHROUGH:
            shown = display_arg(self.invocation.args[0])
            self.log.info("pass-through", f"not a Spark mode: running '{shown}' as given")
        self.plan = plan.build_plan(plan_mode, self.invocation.args, env, spark, executor, facts)
        for note in self.plan.notes:
            warn(note)
        from lifecycle import oom

        cgroup = oom.memory_cgroup_dir()
        group = oom.oom_group(cgroup)
        self.log.debug("oom", oom.describe_oom_group(group), cgroup=cgroup[0] if cgroup else None, oom_group=group)
        self.details = {
            "oom_group": group,
            "oom": oom.describe_oom_group(group),
            "java_home": java_home,
            "java_home_source": java_source,
            "identity": {"action": who.action, "entry": who.entry, "library": who.library},
            "message": message,
        }
        assert self.model is not None
        self.model.plan_built()

    def launch(self, event: EventData) -> None:
        self.guarded(self._launch)

    def _launch(self) -> None:
        assert self.plan is not None and self.model is not None
        if self.invocation.dry_run:
            from lifecycle.dryrun import render

            write_text(sys.stdout, render(self.plan, self.passed, self.details, self.invocation.json))
            sys.stdout.flush()
            self.exit_code = 0
            return
        if self.knobs.run_mode == "exec":
            self._exec()
        else:
            self._spawn_and_hand_over()

    def _hint(self) -> str:
        if self.plan is not None and self.plan.mode == "executor":
            return " (from JAVA_HOME; set JAVA_HOME to a JDK or JRE directory)"
        if self.plan is not None and self.plan.mode == "driver":
            return " (from SPARK_HOME; is it the Spark directory?)"
        return ""

    def _exec(self) -> None:
        from lifecycle.process import exec_error
        from lifecycle.signals import reset_for_child

        assert self.plan is not None
        shown = display_arg(self.plan.argv[0])
        self.log.info("exec", f"exec {shown} (LIFECYCLE_RUN_MODE=exec)", argv0=shown)
        if self.plan.cwd != os.getcwd():
            os.chdir(self.plan.cwd)
        self.log.out.drain(DRAIN)  # bounded: a stalled stderr must not hold the exec back for ever
        reset_for_child(self.ignored, self.mask)
        try:
            os.execvpe(self.plan.argv[0], list(self.plan.argv), dict(self.plan.env))
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.valid_signals()) - self.mask)
            raise exec_error(shown, exc, self._hint()) from None

    def _spawn_and_hand_over(self) -> None:
        from lifecycle.handover import hand_over

        assert self.plan is not None
        hand_over(self, self.plan)
