"""The lifecycle state machine, tested against a graph restated here by hand (nextline's test_config.py style).

This is the pure FSM layer: the effects (Actions) are mocked with create_autospec here, and only here. Every
other test runs real code and real processes.
"""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transitions import MachineError

from lifecycle.machine import ACTIONS, Lifecycle, Phase, build_machine

INTERNAL = "internal"  # the trigger runs its action but the state stays

# The graph, restated independently of machine.TRANSITIONS: state -> {trigger: destination or INTERNAL}.
# child_exited here is without scripts (no `scripts=`): with them it goes to post-exit (WITH_SCRIPTS below).
EXPECTED: dict[Phase, dict[str, Phase | str]] = {
    Phase.initializing: {
        "scripts_found": Phase.pre_launch,
        "settings_loaded": Phase.env_resolved,
        "failed": Phase.terminated,
    },
    Phase.pre_launch: {
        "settings_loaded": Phase.env_resolved,
        "stop_requested": Phase.terminated,
        "failed": Phase.terminated,
    },
    Phase.env_resolved: {"plan_built": Phase.launching, "failed": Phase.terminated},
    Phase.launching: {"child_started": Phase.running, "failed": Phase.terminated},
    Phase.running: {
        "decommission_requested": Phase.decommissioning,
        "child_exited": Phase.terminated,
        "failed": Phase.terminated,
    },
    Phase.decommissioning: {
        "decommission_requested": INTERNAL,
        "executor_exited": INTERNAL,
        "executors_drained": Phase.stopping,
        "deadline_passed": INTERNAL,
        "child_exited": Phase.terminated,
        "failed": Phase.terminated,
    },
    Phase.stopping: {
        "decommission_requested": INTERNAL,
        "deadline_passed": INTERNAL,
        "child_exited": Phase.terminated,
        "failed": Phase.terminated,
    },
    Phase.post_exit: {"scripts_finished": Phase.terminated, "failed": Phase.terminated},
    Phase.terminated: {},
}
WITH_SCRIPTS = {  # child_exited(scripts=[…])
    Phase.running: Phase.post_exit,
    Phase.decommissioning: Phase.post_exit,
    Phase.stopping: Phase.post_exit,
}
TRIGGERS = [
    "scripts_found",
    "settings_loaded",
    "stop_requested",
    "plan_built",
    "child_started",
    "decommission_requested",
    "executor_exited",
    "executors_drained",
    "deadline_passed",
    "child_exited",
    "scripts_finished",
    "failed",
]
# The action each destination's on_enter runs, and the action of each internal trigger.
ENTER_ACTION = {
    Phase.pre_launch: "run_pre_launch",
    Phase.env_resolved: "resolve_environment",
    Phase.launching: "launch",
    Phase.running: "supervise",
    Phase.decommissioning: "start_decommission",
    Phase.stopping: "stop_drained",
    Phase.post_exit: "run_post_exit",
    Phase.terminated: "terminate",
}
INTERNAL_ACTION = {
    "decommission_requested": "repeat_decommission",
    "executor_exited": "record_executor_exit",
    "deadline_passed": "escalate",
}
ALL_PAIRS = list(itertools.product(Phase, TRIGGERS))


def _action(self: object, event: object) -> None:
    """The shape of every state action: one EventData argument."""


# A spec with every action any process implements (machine.ACTIONS names them), for create_autospec.
EveryAction = type("EveryAction", (), {name: _action for name in ["on_transition", *(m for m, _ in ACTIONS.values())]})


def new_model(initial: Phase = Phase.initializing) -> tuple[Lifecycle, mock.NonCallableMagicMock]:
    """A model on the real machine, in `initial`, with mocked Actions."""
    actions = mock.create_autospec(EveryAction, instance=True)
    model = Lifecycle(actions)
    build_machine(model, initial=initial)
    return model, actions


def test_expected_graph_names_every_phase_and_trigger() -> None:
    """lifecycle's restated graph should cover all nine phases and the twelve triggers, and nothing else."""
    assert set(EXPECTED) == set(Phase)
    assert {trigger for edges in EXPECTED.values() for trigger in edges} == set(TRIGGERS)


@pytest.mark.parametrize(("state", "trigger"), ALL_PAIRS, ids=[f"{s.name}-{t}" for s, t in ALL_PAIRS])
def test_every_state_and_trigger_pair_follows_the_graph(state: Phase, trigger: str) -> None:
    """lifecycle should move along a defined edge and refuse, unchanged, every trigger the graph does not define."""
    model, _ = new_model(state)
    expected = EXPECTED[state].get(trigger)
    if expected is None:
        with pytest.raises(MachineError):
            model.trigger(trigger)
        assert model.state == state
    else:
        assert model.trigger(trigger) is True
        assert model.state == (state if expected == INTERNAL else expected)


