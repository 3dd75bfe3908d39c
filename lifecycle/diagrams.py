"""Render the state machines from the one declaration in machine.py: Mermaid, DOT/SVG and a state reference.

`python -m lifecycle.diagrams` writes state_diagrams/ and docs/states.md (and the README's diagram); `--check`
exits 1 when a committed file differs from what the table gives (CI runs it through tests/test_diagrams.py).
Output is deterministic: the table's order, no timestamps. A development tool: the runtime never imports it.

The drift check compares only what this module writes: Mermaid, DOT, Markdown. An SVG is Graphviz's rendering
of the DOT, and its bytes change with Graphviz's version (its own comment names the version, and the layout
moves), so it is never compared: each SVG carries the digest of the DOT it was rendered from, and it is stale
when that digest is not the current DOT's. The check holds on any machine, with any Graphviz or none; only
writing a stale SVG needs `dot`, and an SVG whose DOT has not changed is left as it is.

Why a renderer of its own rather than `transitions`' diagram support (transitions.extensions.diagrams,
GraphMachine): its Graphviz engines need pygraphviz or the `graphviz` package (a dependency for a few boxes)
and still end in a Graphviz rendering, the same version drift; its Mermaid engine (0.9.3) writes a model's
*current* state as styling (`Class initializing s_active`), the enum names (`env_resolved`) where the
documented names are `env-resolved`, a front-matter title Mermaid does not read, no text for what fires a
trigger, and `failed` as an arrow from every state; its output format is the library's, so any upgrade would
fail the drift check again; and it draws one whole machine, where the preStop command's is the part reachable
from `running`. What is drawn here is ~60 lines over the table, with the triggers' documentation beside them.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lifecycle.machine import (
    ACTIONS,
    CONDITIONS,
    LEADS_TO,
    PROCESSES,
    STATE_ACTIONS,
    TRANSITIONS,
    TRIGGERED_BY,
    Phase,
)

ROOT = Path(__file__).resolve().parent.parent
# name: (initial state, title, states it never enters: the preStop command never runs post-exit scripts)
MACHINES = {
    "lifecycle": (Phase.initializing, "the entrypoint (lifecycle): start-up, supervision, decommission", ()),
    "lifecycle-decommission": (
        Phase.running, "the preStop command (lifecycle-decommission), attached in running", (Phase.post_exit,)),
}  # fmt: skip


def condition(row: dict[str, object]) -> str:
    """A transition's condition as the documents show it, ` [post-exit scripts]`, or ''."""
    if "conditions" in row:
        return f" [{CONDITIONS[str(row['conditions'])][0]}]"
    if "unless" in row:
        return f" [{CONDITIONS[str(row['unless'])][1]}]"
    return ""


def edges(initial: Phase, never: tuple[Phase, ...] = ()) -> list[tuple[Phase, Phase, str, bool, str]]:
    """(source, dest, trigger, internal, condition) for every transition reachable from `initial` that enters no
    state of `never`, in table order."""
    reachable, found = {initial}, []
    changed = True
    while changed:
        changed = False
        for row in TRANSITIONS:
            sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
            for source in sources:
                dest = row["dest"] or source
                if source in reachable and dest not in reachable and dest not in never:
                    reachable.add(dest)
                    changed = True
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            dest = row["dest"] or source
            if source in reachable and dest not in never:
                label = "" if "unless" in row and never else condition(row)  # no choice left: no condition shown
                found.append((source, dest, row["trigger"], row["dest"] is None, label))
    return found


def states(initial: Phase, never: tuple[Phase, ...] = ()) -> list[Phase]:
    seen = {initial} | {dest for _, dest, _, _, _ in edges(initial, never)}
    return [phase for phase in Phase if phase in seen]


def mermaid(name: str) -> str:
    initial, title, never = MACHINES[name]
    lines = ["---", f"title: {title}", "---", "stateDiagram-v2", "  direction LR"]
    lines += [f'  state "{phase.value}" as {phase.name}' for phase in states(initial, never)]
    lines.append(f"  [*] --> {initial.name}")
    failed_from = []
    for source, dest, trigger, internal, when in edges(initial, never):
        if trigger == "failed":
            failed_from.append(source.value)
            continue
        label = f"{trigger}{when} ({TRIGGERED_BY[trigger]})" + (" [internal]" if internal else "")
        lines.append(f"  {source.name} --> {dest.name}: {label}")
    lines.append("  terminated --> [*]")
    lines.append(f"  note left of terminated: failed ({TRIGGERED_BY['failed']}) from {', '.join(failed_from)}")
    return "\n".join(lines) + "\n"


