"""LaunchActions: the start-up stage's state actions (initializing, env-resolved, launching).

Each is one method, named in machine.ACTIONS. The heavy modules (pydantic-settings, the plan, identity) load
inside them, so importing this module costs nothing until the first action runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from lifecycle import knobs
from lifecycle.errors import EX_SOFTWARE, LifecycleError
from lifecycle.knobs import Knobs
from lifecycle.launch.invocation import Invocation
from lifecycle.log import DRAIN, Log, printable
from lifecycle.redaction import display_arg
from lifecycle.reporting import Reporter

if TYPE_CHECKING:
    from transitions import EventData

    from lifecycle.launch.plan import LaunchPlan


def write_text(stream: TextIO, text: str) -> None:
    """Text that may hold undecodable bytes from argv or the environment (surrogate escapes): each such byte
    is shown as a \\xNN escape, so the output is always valid in the stream's encoding; never an error."""
    shown = printable(text)
    try:
        stream.write(shown)
    except UnicodeEncodeError:  # a narrower encoding than UTF-8 (C/POSIX locale without UTF-8 mode)
        stream.write(shown.encode("ascii", "backslashreplace").decode("ascii"))
    stream.flush()


class LaunchActions(Reporter):
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

    def guarded(self, action: Callable[[], None]) -> None:
        """Run an action; a LifecycleError (or a bug) becomes the `failed` event, never a traceback."""
        assert self.model is not None
        try:
            action()
        except LifecycleError as exc:
            self.model.failed(error=exc)
        except Exception as exc:  # a bug in lifecycle: still one line, and a documented code
            self.model.failed(error=LifecycleError(f"internal error: {type(exc).__name__}: {exc}", EX_SOFTWARE))

    def load_settings(self, event: EventData | None = None) -> None:
        """initializing: load and validate every setting (the machine starts here; cli runs it)."""
        assert self.model is not None
        self.guarded(self._load_settings)

    def _load_settings(self) -> None:
        from lifecycle.launch import settings  # pydantic-settings: the start-up stage's one heavy import

        mode = self.invocation.mode
        runtime, spark, executor = settings.load_all(mode)
        self.knobs = runtime.to_knobs()
        self.settings = (spark, executor)
        assert self.model is not None
        self.model.settings_loaded()

    def resolve_environment(self, event: EventData) -> None:
        self.guarded(self._resolve_environment)

    def _resolve_environment(self) -> None:
        from lifecycle.launch import identity, plan, resolve

        spark, executor = self.settings
        env = dict(os.environ)
        mode = self.invocation.mode
        warn: Callable[[str], None] = lambda message: self.log.warning("warning", message)  # noqa: E731
        who = identity.detect_identity(env)
        additions, message = identity.apply_identity(who, env, self.invocation.dry_run)
        (warn if who.action == identity.NONE else lambda m: self.log.info("identity", m))(message)
        java_home, java_source = (None, "")
        if mode in ("executor", "master", "worker"):
            java_home, java_source = resolve.find_java_home(env)
        dist = resolve.hadoop_classpath(env, warn)
        fqdn = resolve.host_fqdn() if mode == "master" and not env.get("SPARK_MASTER_HOST") else None
        facts = plan.Facts(os.getcwd(), java_home, java_source, dist, additions, fqdn)
        plan_mode = mode if mode in ("driver", "executor", "master", "worker") else plan.PASSTHROUGH
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
            from lifecycle.launch.dryrun import render

            write_text(sys.stdout, render(self.plan, self.passed, self.details, self.invocation.json))
            sys.stdout.flush()
            self.exit_code = 0
            return
        if self.knobs.run_mode == "exec":
            self._exec()
        else:
            self._spawn_and_hand_over()

    def hint(self) -> str:
        if self.plan is not None and self.plan.mode == "executor":
            return " (from JAVA_HOME; set JAVA_HOME to a JDK or JRE directory)"
        if self.plan is not None and self.plan.mode in ("driver", "master", "worker"):
            return " (from SPARK_HOME; is it the Spark directory?)"
        return ""

    def _exec(self) -> None:
        from lifecycle.launch.spawn import exec_error
        from lifecycle.signals import reset_for_child

        assert self.plan is not None
        shown = display_arg(self.plan.argv[0])
        self.log.info("exec", f"exec {shown} ({knobs.RUN_MODE}=exec)", argv0=shown)
        if self.plan.cwd != os.getcwd():
            os.chdir(self.plan.cwd)
        self.log.out.drain(DRAIN)  # bounded: a stalled stderr must not hold the exec back for ever
        reset_for_child(self.ignored, self.mask)
        try:
            os.execvpe(self.plan.argv[0], list(self.plan.argv), dict(self.plan.env))
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.valid_signals()) - self.mask)
            raise exec_error(shown, exc, self.hint()) from None

    def _spawn_and_hand_over(self) -> None:
        from lifecycle.launch.handover import hand_over

        assert self.plan is not None
        hand_over(self, self.plan)
