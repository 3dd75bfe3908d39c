"""LaunchActions: the start-up stage's state actions (initializing, pre-launch, env-resolved, launching).

Each is one method, named in machine.ACTIONS. The heavy modules (pydantic-settings, the plan, identity) load
inside them, so importing this module costs nothing until the first action runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from lifecycle import knobs, scripts
from lifecycle.errors import EX_SOFTWARE, ConfigError, LifecycleError
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
    """initializing → (pre-launch →) env-resolved → launching: scripts, settings, plan, then exec or spawn and
    hand over."""

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
        self.early = knobs  # the knobs read before the pre-launch scripts run (knobs.BEFORE_SCRIPTS)
        self.pre_launch: list[scripts.Script] = []

    def guarded(self, action: Callable[[], None]) -> None:
        """Run an action; a LifecycleError (or a bug) becomes the `failed` event, never a traceback."""
        assert self.model is not None
        try:
            action()
        except LifecycleError as exc:
            self.model.failed(error=exc)
        except Exception as exc:  # a bug in lifecycle: still one line, and a documented code
            self.model.failed(error=LifecycleError(f"internal error: {type(exc).__name__}: {exc}", EX_SOFTWARE))

    def initialize(self, event: EventData | None = None) -> None:
        """initializing (the machine starts here; cli runs it): the knobs the scripts need, read strictly, and
        LIFECYCLE_PRE_LAUNCH_DIR listed; with scripts there, on to pre-launch, else the settings at once."""
        assert self.model is not None
        self.guarded(self._initialize)

    def _initialize(self) -> None:
        try:
            self.early = knobs.load_knobs(names=knobs.BEFORE_SCRIPTS)
        except ConfigError:  # no script runs on a bad knob: the validation reports it, with every other problem
            self._load_settings()
            return
        found, skipped = scripts.find(self.early.pre_launch_dir, knobs.PRE_LAUNCH_DIR)
        for name in skipped:
            self.log.warning("pre-launch", f"skipped {name} in {knobs.PRE_LAUNCH_DIR}: not an executable file",
                             script=name)  # fmt: skip
        if self.invocation.dry_run:
            directory = os.environ.get(knobs.POST_EXIT_DIR, knobs.BY_NAME[knobs.POST_EXIT_DIR].default)
            post_exit = self.post_exit(knobs.parse_directory(directory))  # as the settings will have it
            self.details["scripts"] = {scripts.PRE_LAUNCH: [s.name for s in found], scripts.POST_EXIT: post_exit}
        self.pre_launch = found
        assert self.model is not None
        if found:
            self.model.scripts_found(scripts=[script.name for script in found])
        else:
            self._load_settings()

    def post_exit(self, directory: str) -> list[str]:
        """The post-exit scripts the supervisor would find now (for the dry run and exec mode's warning)."""
        try:
            return [script.name for script in scripts.find(directory, knobs.POST_EXIT_DIR)[0]]
        except LifecycleError as exc:
            self.log.warning("post-exit", exc.message)
            return []

    def run_pre_launch(self, event: EventData) -> None:
        """pre-launch: each script in turn, its exports applied; then every setting validated."""
        self.guarded(self._run_pre_launch)

    def _run_pre_launch(self) -> None:
        from lifecycle.knobs import signal_name
        from lifecycle.launch import prelaunch

        assert self.model is not None
        if self.invocation.dry_run:
            self.log.info("pre-launch", f"dry run: {len(self.pre_launch)} pre-launch script(s) listed, none run")
            self._load_settings()
            return
        results, stop = prelaunch.run_all(self.log, self.pre_launch, self.early, self.mask, self.invocation.mode)
        records = [result.record() for result in results]
        if stop is not None:
            name = results[-1].script.name if results and results[-1].stopped else None
            during = f"while pre-launch script {name} ran" if name else "between pre-launch scripts"
            reason = f"stopped by {signal_name(stop)} {during}: nothing launched"
            self.model.stop_requested(outcome=(128 + stop, stop, reason, []), results=records)
            return
        self._load_settings(records)

    def _load_settings(self, results: list[dict[str, Any]] | None = None) -> None:
        from lifecycle.launch import settings  # pydantic-settings: the start-up stage's one heavy import

        mode = self.invocation.mode
        runtime, spark, executor = settings.load_all(mode)
        self.knobs = runtime.to_knobs()
        self.settings = (spark, executor)
        assert self.model is not None
        if results is None:
            self.model.settings_loaded()
        else:
            self.model.settings_loaded(results=results)

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
            **self.details,
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
        ignored = self.post_exit(self.knobs.post_exit_dir)
        if ignored:
            self.log.warning("post-exit", f"{len(ignored)} post-exit script(s) in {knobs.POST_EXIT_DIR} will "
                             f"not run: with {knobs.RUN_MODE}=exec nothing of lifecycle is left once the command "
                             "exits")  # fmt: skip
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
