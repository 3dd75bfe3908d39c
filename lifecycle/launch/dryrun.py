"""Render a launch plan for `--dry-run`: text for people, `--json` for machines. Secrets redacted."""

from __future__ import annotations

import json
from typing import Any

from lifecycle.launch.plan import LaunchPlan
from lifecycle.redaction import known_secrets, redact_arg, redact_argv, redact_value


def as_dict(plan: LaunchPlan, passed: list[str], details: dict[str, Any]) -> dict[str, Any]:
    known = known_secrets(plan.env)
    return {
        "mode": plan.mode,
        "states": passed,
        "launched": False,
        "argv": redact_argv(plan.argv, known),
        "env": {name: redact_arg(redact_value(name, plan.env[name]), known) for name in plan.changed},
        "cwd": plan.cwd,
        "classpath": [{"value": e.value, "source": e.source} for e in plan.classpath],
        "java_home": details.get("java_home"),
        "java_home_source": details.get("java_home_source") or None,
        "identity": details.get("identity"),
        "oom_group": details.get("oom_group"),
        "notes": list(plan.notes),
        "scripts": details.get("scripts", {"pre-launch": [], "post-exit": []}),
    }


def render(plan: LaunchPlan, passed: list[str], details: dict[str, Any], as_json: bool) -> str:
    data = as_dict(plan, passed, details)
    if as_json:
        return json.dumps(data, indent=2) + "\n"
    out = [
        f"lifecycle dry run: {plan.mode}",
        f"states: {' -> '.join(passed)} (dry run: nothing launched)",
        f"cwd: {plan.cwd}",
        "argv:",
    ]
    out += [f"  [{i}] {arg}" for i, arg in enumerate(data["argv"])]
    out.append("environment added or changed:" if data["env"] else "environment: unchanged")
    out += [f"  {name}={value}" for name, value in data["env"].items()]
    if plan.classpath:
        out.append("classpath (-cp), in order:")
        width = max(len(e.value) for e in plan.classpath)
        out += [
            f"  {e.value or '(empty: the working directory)':{max(width, 32)}}  from {e.source}" for e in plan.classpath
        ]
    if data["java_home"]:
        out.append(f"java home: {data['java_home']} (from {data['java_home_source']})")
    if details.get("message"):
        out.append(f"identity: {details['message']}")
    if details.get("oom"):
        out.append(f"memory: {details['oom']}")
    for stage, names in data["scripts"].items():
        if names:
            when = "not run in a dry run" if stage == "pre-launch" else "run after the child exits"
            out.append(f"{stage} scripts ({when}): {', '.join(names)}")
    out += [f"note: {note}" for note in plan.notes]
    return "\n".join(out) + "\n"
