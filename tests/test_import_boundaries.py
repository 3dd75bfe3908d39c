"""The three processes' import boundaries, static and as loaded.

Static: import-linter's contracts in pyproject.toml (`lint-imports`, also run by scripts/test.sh) hold, and each
one fails on a violation planted in a copy of the package, so none can pass vacuously. As loaded: a fresh
interpreter that imports the lean supervisor's entry gets only the standard library and `transitions`, and one
that imports the preStop command's entry gets exactly the modules the README lists. What the real processes load
while they run is tests/integration/test_process_boundaries.py.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.helpers.readme import readme_hook_modules

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
START_UP_ONLY = ("pydantic", "pydantic_core", "pydantic_settings", "lifecycle.launch", "psutil")

needs_linter = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="needs import-linter (the dev extra)")


def loaded(code: str, *flags: str, base: str = "pass") -> set[str]:
    """The modules `python FLAGS -c CODE` has in sys.modules beyond those of `python FLAGS -c BASE`."""
    report = "; import sys as _s; print(sorted(_s.modules))"  # sys only: a module imported here would be hidden
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}

    def modules(source: str) -> set[str]:
        result = subprocess.run([sys.executable, *flags, "-c", source + report], env=env, cwd="/",
                                capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return set(ast.literal_eval(result.stdout))

    return modules(code) - modules(base)


# ---- static: import-linter ------------------------------------------------------------------------------


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    chosen = [option for contract in contracts for option in ("--contract", contract)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *chosen], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@needs_linter
def test_the_import_contracts_hold() -> None:
    """Every contract of pyproject.toml's [tool.importlinter] should be kept by the package as it is."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (contract, file, line added to it): each a violation the contract exists to catch.
PLANTED = [
    ("no-launch", "lifecycle/supervise/loop.py", "from lifecycle.launch import plan"),
    ("no-launch", "lifecycle/prestop/client.py", "import lifecycle.launch.settings"),
    ("independent", "lifecycle/prestop/scan.py", "from lifecycle.supervise import leftovers"),
    ("independent", "lifecycle/supervise/channel.py", "from lifecycle.prestop import client"),
    ("layers", "lifecycle/log.py", "from lifecycle.supervise import refusals"),
    ("layers", "lifecycle/knobs.py", "from lifecycle.launch import settings"),
    ("layers", "lifecycle/newly_added.py", "import os"),  # exhaustive: a new top-level module must be placed
    ("no-pydantic", "lifecycle/supervise/actions.py", "import pydantic"),
    ("no-pydantic", "lifecycle/output.py", "import pydantic_settings"),  # indirect: prestop -> log -> output
]


@needs_linter
@pytest.mark.parametrize("contract, path, line", PLANTED, ids=[f"{c}:{p.split('/', 1)[1]}" for c, p, _ in PLANTED])
def test_each_contract_catches_a_planted_violation(tmp_path: Path, contract: str, path: str, line: str) -> None:
    """With one forbidden import added to a copy of the package, that contract should fail (and name the chain)."""
    shutil.copytree(ROOT / "lifecycle", tmp_path / "lifecycle", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert lint_imports(tmp_path, contract).returncode == 0
    target = tmp_path / path
    target.write_text((target.read_text() if target.exists() else "") + f"\n{line}\n")

    result = lint_imports(tmp_path, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    if contract != "layers" or "newly_added" not in path:
        assert path.removesuffix(".py").replace("/", ".") in result.stdout  # the chain names the planted import


# ---- as loaded: fresh interpreters ------------------------------------------------------------------------


def test_the_lean_supervisors_entry_loads_only_the_standard_library_and_transitions() -> None:
    """Importing lifecycle.supervise.main as handover's boot line does (`python -I`) should load no pydantic, no
    psutil and nothing of lifecycle.launch: only the standard library, transitions and lifecycle's shared modules."""
    modules = loaded(f"import sys; sys.path.insert(0, {str(ROOT)!r}); from lifecycle.supervise.main import main", "-I")

    assert not [name for name in modules if name.split(".")[0] in START_UP_ONLY or name.startswith(START_UP_ONLY)]
    transitions_needs = {re.split(r"[^\w.-]", need)[0] for need in metadata.requires("transitions") or []}
    allowed = {"lifecycle", "transitions", *transitions_needs}  # six, with transitions 0.9
    assert not {name.split(".")[0] for name in modules} - set(sys.stdlib_module_names) - allowed
    assert "lifecycle.supervise.main" in modules and "transitions" in modules


def test_the_prestop_commands_entry_loads_exactly_the_readme_list() -> None:
    """Importing the console script's module should load what the README's preStop section lists, nothing else.
    Without site (-S: no .pth hooks, so an editable install's finder cannot hide re, enum … by loading them
    first); the base is the interpreter's start-up as site makes it (`import os`)."""
    modules = loaded("import os; from lifecycle.prestop.main import run", "-S", base="import os")

    assert modules == readme_hook_modules()


def test_the_readme_list_is_read_from_the_sentence() -> None:
    """The parser should find lifecycle's modules, their packages and the standard library's, and nothing else."""
    sentence = ("x: before it asks, it loads only lifecycle's `prestop.main` and `errors` and, beyond what the "
                "interpreter loads to start, the standard library's `select` and `_socket` (no `re`), and")  # fmt: skip
    expected = {"lifecycle", "lifecycle.prestop", "lifecycle.prestop.main", "lifecycle.errors", "select", "_socket"}
    assert readme_hook_modules(sentence) == expected


def test_the_readme_list_holds_nothing_the_sentence_rules_out() -> None:
    """The README's list should hold none of what the same sentence says the command does not load."""
    listed = readme_hook_modules()
    assert not listed & {"pydantic", "pydantic_settings", "psutil", "dataclasses", "typing", "json", "re", "enum"}
    assert not listed & {"signal", "lifecycle.machine", "lifecycle.prestop.actions", "lifecycle.prestop.scan"}