@pytest.mark.parametrize(("state", "trigger"), ALL_PAIRS, ids=[f"{s.name}-{t}" for s, t in ALL_PAIRS])
def test_every_defined_pair_runs_exactly_its_actions(state: Phase, trigger: str) -> None:
    """lifecycle should log the transition, then run the destination's (or the internal trigger's) one action."""
    model, actions = new_model(state)
    expected = EXPECTED[state].get(trigger)
    if expected is None:
        with pytest.raises(MachineError):
            model.trigger(trigger)
        assert actions.mock_calls == []
        return
    model.trigger(trigger)
    action = INTERNAL_ACTION[trigger] if expected == INTERNAL else ENTER_ACTION[expected]  # type: ignore[index]
    assert actions.mock_calls == [mock.call.on_transition(mock.ANY), getattr(mock.call, action)(mock.ANY)]


@pytest.mark.parametrize("state", list(WITH_SCRIPTS), ids=lambda phase: phase.name)
def test_child_exited_with_post_exit_scripts_goes_to_post_exit(state: Phase) -> None:
    """lifecycle should enter post-exit (and run its action) when the child exits and post-exit scripts were found,
    and go straight to terminated when the list is empty."""
    model, actions = new_model(state)
    model.child_exited(outcome=(0, None, "exited", []), scripts=["10-upload.sh"])
    assert model.state == WITH_SCRIPTS[state]
    assert actions.mock_calls == [mock.call.on_transition(mock.ANY), mock.call.run_post_exit(mock.ANY)]
    model, actions = new_model(state)
    model.child_exited(outcome=(0, None, "exited", []), scripts=[])
    assert model.state == Phase.terminated


def test_post_exit_then_scripts_finished_terminates_with_the_childs_outcome() -> None:
    """lifecycle should go running -> post-exit -> terminated, handing terminate the child's outcome."""
    model, actions = new_model(Phase.running)
    outcome: tuple[int, None, str, list[str]] = (3, None, "exited with code 3", [])
    actions.run_post_exit.side_effect = lambda event: model.scripts_finished(outcome=event.kwargs["outcome"])
    model.child_exited(outcome=outcome, scripts=["10-upload.sh"])
    assert model.state == Phase.terminated
    assert actions.terminate.call_args.args[0].kwargs == {"outcome": outcome}


def test_machine_starts_in_initializing_without_running_any_action() -> None:
    """lifecycle should start in initializing and run nothing until the first trigger."""
    model, actions = new_model()
    assert model.state == Phase.initializing
    assert actions.mock_calls == []


def test_terminated_is_final() -> None:
    """lifecycle's terminated state should be final: no trigger leaves it."""
    machine = build_machine(Lifecycle(mock.create_autospec(EveryAction, instance=True)), initial=Phase.terminated)
    assert machine.get_state(Phase.terminated).final is True
    assert all(not machine.get_state(phase).final for phase in Phase if phase is not Phase.terminated)


def test_happy_path_runs_the_actions_in_order() -> None:
    """lifecycle should run, in order, each transition's log line and then its state's action along the happy path."""
    model, actions = new_model()
    for trigger in (
        "scripts_found",
        "settings_loaded",
        "plan_built",
        "child_started",
        "decommission_requested",
        "decommission_requested",
        "deadline_passed",
        "deadline_passed",
        "child_exited",
    ):
        model.trigger(trigger)
    any_event = mock.ANY
    assert actions.mock_calls == [
        mock.call.on_transition(any_event),
        mock.call.run_pre_launch(any_event),
        mock.call.on_transition(any_event),
        mock.call.resolve_environment(any_event),
        mock.call.on_transition(any_event),
        mock.call.launch(any_event),
        mock.call.on_transition(any_event),
        mock.call.supervise(any_event),
        mock.call.on_transition(any_event),
        mock.call.start_decommission(any_event),
        mock.call.on_transition(any_event),
        mock.call.repeat_decommission(any_event),
        mock.call.on_transition(any_event),
        mock.call.escalate(any_event),
        mock.call.on_transition(any_event),
        mock.call.escalate(any_event),
        mock.call.on_transition(any_event),
        mock.call.terminate(any_event),
    ]
    assert model.state == Phase.terminated


