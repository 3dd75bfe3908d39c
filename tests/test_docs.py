"""The README documents every knob and every exit code the code defines."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import errors, knobs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("knob", knobs.KNOBS, ids=lambda k: k.name)
def test_readme_configuration_table_lists_every_knob(knob: knobs.Knob) -> None:
    """The README's configuration table should have a row for every LIFECYCLE_* knob, with its default."""
    row = next((line for line in README.splitlines() if line.startswith(f"| `{knob.name}` |")), None)
    assert row is not None, f"{knob.name} missing from the README"
    assert (f"`{knob.default}`" if knob.default else "(empty)") in row


@pytest.mark.parametrize(
    "code",
    [
        errors.EX_USAGE,
        errors.EX_PRE_LAUNCH,
        errors.EX_SOFTWARE,
        errors.EX_OSERR,
        errors.EX_CONFIG,
        errors.EXIT_NOT_EXECUTABLE,
        errors.EXIT_NOT_FOUND,
    ],
)
def test_readme_documents_every_runtime_exit_code(code: int) -> None:
    """Every exit code lifecycle itself can return should be in the README's exit-code table."""
    assert f"\n| {code} |" in README
