"""The README documents every knob and every exit code the code defines; every relative link in the docs resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle import errors, knobs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


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


# ---- links ----------------------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = [line.lstrip("#").strip() for line in path.read_text().splitlines() if re.match(r"#{1,6} ", line)]
    return {slug(heading) for heading in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (document.parent / path_part).resolve() if path_part else document
        if not path.exists():
            broken.append(f"{target}: no {path_part}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not broken, broken
