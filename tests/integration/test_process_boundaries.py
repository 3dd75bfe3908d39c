"""What the real processes load: the lean supervisor never has pydantic (nor anything only the start-up stage
needs) in sys.modules or mapped in memory, and psutil only at exit when there are descendants; the preStop
command imports exactly the modules the README lists, before its request and after (the fast path).

The static contracts (lint-imports) and the fresh-interpreter checks are tests/test_import_boundaries.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.pods import HOOK, NSENTER, UNSHARE, base_env
from tests.helpers.pods import StartPod
from tests.helpers.readme import readme_hook_modules
from tests.helpers.supervised import PRINT_SIGNALS, REPO_ROOT, Runs, env_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or UNSHARE is None or NSENTER is None, reason="needs root, unshare and nsenter"
)

START_UP_ONLY = ("pydantic", "pydantic_core", "pydantic_settings", "lifecycle.launch")
SUPERVISOR_ENTRY = "lifecycle.supervise.main"


def mapped_files(pid: int) -> set[str]:
    """The files mapped in the process's memory (/proc/<pid>/maps): its interpreter, every C extension loaded."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6 and "/" in line}


def test_the_maps_check_sees_pydantic_when_it_is_loaded() -> None:
    """The control: an interpreter that imported pydantic-settings has pydantic_core's extension mapped."""
    code = "import pydantic_settings, sys; print('ready', flush=True); sys.stdin.read()"
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        assert [path for path in mapped_files(process.pid) if "pydantic_core" in path]
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_the_lean_supervisor_maps_no_pydantic_and_no_psutil(runs: Runs, pid1: bool) -> None:
    """`lifecycle` supervising a real child (PID 1 of a new PID namespace, or a subreaper): once the lean
    supervisor runs (its command line names lifecycle.supervise.main), no pydantic file is mapped in it, nor
    psutil's (the steady state never imports it)."""
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "TERM:0"], pid1=pid1)
    run.ready()
    run.send(signal.SIGUSR1)  # forwarded only once the supervisor's handlers are installed (blocked until then)
    run.expect(str(int(signal.SIGUSR1)))

    argv = Path(f"/proc/{run.pid}/cmdline").read_bytes().split(b"\0")
    assert any(f"from {SUPERVISOR_ENTRY} import main".encode() in part for part in argv), argv
    mapped = mapped_files(run.pid)
    assert any("python" in Path(path).name for path in mapped)  # the maps were read (the interpreter is there)
    assert not [path for path in mapped if "pydantic" in path or "psutil" in path]

    run.send(signal.SIGTERM)
    assert run.finish().code == 0


# The real lean supervisor (lifecycle.supervise.main.main) over a child spawned without the start-up stage, the
# way handover leaves it: signals blocked, the child in its own process group, a subreaper when not PID 1. After
# main returns (exit_now=False), sys.modules as it was at the end of the whole run, on stdout.
SUPERVISE = r"""
import ctypes, json, os, signal, sys, time
from lifecycle.knobs import Knobs

child = json.loads(sys.argv[1])
signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
if os.getpid() != 1:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as handover does
pid = os.posix_spawn(child[0], child, os.environ, setsigmask=(), setpgroup=0)
knobs = Knobs(termination_log="", orphan_grace=0.2, hook_grace=0.0)
payload = {"pid": pid, "label": "child", "control_fd": None, "started": time.monotonic(), "stderr_fd": None,
           "knobs": knobs.to_json_dict(), "oom": [None, None]}
from lifecycle.supervise.main import main

code = main(json.dumps(payload))
print("modules " + json.dumps(sorted(sys.modules)), flush=True)
sys.exit(code)
"""


@pytest.mark.parametrize("leftover", [False, True], ids=["alone", "with-a-leftover"])
def test_the_lean_supervisors_whole_run_loads_nothing_of_the_start_up_stage(
    runs: Runs, pid1: bool, leftover: bool
) -> None:
    """The supervisor's sys.modules after a whole run (child started, signalled, exited, leftovers stopped) should
    hold no pydantic, pydantic_settings or lifecycle.launch module; psutil only when a descendant was left at exit
    (it finds and stops them), never otherwise."""
    child = [*PRINT_SIGNALS, "--exit-on", "TERM:0", *(["--stubborn"] if leftover else [])]
    run = runs.start([sys.executable, "-c", SUPERVISE, json.dumps(child)], env_for(), pid1=pid1, wrapper=[])
    run.ready()
    run.send(signal.SIGTERM)
    outcome = run.finish()

    assert outcome.code == 0, outcome.stderr
    (line,) = [line for line in outcome.lines if line.startswith("modules ")]
    modules = set(json.loads(line.removeprefix("modules ")))
    assert SUPERVISOR_ENTRY in modules and "transitions" in modules
    assert not [name for name in modules if name.split(".")[0] in START_UP_ONLY or name.startswith(START_UP_ONLY)]
    assert ("psutil" in modules) is leftover
    if leftover:
        assert "descendant process(es) left" in outcome.stderr


# ---- the preStop command ---------------------------------------------------------------------------------


def imported(stderr: str) -> list[str]:
    """The modules an interpreter run with -X importtime imported, in order, from its stderr."""
    names = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "imported package" not in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return names


# (flags, what to run for the base): as the kubelet runs the installed console script; and without site (-S),
# from the source tree, where an editable install's finder cannot hide modules by importing them first (its
# .pth hook loads re, enum, pathlib …); there the base is the interpreter's start-up as site makes it (import os).
HOOK_RUNS = {"installed": ((), "pass"), "no-site": (("-S",), "import os")}


@pytest.mark.pid1
@needs_namespaces
@pytest.mark.parametrize("how", list(HOOK_RUNS))
def test_the_prestop_command_imports_exactly_the_readme_list(pods: StartPod, how: str) -> None:
    """The real lifecycle-decommission, in a pod whose PID 1 is lifecycle supervising a stand-in executor, drains
    it through the supervisor (exit 0). Every module it imported in the whole run, beyond the interpreter's own
    start-up under the same flags, should be exactly the README's list: nothing before the request but the list,
    and on the fast path nothing after it."""
    assert NSENTER is not None and HOOK is not None
    flags, base_code = HOOK_RUNS[how]
    env = base_env(PYTHONPATH=str(REPO_ROOT)) if how == "no-site" else base_env()
    pod = pods("container", [*PRINT_SIGNALS, "--exit-on", "PWR:0"], PYTHONPATH=str(REPO_ROOT))
    pod.ready()

    hook = subprocess.run([NSENTER, "-t", str(pod.processes()[1]), "-p", "-m", sys.executable, *flags, "-X",
                           "importtime", HOOK], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    base = subprocess.run([sys.executable, *flags, "-X", "importtime", "-c", base_code], env=env,
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip

    assert hook.returncode == 0, hook.stderr
    assert "exited with code 0" in hook.stderr and "finding the executor JVM itself" not in hook.stderr  # fast path
    assert pod.exit_code() == 0
    started_with = set(imported(base.stderr))
    assert set(imported(hook.stderr)) - started_with == readme_hook_modules() - started_with