def test_a_workers_drain_runs_its_actions_in_order() -> None:
    """lifecycle should, for a worker, record each executor's exit, then stop the drained Worker, then terminate."""
    model, actions = new_model(Phase.running)
    for trigger in ("decommission_requested", "executor_exited", "executor_exited", "executors_drained",
                    "deadline_passed", "child_exited"):  # fmt: skip
        model.trigger(trigger)
    any_event = mock.ANY
    assert actions.mock_calls == [
        mock.call.on_transition(any_event),
        mock.call.start_decommission(any_event),
        mock.call.on_transition(any_event),
        mock.call.record_executor_exit(any_event),
        mock.call.on_transition(any_event),
        mock.call.record_executor_exit(any_event),
        mock.call.on_transition(any_event),
        mock.call.stop_drained(any_event),
        mock.call.on_transition(any_event),
        mock.call.escalate(any_event),
        mock.call.on_transition(any_event),
        mock.call.terminate(any_event),
    ]
    assert model.state == Phase.terminated


def test_actions_receive_the_event_with_its_trigger_and_arguments() -> None:
    """lifecycle should hand each action the event that caused it, with the trigger's keyword arguments."""
    model, actions = new_model(Phase.running)
    outcome: tuple[int, None, str, list[str]] = (0, None, "exited 0", [])
    model.child_exited(outcome=outcome)
    event = actions.terminate.call_args.args[0]
    assert event.event.name == "child_exited"
    assert event.kwargs == {"outcome": outcome}
    assert event.transition.source == Phase.running.name
    assert event.transition.dest == Phase.terminated.name


@pytest.mark.parametrize("state", [phase for phase in Phase if phase is not Phase.terminated])
def test_failed_from_each_live_state_logs_then_terminates(state: Phase) -> None:
    """lifecycle should, on failed in any live state, log the transition and then run terminate with the error."""
    model, actions = new_model(state)
    error = RuntimeError("boom")
    model.failed(error=error)
    assert model.state == Phase.terminated
    assert actions.mock_calls == [mock.call.on_transition(mock.ANY), mock.call.terminate(mock.ANY)]
    assert actions.terminate.call_args.args[0].kwargs == {"error": error}


def test_failed_after_terminated_is_refused() -> None:
    """lifecycle should refuse failed once terminated, running no action."""
    model, actions = new_model(Phase.terminated)
    with pytest.raises(MachineError):
        model.failed(error=RuntimeError("late"))
    assert model.state == Phase.terminated
    assert actions.mock_calls == []


def test_transition_is_logged_before_the_state_action_runs() -> None:
    """lifecycle should call on_transition while still in the source state, before the destination's action."""
    model, actions = new_model()
    seen: list[tuple[str, Phase]] = []
    actions.on_transition.side_effect = lambda event: seen.append(("on_transition", model.state))
    actions.resolve_environment.side_effect = lambda event: seen.append(("resolve_environment", model.state))
    model.settings_loaded()
    assert seen == [("on_transition", Phase.initializing), ("resolve_environment", Phase.env_resolved)]


def test_trigger_fired_inside_an_action_is_queued_until_the_action_returns() -> None:
    """lifecycle should queue a trigger fired from inside an action and process it after the current one."""
    model, actions = new_model()
    seen: list[str] = []

    def resolve(event: Any) -> None:
        model.plan_built()
        seen.append(f"resolve_environment returns in {model.state.value}")

    actions.resolve_environment.side_effect = resolve
    actions.launch.side_effect = lambda event: seen.append(f"launch in {model.state.value}")
    model.settings_loaded()
    assert seen == ["resolve_environment returns in env-resolved", "launch in launching"]
    assert model.state == Phase.launching


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(list(Phase)), triggers=st.lists(st.sampled_from(TRIGGERS), max_size=30))
def test_random_trigger_sequences_follow_the_graph(start: Phase, triggers: list[str]) -> None:
    """lifecycle should, for any trigger sequence, follow EXPECTED step by step and never leave terminated."""
    model, actions = new_model(start)
    state = start
    terminated = start == Phase.terminated
    for trigger in triggers:
        expected = EXPECTED[state].get(trigger)
        calls_before = list(actions.mock_calls)
        if expected is None:
            with pytest.raises(MachineError):
                model.trigger(trigger)
            assert actions.mock_calls == calls_before
        else:
            model.trigger(trigger)
            state = state if expected == INTERNAL else expected  # type: ignore[assignment]
            action = INTERNAL_ACTION[trigger] if expected == INTERNAL else ENTER_ACTION[state]
            assert actions.mock_calls[len(calls_before) :] == [
                mock.call.on_transition(mock.ANY),
                getattr(mock.call, action)(mock.ANY),
            ]
        assert model.state == state
        if terminated:
            assert model.state == Phase.terminated
        terminated = terminated or model.state == Phase.terminated
