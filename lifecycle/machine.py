"""The lifecycle state machine, declared once as data: the runtime, the tests and the diagrams use this table.

::

    initializing --settings_loaded--> env-resolved --plan_built--> launching --child_started--> running
         |                                  ^                                                        |
    scripts_found (pre-launch scripts)      | settings_loaded                 decommission_requested |
         v                                  |                                   (SIGPWR, preStop)    v
    pre-launch ----------------------------+            decommissioning (deadline_passed: SIGTERM,
         |  stop_requested (SIGTERM while a script runs)        |    later SIGKILL; a second request
         v                                                       |    changes nothing; a worker's
    terminated <--child_exited [no post-exit scripts]--+        |    executor_exited records each
         ^    <--scripts_finished-- post-exit <--child_exited [post-exit scripts]-- running, decommissioning
         |                                                       |    or stopping
         |                        stopping <--executors_drained--+ (a worker: none left; SIGTERM the Worker)
         +--failed-- (every state but terminated)

The happy path, with the effects replaced by a recorder:

>>> from lifecycle.machine import Phase, build_machine, Lifecycle
>>> class Recorder:
...     def __getattr__(self, name):
...         return lambda *args, **kwargs: None
>>> model = Lifecycle(Recorder())
>>> _ = build_machine(model)
>>> for trigger in ("scripts_found", "settings_loaded", "plan_built", "child_started", "decommission_requested",
...                 "decommission_requested", "child_exited"):
...     _ = model.trigger(trigger)
>>> model.state.value
'terminated'
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from transitions import EventData, Machine


class Phase(enum.Enum):
    """The nine states; values are the documented names (hyphens are fine in values, not in names)."""

    initializing = "initializing"
    pre_launch = "pre-launch"
    env_resolved = "env-resolved"
    launching = "launching"
    running = "running"
    decommissioning = "decommissioning"
    stopping = "stopping"  # a standalone worker whose executors have drained: the Worker JVM is stopped
    post_exit = "post-exit"
    terminated = "terminated"


LIVE = [phase for phase in Phase if phase is not Phase.terminated]
DRAINING = [Phase.decommissioning, Phase.stopping]
EXITED = [Phase.running, *DRAINING]  # where the main child's exit is heard

# pre-launch and post-exit are entered only when their directory holds scripts: without any, lifecycle goes
# initializing -> env-resolved and running -> terminated as it always has (the log and its readers unchanged).
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "scripts_found", "source": Phase.initializing, "dest": Phase.pre_launch},
    {"trigger": "settings_loaded", "source": [Phase.initializing, Phase.pre_launch], "dest": Phase.env_resolved},
    {"trigger": "stop_requested", "source": Phase.pre_launch, "dest": Phase.terminated},
    {"trigger": "plan_built", "source": Phase.env_resolved, "dest": Phase.launching},
    {"trigger": "child_started", "source": Phase.launching, "dest": Phase.running},
    {"trigger": "decommission_requested", "source": Phase.running, "dest": Phase.decommissioning},
    {"trigger": "decommission_requested", "source": DRAINING, "dest": None, "after": "on_repeat_decommission"},
    {"trigger": "executor_exited", "source": Phase.decommissioning, "dest": None, "after": "on_executor_exit"},
    {"trigger": "executors_drained", "source": Phase.decommissioning, "dest": Phase.stopping},
    {"trigger": "deadline_passed", "source": DRAINING, "dest": None, "after": "on_deadline"},
    {"trigger": "child_exited", "source": EXITED, "dest": Phase.post_exit, "conditions": "with_scripts"},
    {"trigger": "child_exited", "source": EXITED, "dest": Phase.terminated, "unless": "with_scripts"},
    {"trigger": "scripts_finished", "source": Phase.post_exit, "dest": Phase.terminated},
    {"trigger": "failed", "source": LIVE, "dest": Phase.terminated},
]  # fmt: skip

# Documentation as data, for the diagrams and the state reference (python -m lifecycle.diagrams).
TRIGGERED_BY = {
    "scripts_found": "executables in LIFECYCLE_PRE_LAUNCH_DIR",
    "settings_loaded": "argv and every variable valid, the pre-launch scripts' exports included",
    "stop_requested": "SIGTERM or SIGINT while pre-launch scripts run",
    "plan_built": "identity, JAVA_HOME, classpath resolved",
    "child_started": "child spawned (supervise mode)",
    "decommission_requested": "SIGPWR or the preStop command",
    "executor_exited": "worker: an executor JVM the Worker launched exited (its pidfd)",
    "executors_drained": "worker: none of the executors the Worker launched is left",
    "deadline_passed": "LIFECYCLE_DECOMMISSION_TIMEOUT, then LIFECYCLE_KILL_GRACE",
    "child_exited": "pidfd readable / SIGCHLD",
    "scripts_finished": "each post-exit script exited, or LIFECYCLE_POST_EXIT_TIMEOUT passed",
    "failed": "configuration error, pre-launch script failure, exec failure, internal error",
}
# What a transition's condition means ("conditions": shown as is, "unless": its negation), for the documents.
CONDITIONS = {"with_scripts": ("post-exit scripts", "no post-exit scripts")}
LEADS_TO = {
    "scripts_found": "-",
    "settings_loaded": "-",
    "stop_requested": "128+N for signal N (143 SIGTERM, 130 SIGINT); nothing launched",
    "plan_built": "-",
    "child_started": "-",
    "decommission_requested": "- (a second request changes nothing)",
    "executor_exited": "- (logged: its pid, executors left, seconds since the request)",
    "executors_drained": "- (SIGTERM to the Worker; its exit after a completed drain is lifecycle's 0)",
    "deadline_passed": "first SIGTERM, then SIGKILL to the JVM (so 143 or 137); in stopping, SIGKILL",
    "child_exited": "the child's code, or 128+N for signal N, after LIFECYCLE_EXIT_REMAP",
    "scripts_finished": "the child's code as above: a post-exit script never changes it",
    "failed": "78 configuration, 69 pre-launch script, 126/127 exec, 64 usage, 70 internal, 71 OS error",
}
# Each state's action, one hop from this table: the method its process's actions object runs on entry (and
# for the two internal transitions, after them), and which process runs it. The three processes and their
# actions classes: lifecycle/launch/actions.py LaunchActions (the start-up stage), lifecycle/supervise/actions.py
# SupervisorActions (the lean supervisor, PID 1), lifecycle/prestop/actions.py HookActions (the preStop command
# when it finds the JVM itself; it attaches at `running`). A process implements only the states it reaches.
PROCESSES = {
    "launch": "lifecycle/launch/actions.py: LaunchActions",
    "supervise": "lifecycle/supervise/actions.py: SupervisorActions",
    "prestop": "lifecycle/prestop/actions.py: HookActions",
}
ACTIONS: dict[Phase | str, tuple[str, tuple[str, ...]]] = {
    Phase.initializing: ("initialize", ("launch",)),
    Phase.pre_launch: ("run_pre_launch", ("launch",)),
    Phase.env_resolved: ("resolve_environment", ("launch",)),
    Phase.launching: ("launch", ("launch",)),
    Phase.running: ("supervise", ("supervise",)),
    Phase.decommissioning: ("start_decommission", ("supervise", "prestop")),
    Phase.stopping: ("stop_drained", ("supervise",)),
    "decommission_requested again": ("repeat_decommission", ("supervise",)),
    "executor_exited": ("record_executor_exit", ("supervise",)),
    "deadline_passed": ("escalate", ("supervise",)),
    Phase.post_exit: ("run_post_exit", ("supervise",)),
    Phase.terminated: ("terminate", ("launch", "supervise", "prestop")),
}
STATE_ACTIONS = {
    Phase.initializing: "read argv (the mode) and the knobs the scripts need; list LIFECYCLE_PRE_LAUNCH_DIR; "
    "without scripts, load and validate every setting",
    Phase.pre_launch: "run each pre-launch script (bounded, output logged), apply its LIFECYCLE_ENV_FILE exports; "
    "then load and validate every setting",
    Phase.env_resolved: "passwd entry (nss_wrapper or /etc/passwd), JAVA_HOME, Hadoop classpath, java options, "
    "classpath: build the immutable launch plan",
    Phase.launching: "exec the plan (LIFECYCLE_RUN_MODE=exec), or spawn it and hand over to the lean supervisor",
    Phase.running: "forward signals to the child, reap orphans, serve the preStop command",
    Phase.decommissioning: "send LIFECYCLE_DECOMMISSION_SIGNAL to the JVM, arm LIFECYCLE_DECOMMISSION_TIMEOUT; "
    "a worker: then wait on a pidfd for each executor JVM the Worker launched",
    Phase.stopping: "a worker whose executors have all exited: SIGTERM the Worker JVM (it never exits by itself), "
    "SIGKILL after LIFECYCLE_KILL_GRACE",
    Phase.post_exit: "tell attached preStop commands, run each post-exit script with the child's exit status "
    "(bounded by LIFECYCLE_POST_EXIT_TIMEOUT, output logged)",
    Phase.terminated: "map the exit status, write the termination message, tell attached preStop commands, "
    "SIGTERM leftover descendants, exit",
}

MACHINE_OPTIONS: dict[str, Any] = {
    "auto_transitions": False,
    "queued": True,
    "send_event": True,
    "model_override": True,
    "initial": Phase.initializing,
    "before_state_change": "on_transition",
}


class StateActions(Protocol):
    """What every process's actions object has; each state's own action is looked up through ACTIONS."""

    def on_transition(self, event: EventData) -> None: ...
    def terminate(self, event: EventData) -> None: ...


def phase_value(name: object) -> str:
    """The documented state name for a transitions state name or Phase."""
    if isinstance(name, Phase):
        return name.value
    return Phase[str(name)].value


class Lifecycle:
    """The model: its state, the bound triggers (declared here), and one-line callbacks into Actions."""

    state: Phase

    def __init__(self, actions: StateActions) -> None:
        self.actions = actions

    # Triggers, bound by transitions (model_override=True replaces these stubs).
    def scripts_found(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def stop_requested(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def scripts_finished(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def settings_loaded(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def plan_built(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def child_started(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def decommission_requested(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def executor_exited(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def executors_drained(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def deadline_passed(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def child_exited(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def failed(self, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    def trigger(self, name: str, **kwargs: Any) -> bool:
        raise RuntimeError("bound by transitions")

    # Callbacks: thin, each delegating to the one action ACTIONS names.
    def act(self, key: Phase | str, event: EventData) -> None:
        method, processes = ACTIONS[key]
        action = getattr(self.actions, method, None)
        if action is None:  # a process reached a state it has no action for: a bug, reported as one
            raise RuntimeError(f"{type(self.actions).__name__} has no action {method} (ACTIONS: {processes})")
        action(event)

    def on_transition(self, event: EventData) -> None:
        self.actions.on_transition(event)

    # The one condition: child_exited goes to post-exit when the supervisor found scripts there (`scripts=`).
    def with_scripts(self, event: EventData) -> bool:
        return bool(event.kwargs.get("scripts"))

    def on_enter_pre_launch(self, event: EventData) -> None:
        self.act(Phase.pre_launch, event)

    def on_enter_post_exit(self, event: EventData) -> None:
        self.act(Phase.post_exit, event)

    def on_enter_env_resolved(self, event: EventData) -> None:
        self.act(Phase.env_resolved, event)

    def on_enter_launching(self, event: EventData) -> None:
        self.act(Phase.launching, event)

    def on_enter_running(self, event: EventData) -> None:
        self.act(Phase.running, event)

    def on_enter_decommissioning(self, event: EventData) -> None:
        self.act(Phase.decommissioning, event)

    def on_enter_stopping(self, event: EventData) -> None:
        self.act(Phase.stopping, event)

    def on_repeat_decommission(self, event: EventData) -> None:
        self.act("decommission_requested again", event)

    def on_executor_exit(self, event: EventData) -> None:
        self.act("executor_exited", event)

    def on_deadline(self, event: EventData) -> None:
        self.act("deadline_passed", event)

    def on_enter_terminated(self, event: EventData) -> None:
        self.act(Phase.terminated, event)


def build_machine(model: Lifecycle, initial: Phase = Phase.initializing) -> Machine:
    """The runtime machine (core `transitions.Machine` only: extensions cost 45-60 ms and pull in asyncio)."""
    states = [{"name": phase, "final": phase is Phase.terminated} for phase in Phase]
    options = dict(MACHINE_OPTIONS, initial=initial)
    return Machine(model=model, states=states, transitions=TRANSITIONS, **options)