def dot(name: str) -> str:
    initial, title, never = MACHINES[name]
    lines = [
        f'digraph "{name}" {{',
        f'  label="{title}"; labelloc=t; rankdir=LR;',
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        "  start [shape=point, width=0.15];",
        f'  start -> "{initial.value}";',
    ]
    for phase in states(initial, never):
        shape = ", peripheries=2" if phase is Phase.terminated else ""
        lines.append(f'  "{phase.value}" [label="{phase.value}"{shape}];')
    for source, dest, trigger, _, when in edges(initial, never):
        label = f"{trigger}{when}\\n({TRIGGERED_BY[trigger]})"
        style = ", style=dashed, color=gray50, fontcolor=gray50, constraint=false" if trigger == "failed" else ""
        lines.append(f'  "{source.value}" -> "{dest.value}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


STAMP = "<!-- rendered by python -m lifecycle.diagrams from DOT sha256:{} -->"  # where an SVG came from
SVG_SOURCE = re.compile(re.escape(STAMP).replace(r"\{\}", "([0-9a-f]{64})"))


def digest(dot_text: str) -> str:
    return hashlib.sha256(dot_text.encode()).hexdigest()


def svg(dot_text: str) -> str | None:
    """SVG through Graphviz `dot` (Debian's graphviz), stamped with the DOT's digest; None without `dot`."""
    if shutil.which("dot") is None:
        return None
    result = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True, timeout=60)
    stamp, text = STAMP.format(digest(dot_text)), result.stdout
    if not text.startswith("<?xml"):
        return f"{stamp}\n{text}"
    declaration, _, rest = text.partition("\n")  # after <?xml …?>, which must come first
    return f"{declaration}\n{stamp}\n{rest}"


def svg_is_current(svg_text: str | None, dot_text: str) -> bool:
    """Whether an SVG was rendered from this DOT (its stamp), whatever Graphviz rendered it."""
    found = SVG_SOURCE.search(svg_text or "")
    return found is not None and found.group(1) == digest(dot_text)


# ---- each state's action: the function, per process (machine.ACTIONS, machine.PROCESSES) ------------------


def class_source(path: Path, name: str) -> tuple[ast.ClassDef, ast.Module] | None:
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node, tree
    return None


def defining(root: Path, path: Path, class_name: str, method: str) -> tuple[str, str]:
    """(file relative to root, Class.method) where `method` of `class_name` is defined: the class in `path`, or
    the base class it inherits it from (followed through `from lifecycle… import Base`). Read from the source,
    never imported: the start-up stage's actions import pydantic. ValueError when there is no such method."""
    found = class_source(path, class_name)
    if found is None:
        raise ValueError(f"{path.relative_to(root)} has no class {class_name} (machine.PROCESSES)")
    node, tree = found
    if any(isinstance(item, ast.FunctionDef) and item.name == method for item in node.body):
        return str(path.relative_to(root)), f"{class_name}.{method}"
    imported = {
        alias.asname or alias.name: statement.module
        for statement in tree.body
        if isinstance(statement, ast.ImportFrom) and statement.module and statement.module.startswith("lifecycle")
        for alias in statement.names
    }
    for base in node.bases:
        if isinstance(base, ast.Name):
            module = imported.get(base.id)
            base_path = root.joinpath(*module.split(".")).with_suffix(".py") if module else path
            try:
                return defining(root, base_path, base.id, method)
            except ValueError:
                continue
    raise ValueError(f"{class_name} ({path.relative_to(root)}) has no action {method} (machine.ACTIONS)")


def action_functions(key: Phase | str, root: Path = ROOT) -> list[tuple[str, str, str]]:
    """[(process, file, Class.method)] running the action ACTIONS names for `key`, in ACTIONS' process order."""
    method, processes = ACTIONS[key]
    found = []
    for process in processes:
        file, class_name = PROCESSES[process].split(": ")
        found.append((process, *defining(root, root / file, class_name, method)))
    return found


