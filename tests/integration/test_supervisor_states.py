"""The run-phase states (running, decommissioning, terminated) as the JSON log reports them.

Each transition is one JSON object on stderr with `source`, `dest` and `trigger` (LIFECYCLE_LOG_FORMAT=json).
The expected sequences are restated here from the documented graph (STYLE rule 16), not imported from
lifecycle.machine, and observed end to end: the start-up process logs the first two transitions and the
lean supervisor it execs into logs the rest. The child is tests/helpers/print_signals.py.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import pytest

from tests.helpers.supervised import PRINT_SIGNALS, REPO_ROOT, Outcome, Runs, env_for

pytestmark = pytest.mark.integration

START = [
    ("initializing", "env-resolved", "settings_loaded"),
    ("env-resolved", "launching", "plan_built"),
    ("launching", "running", "child_started"),
]


def records(outcome: Outcome) -> list[dict[str, Any]]:
    """Every JSON log object lifecycle wrote; any other stderr line fails the test."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def transitions(outcome: Outcome) -> list[tuple[str, str, str]]:
    return [(r["source"], r["dest"], r["trigger"]) for r in records(outcome) if r["event"] == "transition"]


def terminated(outcome: Outcome) -> dict[str, Any]:
    (record,) = [r for r in records(outcome) if r["event"] == "terminated"]
    return record


def test_child_exiting_while_running_goes_straight_to_terminated(runs: Runs, pid1: bool) -> None:
    """A child that exits on its own should take lifecycle from running to terminated by child_exited."""
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "USR2:5"], env_for(LIFECYCLE_LOG_FORMAT="json"), pid1=pid1)
    run.ready()
    run.send(signal.SIGUSR2)
    outcome = run.finish()
    assert outcome.code == 5
    assert transitions(outcome) == [*START, ("running", "terminated", "child_exited")]
    assert terminated(outcome)["exit_code"] == 5
    assert terminated(outcome)["signal"] is None
    # The hand-over to the lean supervisor is an exec: one process, one clock, from the first line to the last.
    assert {r["pid"] for r in records(outcome)} == {1 if pid1 else run.pid}
    elapsed = [r["elapsed_ms"] for r in records(outcome)]
    assert elapsed == sorted(elapsed)


def test_decommission_then_exit_passes_through_decommissioning(runs: Runs, pid1: bool) -> None:
    """SIGPWR should move running to decommissioning, and the child's exit then decommissioning to terminated."""
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "PWR:0"], env_for(LIFECYCLE_LOG_FORMAT="json"), pid1=pid1)
    run.ready()
    run.send(signal.SIGPWR)
    outcome = run.finish()
    assert outcome.code == 0
    assert outcome.lines[-1] == str(int(signal.SIGPWR))  # the child got the decommission signal itself
    assert transitions(outcome) == [
        *START,
        ("running", "decommissioning", "decommission_requested"),
        ("decommissioning", "terminated", "child_exited"),
    ]
    (sent,) = [r for r in records(outcome) if r["event"] == "decommission"]
    assert sent["signal"] == "SIGPWR"
    assert sent["deadline_s"] is None  # LIFECYCLE_DECOMMISSION_TIMEOUT unset: wait as upstream's decom.sh does


def test_deadline_escalates_twice_inside_decommissioning(runs: Runs, pid1: bool) -> None:
    """A child outliving the deadline should get SIGTERM, then SIGKILL, each a deadline_passed in decommissioning."""
    env = env_for(LIFECYCLE_LOG_FORMAT="json", LIFECYCLE_DECOMMISSION_TIMEOUT="200ms", LIFECYCLE_KILL_GRACE="200ms")
    run = runs.start([*PRINT_SIGNALS, "--ignore", "TERM"], env, pid1=pid1)
    run.ready()
    run.send(signal.SIGPWR)
    run.expect(str(int(signal.SIGPWR)))  # handled, and ignored: the child just carries on
    outcome = run.finish()
    assert outcome.code == 128 + signal.SIGKILL
    assert transitions(outcome) == [
        *START,
        ("running", "decommissioning", "decommission_requested"),
        ("decommissioning", "decommissioning", "deadline_passed"),
        ("decommissioning", "decommissioning", "deadline_passed"),
        ("decommissioning", "terminated", "child_exited"),
    ]
    assert [r["level"] for r in records(outcome) if r["event"] == "deadline"] == ["warning", "warning"]
    assert terminated(outcome)["signal"] == "SIGKILL"


def test_deadline_sigterm_reaches_the_group_with_signal_group(runs: Runs, pid1: bool) -> None:
    """With LIFECYCLE_SIGNAL_GROUP=1 the deadline's SIGTERM should reach the child's process group, as a forwarded
    signal does: the grandchild hears it while the child still runs (60 s of kill grace are left)."""
    env = env_for(
        LIFECYCLE_SIGNAL_GROUP="1", LIFECYCLE_DECOMMISSION_TIMEOUT="100ms", LIFECYCLE_KILL_GRACE="60s"
    )  # fmt: skip
    run = runs.start([*PRINT_SIGNALS, "--grandchild", "--exit-on", "USR2:0"], env, pid1=pid1)  # TERM: printed only
    run.ready()
    run.send(signal.SIGPWR)
    run.expect("grandchild 15", timeout=10)
    run.send(signal.SIGUSR2)  # forwarded to the group: both exit
    outcome = run.finish()
    assert outcome.code == 0
    assert "grandchild 30" not in outcome.lines  # the decommission signal itself is for the child alone


# The first thing the child does: connect to the decommission channel as lifecycle-decommission would.
CONNECT_AT_ONCE = (
    "from lifecycle import control; conn = control.connect(); "
    "print('connected' if conn is not None else 'no supervisor listening', flush=True)"
)


def test_decommission_channel_listens_before_the_child_starts(runs: Runs, pid1: bool) -> None:
    """A preStop command that comes the moment the JVM starts should find the channel (bound before the spawn,
    handed to the lean supervisor), not fall back to scanning because the supervisor is still starting."""
    run = runs.start([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
                      + CONNECT_AT_ONCE], env_for(), pid1=pid1)  # fmt: skip
    outcome = run.finish()
    assert outcome.lines == ["connected"], outcome.stderr
    assert outcome.code == 0
    assert "decommission channel is taken" not in outcome.stderr
