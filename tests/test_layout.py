"""The three processes and the machine: each state's action is one hop from machine.ACTIONS, implemented by the
actions class of each process that reaches it (and by no other), and the README's table says the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle.launch.actions import LaunchActions
from lifecycle.machine import ACTIONS, PROCESSES, Phase
from lifecycle.prestop.actions import HookActions
from lifecycle.reporting import Reporter
from lifecycle.supervise.actions import SupervisorActions

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES: dict[str, type] = {"launch": LaunchActions, "supervise": SupervisorActions, "prestop": HookActions}
STATE_ONLY = {"initialize", "run_pre_launch", "resolve_environment", "launch", "supervise", "start_decommission",
              "repeat_decommission", "escalate", "run_post_exit"}  # fmt: skip


def test_every_process_in_the_table_names_its_file_and_class() -> None:
    assert set(PROCESSES) == set(CLASSES)
    for process, where in PROCESSES.items():
        path, name = where.split(": ")
        assert CLASSES[process].__name__ == name
        assert CLASSES[process].__module__.replace(".", "/") + ".py" == path


@pytest.mark.parametrize("key", list(ACTIONS), ids=str)
def test_each_action_is_implemented_by_the_processes_that_reach_it_and_only_them(key: Phase | str) -> None:
    method, processes = ACTIONS[key]
    for process, cls in CLASSES.items():
        has = callable(getattr(cls, method, None))
        if process in processes:
            assert has, f"{cls.__name__} reaches {key} but has no {method}"
        elif method in STATE_ONLY:  # no stubs that raise for states a process never reaches
            assert not has, f"{cls.__name__} never reaches {key} but defines {method}"


def test_the_readme_table_of_state_actions_is_the_machine_table() -> None:
    text = README.read_text()
    rows = re.findall(r"^\| (`[a-z-]+`|\([^)]*\)) \| `([a-z_]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|$", text, re.M)
    methods = [method for method, _ in ACTIONS.values()]
    assert [row[1] for row in rows] == methods
    for (_, method, *cells), (_, processes) in zip(rows, ACTIONS.values(), strict=True):
        for process, cell in zip(CLASSES, cells, strict=True):
            named = re.search(r"`(\w+)\.(\w+)`", cell)
            if process in processes:
                assert named, f"README: no class for {method} in the {process} column"
                assert named.group(2) == method
                assert named.group(1) in (CLASSES[process].__name__, Reporter.__name__)
            else:
                assert named is None, f"README names {cell.strip()} for {method}, which {process} never runs"