def functions_cell(key: Phase | str, root: Path) -> str:
    return "<br>".join(f"{process}: `{file}` `{function}`" for process, file, function in action_functions(key, root))


def reference(root: Path = ROOT) -> str:
    """docs/states.md: every state with its action and the function that runs it in each process, every
    transition with what fires it and where it leads."""
    out = [
        "# States and transitions",
        "",
        "Generated by `python -m lifecycle.diagrams` from `lifecycle/machine.py`; do not edit by hand.",
        "",
        "## States",
        "",
        "Each state's action runs in the process that is in that state (`machine.ACTIONS`): the start-up stage",
        "(launch), the lean supervisor (supervise) or the preStop command when it finds the JVM itself (prestop).",
        "",
        "| state | action on entry | function, per process |",
        "|---|---|---|",
    ]
    out += [f"| `{phase.value}` | {STATE_ACTIONS[phase]} | {functions_cell(phase, root)} |" for phase in Phase]
    out += [
        "",
        "## Transitions",
        "",
        "| trigger | from | to | fired by | exit code it leads to |",
        "|---|---|---|---|---|",
    ]
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        dest = row["dest"].value if row["dest"] else "(same state, internal)"
        when = condition(row).replace(" [", "; only with ").rstrip("]") if condition(row) else ""
        out.append(
            f"| `{row['trigger']}` | {', '.join(s.value for s in sources)} | {dest} | "
            f"{TRIGGERED_BY[row['trigger']]}{when} | {LEADS_TO[row['trigger']]} |"
        )
    others = [key for key in ACTIONS if not isinstance(key, Phase)]
    if others:
        out += ["", "The internal transitions' actions:", "", "| event | function, per process |", "|---|---|"]
        out += [f"| `{key}` | {functions_cell(key, root)} |" for key in others]
    for name in MACHINES:
        out += ["", f"## `{name}`", "", "```mermaid", mermaid(name).rstrip(), "```"]
    return "\n".join(out) + "\n"


START, END = "<!-- diagram: generated by python -m lifecycle.diagrams -->", "<!-- diagram end -->"


def readme(text: str) -> str:
    """The README with the main diagram between the markers replaced."""
    head, found, rest = text.partition(START)
    if not found:
        return text
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n```mermaid\n{mermaid('lifecycle')}```\n{END}{tail}"


def outputs(root: Path = ROOT) -> dict[Path, str]:
    """Every file compared byte for byte: what this module writes itself (no SVG: see `drawings`)."""
    files: dict[Path, str] = {root / "docs" / "states.md": reference(root)}
    if (root / "README.md").exists():
        files[root / "README.md"] = readme((root / "README.md").read_text())
    for name in MACHINES:
        base = root / "state_diagrams" / name
        files[base.with_suffix(".mmd")] = mermaid(name)
        files[base.with_suffix(".md")] = f"# {name}\n\n```mermaid\n{mermaid(name)}```\n"
        files[base.with_suffix(".dot")] = dot(name)
    return files


def drawings(root: Path = ROOT) -> dict[Path, str]:
    """Each SVG and the DOT it must be rendered from."""
    return {root / "state_diagrams" / f"{name}.svg": dot(name) for name in MACHINES}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    root = Path(args[args.index("--root") + 1]) if "--root" in args else ROOT
    stale, unrendered = [], []
    for path, text in outputs(root).items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(str(path.relative_to(root)))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path, dot_text in drawings(root).items():
        if svg_is_current(path.read_text() if path.exists() else None, dot_text):
            continue
        stale.append(str(path.relative_to(root)))
        rendered = None if check else svg(dot_text)
        if rendered is not None:
            path.write_text(rendered)
        elif not check:
            unrendered.append(str(path.relative_to(root)))
    if check and stale:
        print(f"diagrams: out of date (run python -m lifecycle.diagrams): {', '.join(stale)}", file=sys.stderr)
        return 1
    if unrendered:
        print(f"diagrams: cannot render {', '.join(unrendered)} without Graphviz's dot (apt-get install graphviz)",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"diagrams: {'wrote ' + ', '.join(stale) if stale else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
