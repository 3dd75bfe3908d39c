"""state_diagrams/, docs/states.md and the README's diagram are generated from machine.py and cannot drift."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lifecycle import diagrams
from lifecycle.machine import TRANSITIONS

ROOT = Path(__file__).resolve().parent.parent


def test_committed_diagrams_match_the_machine() -> None:
    """The committed diagrams, state reference and README diagram should equal what the table renders."""
    assert diagrams.main(["--check"]) == 0


def test_rendering_is_deterministic() -> None:
    """Rendering twice should give the same bytes for every file (Mermaid, DOT, SVG, reference)."""
    assert diagrams.outputs() == diagrams.outputs()


def test_every_transition_of_the_table_is_drawn() -> None:
    """Every trigger of the table should appear in the entrypoint's Mermaid diagram."""
    text = diagrams.mermaid("lifecycle")
    for row in TRANSITIONS:
        assert row["trigger"] in text


def test_drift_check_fails_when_the_declaration_changes(tmp_path: Path) -> None:
    """Editing the transition table in a copy should make `--check` fail until the diagrams are regenerated."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "lifecycle", copy / "lifecycle", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "state_diagrams", copy / "state_diagrams")
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "README.md", copy / "README.md")
    machine = copy / "lifecycle" / "machine.py"
    text = machine.read_text()
    edited = text.replace(
        '{"trigger": "child_started", "source": Phase.launching, "dest": Phase.running},',
        '{"trigger": "child_started", "source": Phase.launching, "dest": Phase.running},\n'
        '    {"trigger": "child_exited", "source": Phase.launching, "dest": Phase.terminated},',
    )
    assert edited != text
    machine.write_text(edited)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    command = [sys.executable, "-m", "lifecycle.diagrams", "--check", "--root", str(copy)]
    stale = subprocess.run(command, env=env, cwd=copy, capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1
    assert "state_diagrams/lifecycle.mmd" in stale.stderr
    subprocess.run([*command[:-3], "--root", str(copy)], env=env, cwd=copy, check=True, timeout=60, capture_output=True)
    assert subprocess.run(command, env=env, cwd=copy, timeout=60, capture_output=True).returncode == 0
    assert "launching --> terminated: child_exited" in (copy / "state_diagrams" / "lifecycle.mmd").read_text()
