"""What the README promises, read from it for the tests that hold it to that."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_hook_modules(readme: str | None = None) -> set[str]:
    """The preStop command's imports before its request, as the README's preStop section lists them: lifecycle's
    modules (with the packages they are in) and the standard library's, beyond what the interpreter loads to start."""
    text = " ".join((readme if readme is not None else (ROOT / "README.md").read_text()).split())
    match = re.search(r"before it asks, it loads only lifecycle's (.*?) and, beyond what the interpreter loads to "
                      r"start, the standard library's (.*?) \(no ", text)  # fmt: skip
    assert match is not None, "the README's preStop section no longer lists the command's imports"
    ours = {f"lifecycle.{name}" for name in re.findall(r"`([\w.]+)`", match.group(1))}
    packages = {name.rsplit(".", depth)[0] for name in ours for depth in range(1, name.count(".") + 1)}
    return ours | packages | set(re.findall(r"`([\w.]+)`", match.group(2)))
