"""Pre-launch and post-exit scripts, run for real: lifecycle as PID 1 of a PID namespace or as a subreaper, real
scripts (tests/helpers/script.py behind a shell line, or plain sh), real signals.

A pre-launch script's output is logged when it exits, so a test that must act while one runs blocks on the
`ready (pid: N)` line the script writes into a FIFO (`Ready`), never on a sleep. The child is
tests/helpers/print_signals.py or a python -c that prints its environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.processes import Lines
from tests.helpers.script import install
from tests.helpers.supervised import PRINT_SIGNALS, READY, Outcome, Runs, env_for, error_lines, no_traceback

pytestmark = pytest.mark.integration

SHOW_ENV = (sys.executable, "-c",
            "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))")  # fmt: skip


class Ready:
    """A FIFO a held script writes `ready (pid: N)` into; read with a bounded select, closed at the end."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # no writer yet: select waits for one
        self.lines = Lines(self.fd)

    def pid(self) -> int:
        return int(self.lines.expect(READY).group(1))


@pytest.fixture
def ready(tmp_path: Path) -> Iterator[Ready]:
    fifo = Ready(tmp_path / "ready")
    yield fifo
    os.close(fifo.fd)


@pytest.fixture
def pre(tmp_path: Path) -> Path:
    return tmp_path / "pre-launch.d"


@pytest.fixture
def post(tmp_path: Path) -> Path:
    return tmp_path / "post-exit.d"


def sh_script(directory: Path, name: str, body: str) -> None:
    """An executable /bin/sh script `directory/name` (the directory is created)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n" + body)
    (directory / name).chmod(0o755)


def scripts_env(pre: Path, post: Path, **more: str) -> dict[str, str]:
    return env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(pre), LIFECYCLE_POST_EXIT_DIR=str(post), **more)


def json_records(outcome: Outcome) -> list[dict[str, Any]]:
    """lifecycle's JSON lines (the child's own stderr lines, if any, are left out)."""
    return [json.loads(line) for line in outcome.stderr.splitlines() if line.startswith("{")]


def transitions(outcome: Outcome) -> list[tuple[str, str, str]]:
    return [(r["source"], r["dest"], r["trigger"]) for r in json_records(outcome) if r["event"] == "transition"]


def script_lines(outcome: Outcome, name: str) -> list[str]:
    """What lifecycle logged of script `name`'s output (text format), in order."""
    marker = f"] {name}> "
    return [line.split(marker, 1)[1] for line in outcome.stderr.splitlines() if marker in line]


def child_env(outcome: Outcome) -> dict[str, str | None]:
    assert outcome.lines, outcome.stderr
    found: dict[str, str | None] = json.loads(outcome.lines[-1])
    return found


def test_without_scripts_the_states_and_the_log_are_as_before(runs: Runs, pre: Path, post: Path) -> None:
    """With no script in either directory (missing or empty), lifecycle should pass neither pre-launch nor post-exit
    and log exactly the records it logged before scripts existed."""
    post.mkdir()  # empty
    outcome = runs.run(["sh", "-c", "exit 0"], scripts_env(pre, post, LIFECYCLE_LOG_FORMAT="json"), pid1=False)

    assert outcome.code == 0, outcome.stderr
    assert transitions(outcome) == [("initializing", "env-resolved", "settings_loaded"),
                                    ("env-resolved", "launching", "plan_built"),
                                    ("launching", "running", "child_started"),
                                    ("running", "terminated", "child_exited")]  # fmt: skip
    records = json_records(outcome)
    assert not [r for r in records if {"scripts", "results"} & set(r) or r["event"].startswith("script")]


# ---- pre-launch: order, environment, exports ----------------------------------------------------------------


def test_pre_launch_scripts_run_in_lexical_order_each_seeing_the_exports_before_it(
    runs: Runs, pre: Path, post: Path, pid1: bool
) -> None:
    """Scripts should run in byte order of their names (10 < 2 < 20), each with the earlier scripts' exports in its
    environment, and the child should get every export, exactly as if the pod had set it."""
    install(pre, "20-c", "--say", "c", "--env", "A", "--env", "B")
    install(pre, "10-a", "--say", "a", "--export", "A=from a")
    install(pre, "2-b", "--say", "b", "--env", "A", "--export", "B=from b")
    install(pre, ".hidden", "--exit", "9")  # names starting with `.` are not scripts
    (pre / "README").write_text("not executable: skipped with a warning\n")
    outcome = runs.run([*SHOW_ENV, "A", "B", "LIFECYCLE_ENV_FILE"], scripts_env(pre, post), pid1=pid1)

    assert outcome.code == 0, outcome.stderr
    started = [line.split("pre-launch script ", 1)[1].split()[0] for line in outcome.stderr.splitlines()
               if " started (pid " in line]  # fmt: skip
    assert started == ["10-a", "2-b", "20-c"]
    assert script_lines(outcome, "2-b") == ["b", "A='from a'"]
    assert script_lines(outcome, "20-c") == ["c", "A='from a'", "B='from b'"]
    assert "warning: skipped README in LIFECYCLE_PRE_LAUNCH_DIR: not an executable file" in outcome.stderr
    assert child_env(outcome) == {"A": "from a", "B": "from b", "LIFECYCLE_ENV_FILE": None}
    assert "initializing -> pre-launch (scripts_found)" in outcome.stderr
    assert "pre-launch -> env-resolved (settings_loaded)" in outcome.stderr
    no_traceback(outcome.stderr)


def test_exports_keep_equals_signs_spaces_quotes_and_multi_line_values(
    runs: Runs, pre: Path, post: Path, both_run_modes: str
) -> None:
    """NAME=value should keep everything after the first `=`; NAME<<DELIM should give a multi-line value; a later
    line should win; and the child should see them in both run modes."""
    install(pre, "10-export", "--export", "EQ=a=b==c", "--export", "SPACES=  two  words ", "--export",
            'QUOTED="kept"', "--export", "MULTI<<END", "--export", "line 1", "--export", "", "--export",
            "line=3", "--export", "END", "--export", "EQ=later wins")  # fmt: skip
    env = scripts_env(pre, post, LIFECYCLE_RUN_MODE=both_run_modes)
    outcome = runs.run([*SHOW_ENV, "EQ", "SPACES", "QUOTED", "MULTI"], env, pid1=False)

    assert outcome.code == 0, outcome.stderr
    assert child_env(outcome) == {"EQ": "later wins", "SPACES": "  two  words ", "QUOTED": '"kept"',
                                  "MULTI": "line 1\n\nline=3"}  # fmt: skip
    assert "10-export exported EQ, SPACES, QUOTED, MULTI" in outcome.stderr


def test_a_script_starts_with_a_clean_signal_state_no_descriptor_of_lifecycles_and_empty_stdin(
    runs: Runs, pre: Path, post: Path, pid1: bool
) -> None:
    """A script should start with nothing blocked or ignored (lifecycle blocks every signal during start-up and
    ignores SIGPIPE), with stdin at end of file, and with fds 0-2 and its env file only (post-exit: 0-2 and the
    child's stderr file): not the supervisor's channel, pipes or pidfds."""
    report = ("echo \"stdin=$(cat)\"\ngrep -E '^Sig(Blk|Ign)' /proc/self/status | tr -d '\\t'\n"
              "echo fds=$(ls /proc/self/fd | sort -n | tr '\\n' ' ')\n")  # fmt: skip
    sh_script(pre, "10-pre", report)
    sh_script(post, "10-post", report)
    outcome = runs.run(["true"], scripts_env(pre, post), pid1=pid1)

    assert outcome.code == 0, outcome.stderr
    for name in ("10-pre", "10-post"):
        lines = script_lines(outcome, name)
        assert lines[:3] == ["stdin=", "SigBlk:0000000000000000", "SigIgn:0000000000000000"], lines
        fds = lines[3].removeprefix("fds=").split()
        assert fds[:3] == ["0", "1", "2"] and len(fds) == 5, lines  # ls's own listing, and the scratch file


def test_the_env_file_is_in_memory_and_gone_afterwards(runs: Runs, pre: Path, post: Path, tmp_path: Path) -> None:
    """LIFECYCLE_ENV_FILE should be /proc/self/fd/N (a memfd: nothing on any filesystem), usable with >> from sh,
    and LIFECYCLE_MODE should say the mode."""
    sh_script(pre, "10-sh", 'echo "file=$LIFECYCLE_ENV_FILE mode=$LIFECYCLE_MODE"\n'
                            'echo "FROM_SH=$(readlink "$LIFECYCLE_ENV_FILE")" >> "$LIFECYCLE_ENV_FILE"\n')
    outcome = runs.run([*SHOW_ENV, "FROM_SH"], scripts_env(pre, post), pid1=False)

    assert outcome.code == 0, outcome.stderr
    (line,) = script_lines(outcome, "10-sh")
    assert line.startswith("file=/proc/self/fd/") and line.endswith(" mode=pass-through")
    assert child_env(outcome)["FROM_SH"] == "/memfd:lifecycle-env (deleted)"


def test_the_env_file_survives_a_script_that_uses_low_descriptors_for_itself(
    runs: Runs, pre: Path, post: Path
) -> None:
    """A shell script's `exec 3>…` … `exec 9>…` should not touch LIFECYCLE_ENV_FILE: its descriptor is 64 or above
    (when the descriptor limit allows), out of the range scripts use for their own files."""
    sh_script(pre, "10-fds", 'for fd in 3 4 5 6 7 8 9; do eval "exec $fd>/dev/null"; done\n'
                             'echo "file=$LIFECYCLE_ENV_FILE"\necho KEPT=yes >> "$LIFECYCLE_ENV_FILE"\n')
    outcome = runs.run([*SHOW_ENV, "KEPT"], scripts_env(pre, post), pid1=False)

    assert outcome.code == 0, outcome.stderr
    (line,) = script_lines(outcome, "10-fds")
    assert int(line.removeprefix("file=/proc/self/fd/")) >= 64, line
    assert child_env(outcome)["KEPT"] == "yes"


@pytest.mark.parametrize(
    ("line", "problem"),
    [("not an assignment s3cr3t-line", "line 2: expected NAME=value or NAME<<DELIMITER (line not shown)"),
     ("bad-name=s3cr3t-line", "line 2: the text before '=' is not a variable name"),
     ("LIFECYCLE_LOG_LEVEL=debug", "line 2: LIFECYCLE_LOG_LEVEL cannot be set by a pre-launch script")],
    ids=["no-equals", "bad-name", "early-knob"],
)  # fmt: skip
def test_a_bad_export_line_is_a_configuration_error_naming_script_and_line(
    runs: Runs, pre: Path, post: Path, line: str, problem: str
) -> None:
    """A bad LIFECYCLE_ENV_FILE line should exit 78 with one line naming the script and the line number, never the
    value, and launch nothing."""
    install(pre, "10-bad", "--export", "GOOD=1", "--export", line)
    outcome = runs.run([*PRINT_SIGNALS], scripts_env(pre, post), pid1=False)

    assert outcome.code == 78, outcome.stderr
    assert error_lines(outcome) == [f"error: LIFECYCLE_ENV_FILE of pre-launch script 10-bad, {problem}"
                                    + error_lines(outcome)[0].split(problem, 1)[1]]  # fmt: skip
    assert "s3cr3t-line" not in outcome.stderr
    assert outcome.lines == []  # nothing launched
    no_traceback(outcome.stderr)


def test_a_knob_exported_by_a_script_is_validated_and_honoured(runs: Runs, pre: Path, post: Path) -> None:
    """A knob read after the scripts (LIFECYCLE_EXIT_REMAP) should apply when a script exports it, and a bad value
    should be reported by the validation like the pod's own (78)."""
    install(pre, "10-remap", "--export", "LIFECYCLE_EXIT_REMAP=3:0")
    outcome = runs.run(["sh", "-c", "exit 3"], scripts_env(pre, post), pid1=False)
    assert outcome.code == 0, outcome.stderr
    assert "exit code 3 remapped to 0 (LIFECYCLE_EXIT_REMAP)" in outcome.stderr

    install(pre, "10-remap", "--export", "LIFECYCLE_EXIT_REMAP=three")
    outcome = runs.run(["sh", "-c", "exit 3"], scripts_env(pre, post), pid1=False)
    assert outcome.code == 78
    assert error_lines(outcome)[0].startswith("error: LIFECYCLE_EXIT_REMAP: expected FROM:TO pairs")


# ---- pre-launch: failure policy and timeouts ------------------------------------------------------------------


def test_a_failing_script_stops_the_start_up_with_69_and_one_line(runs: Runs, pre: Path, post: Path,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    """A script that exits non-zero should stop the start-up (exit 69, nothing launched, later scripts not run), with
    one error line naming it and its status, which the termination message repeats with its last output lines."""
    termination = tmp_path / "termination-log"
    termination.write_text("")
    install(pre, "10-fail", "--say", "fetching credentials", "--stderr", "403 Forbidden", "--export", "X=1",
            "--exit", "3")  # fmt: skip
    install(pre, "20-never", "--say", "should not run")
    env = scripts_env(pre, post, LIFECYCLE_TERMINATION_LOG=str(termination))
    outcome = runs.run([*PRINT_SIGNALS], env, pid1=True)

    assert outcome.code == 69, outcome.stderr
    reason = "pre-launch script 10-fail exited with code 3: nothing launched (LIFECYCLE_PRE_LAUNCH_FAILURE=stop)"
    assert error_lines(outcome) == [f"error: {reason}"]
    assert outcome.lines == []
    assert "20-never" not in outcome.stderr
    assert termination.read_text() == (f"lifecycle: {reason}\nstate: terminated\nexit code: 69\nsignal: -\n"
                                       "last output lines:\nfetching credentials\n403 Forbidden\n")  # fmt: skip


def test_with_warn_a_failing_script_is_a_warning_and_its_exports_are_dropped(runs: Runs, pre: Path,
                                                                              post: Path) -> None:  # fmt: skip
    """LIFECYCLE_PRE_LAUNCH_FAILURE=warn should turn a failure into a warning and go on, without its exports."""
    install(pre, "10-fail", "--export", "DROPPED=1", "--exit", "3")
    install(pre, "20-ok", "--export", "KEPT=1")
    outcome = runs.run([*SHOW_ENV, "DROPPED", "KEPT"], scripts_env(pre, post, LIFECYCLE_PRE_LAUNCH_FAILURE="warn"),
                       pid1=False)  # fmt: skip

    assert outcome.code == 0, outcome.stderr
    assert child_env(outcome) == {"DROPPED": None, "KEPT": "1"}
    assert ("warning: pre-launch script 10-fail exited with code 3; going on without its exports "
            "(LIFECYCLE_PRE_LAUNCH_FAILURE=warn)") in outcome.stderr  # fmt: skip


def test_a_script_past_its_timeout_gets_sigterm_and_stops_the_start_up(
    runs: Runs, pre: Path, post: Path, ready: Ready
) -> None:
    """A script running past LIFECYCLE_PRE_LAUNCH_TIMEOUT should get SIGTERM and the start-up stop with 69."""
    install(pre, "10-slow", "--ready", str(ready.path), "--hold", "--term-exit", "0")
    run = runs.start([*PRINT_SIGNALS], scripts_env(pre, post, LIFECYCLE_PRE_LAUNCH_TIMEOUT="1"), pid1=False)
    ready.pid()
    outcome = run.finish()

    assert outcome.code == 69, outcome.stderr
    assert script_lines(outcome, "10-slow") == ["got SIGTERM"]
    assert error_lines(outcome) == [
        "error: pre-launch script 10-slow timed out after 1s (LIFECYCLE_PRE_LAUNCH_TIMEOUT) and exited with code 0: "
        "nothing launched (LIFECYCLE_PRE_LAUNCH_FAILURE=stop)"
    ]
    assert outcome.lines == []


def test_a_script_ignoring_sigterm_is_killed_after_the_kill_grace(
    runs: Runs, pre: Path, post: Path, ready: Ready
) -> None:
    """A script that ignores the timeout's SIGTERM should get SIGKILL after LIFECYCLE_KILL_GRACE, and so should what
    it started (its process group)."""
    install(pre, "10-stubborn", "--ready", str(ready.path), "--hold", "--ignore-term")
    env = scripts_env(pre, post, LIFECYCLE_PRE_LAUNCH_TIMEOUT="1", LIFECYCLE_KILL_GRACE="300ms")
    started = time.monotonic()
    run = runs.start([*PRINT_SIGNALS], env, pid1=True)
    ready.pid()
    outcome = run.finish()

    assert outcome.code == 69, outcome.stderr
    assert script_lines(outcome, "10-stubborn") == ["got SIGTERM"]
    assert "timed out after 1s (LIFECYCLE_PRE_LAUNCH_TIMEOUT) and was killed by SIGKILL" in outcome.stderr
    assert time.monotonic() - started < 10


# ---- pre-launch: signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_sigterm_while_a_script_runs_reaches_it_and_launches_nothing(
    runs: Runs, pre: Path, post: Path, ready: Ready, pid1: bool, stop: signal.Signals
) -> None:
    """SIGTERM (or SIGINT) to lifecycle while a pre-launch script runs should reach the script, and lifecycle exit
    128+N with nothing launched and no later script run (pre-launch -> terminated by stop_requested)."""
    install(pre, "10-hold", "--ready", str(ready.path), "--hold", "--term-exit", "0")
    install(pre, "20-never", "--say", "should not run")
    run = runs.start([*PRINT_SIGNALS], scripts_env(pre, post, LIFECYCLE_LOG_FORMAT="json"), pid1=pid1)
    ready.pid()
    run.send(stop)
    outcome = run.finish()

    assert outcome.code == 128 + stop, outcome.stderr
    assert outcome.lines == []
    assert transitions(outcome) == [("initializing", "pre-launch", "scripts_found"),
                                    ("pre-launch", "terminated", "stop_requested")]  # fmt: skip
    records = json_records(outcome)
    assert [r["message"] for r in records if r["event"] == "script-output"] == [f"10-hold> got {stop.name}"]
    (end,) = [r for r in records if r["event"] == "terminated"]
    assert end["message"] == (f"exit {128 + stop}: stopped by {stop.name} while pre-launch script 10-hold ran: "
                              "nothing launched")  # fmt: skip
    assert [r["script"] for r in records if r["event"] == "script"] == ["10-hold", "10-hold"]  # started, ended


def test_sigpwr_while_a_script_runs_is_remembered_and_decommissions_the_child(
    runs: Runs, pre: Path, post: Path, ready: Ready, pid1: bool
) -> None:
    """SIGPWR while a pre-launch script runs should not reach the script: it stays pending, and once the child runs
    the supervisor decommissions it (running -> decommissioning), as a SIGPWR during start-up always has."""
    install(pre, "10-hold", "--ready", str(ready.path), "--hold")
    run = runs.start([*PRINT_SIGNALS, "--exit-on", "PWR:0"], scripts_env(pre, post, LIFECYCLE_LOG_FORMAT="json"),
                     pid1=pid1)  # fmt: skip
    script = run.host_pid(ready.pid())
    run.send(signal.SIGPWR)
    os.kill(script, signal.SIGUSR1)  # the script ends on its own; the SIGPWR was never its
    outcome = run.finish()

    assert outcome.code == 0, outcome.stderr
    assert outcome.lines[-1] == str(int(signal.SIGPWR))  # the child got the decommission signal
    assert ("running", "decommissioning", "decommission_requested") in transitions(outcome)
    assert [r["message"] for r in json_records(outcome) if r["event"] == "script-output"] == [
        "10-hold> got SIGUSR1", "10-hold> released"]  # fmt: skip


def test_a_script_without_a_shebang_cannot_be_executed_and_stops_the_start_up(runs: Runs, pre: Path,
                                                                               post: Path) -> None:  # fmt: skip
    """An executable file with no #! line should fail as not executable (126), which stops the start-up (69)."""
    pre.mkdir()
    (pre / "10-no-shebang").write_text("echo hi\n")
    (pre / "10-no-shebang").chmod(0o755)
    outcome = runs.run(["true"], scripts_env(pre, post), pid1=False)

    assert outcome.code == 69
    assert error_lines(outcome) == ["error: pre-launch script 10-no-shebang cannot be executed: Exec format error: "
                                    "nothing launched (LIFECYCLE_PRE_LAUNCH_FAILURE=stop)"]  # fmt: skip


def test_a_script_directory_that_is_a_file_is_a_configuration_error(runs: Runs, tmp_path: Path) -> None:
    """LIFECYCLE_PRE_LAUNCH_DIR naming a file should exit 78 with one line; a post-exit one should be an error line
    that leaves the exit code the child's."""
    (tmp_path / "file").write_text("")
    outcome = runs.run(["true"], env_for(LIFECYCLE_PRE_LAUNCH_DIR=str(tmp_path / "file")), pid1=False)
    assert outcome.code == 78
    assert error_lines(outcome) == [f"error: LIFECYCLE_PRE_LAUNCH_DIR: {str(tmp_path / 'file')!r} is not a "
                                    "directory (expected a directory of executables, or empty for none)"]  # fmt: skip

    outcome = runs.run(["sh", "-c", "exit 4"], env_for(LIFECYCLE_POST_EXIT_DIR=str(tmp_path / "file")), pid1=False)
    assert outcome.code == 4
    assert error_lines(outcome)[0].endswith("is not a directory (expected a directory of executables, or empty for "
                                            "none): no post-exit script runs")  # fmt: skip


def test_long_output_is_logged_in_pieces_and_bounded(runs: Runs, pre: Path, post: Path) -> None:
    """A line longer than 4096 characters should be logged in pieces; past 1 MiB the output is read, not logged."""
    sh_script(pre, "10-chatty", "head -c 5000 /dev/zero | tr '\\0' a; echo\n"
                                "yes $(head -c 1000 /dev/zero | tr '\\0' b) | head -n 2000\n")  # fmt: skip
    outcome = runs.run(["true"], scripts_env(pre, post), pid1=False)

    assert outcome.code == 0, outcome.stderr[-2000:]
    lines = script_lines(outcome, "10-chatty")
    assert lines[:2] == ["a" * 4096, "a" * 904]
    rest = (1 << 20) - 5001  # what the first MiB holds after the long line: 1001-byte lines, the last one cut
    assert lines[2:] == ["b" * 1000] * (rest // 1001) + ["b" * (rest % 1001)]
    assert f"10-chatty> {5001 + 2000 * 1001 - (1 << 20)} more bytes of output were read but not logged (at most " \
        f"{1 << 20} bytes in 10000 lines are)" in outcome.stderr  # fmt: skip


def test_a_process_a_script_leaves_running_is_stopped_with_the_childs_leftovers(
    runs: Runs, pre: Path, post: Path
) -> None:
    """A daemon a pre-launch script starts should keep running while the child runs and be stopped with the child's
    other descendants when it exits (as PID 1 it is lifecycle's)."""
    sh_script(pre, "10-daemon", "(exec sleep 600 </dev/null >/dev/null 2>&1 &)\necho started\n")
    outcome = runs.run(["sh", "-c", "pgrep -x sleep >/dev/null && echo daemon-alive"], scripts_env(pre, post),
                       pid1=True)  # fmt: skip

    assert outcome.code == 0, outcome.stderr
    assert outcome.lines == ["daemon-alive"]
    assert "1 descendant process(es) left: SIGTERM" in outcome.stderr


# ---- dry run --------------------------------------------------------------------------------------------------


def test_dry_run_lists_the_scripts_without_running_them(runs: Runs, pre: Path, post: Path, tmp_path: Path) -> None:
    """--dry-run should list the pre-launch and post-exit scripts and run none of them (text and JSON)."""
    marker = tmp_path / "ran"
    for directory, name in ((pre, "10-first"), (pre, "20-second"), (post, "10-upload")):
        directory.mkdir(exist_ok=True)
        (directory / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (directory / name).chmod(0o755)
    text = runs.run(["--dry-run", "true"], scripts_env(pre, post), pid1=False, wrapper=(sys.executable, "-m",
                    "lifecycle"))  # fmt: skip
    as_json = runs.run(["--dry-run", "--json", "true"], scripts_env(pre, post), pid1=False)

    assert text.code == as_json.code == 0, text.stderr + as_json.stderr
    assert "pre-launch scripts (not run in a dry run): 10-first, 20-second" in text.lines
    assert "post-exit scripts (run after the child exits): 10-upload" in text.lines
    assert "states: initializing -> pre-launch -> env-resolved -> launching (dry run: nothing launched)" in text.lines
    plan = json.loads("\n".join(as_json.lines))
    assert plan["scripts"] == {"pre-launch": ["10-first", "20-second"], "post-exit": ["10-upload"]}
    assert not marker.exists()


# ---- post-exit ------------------------------------------------------------------------------------------------

POST_ENV = ("LIFECYCLE_CHILD_EXIT_CODE", "LIFECYCLE_CHILD_SIGNAL", "LIFECYCLE_EXIT_CODE", "LIFECYCLE_EXIT_REASON",
            "LIFECYCLE_EXIT_MESSAGE", "LIFECYCLE_MODE")  # fmt: skip


def post_script(post: Path, name: str = "10-report", *more: str) -> None:
    install(post, name, *(arg for variable in POST_ENV for arg in ("--env", variable)), *more)


def reported(outcome: Outcome, name: str = "10-report") -> dict[str, str]:
    """The post-exit script's environment as it printed it."""
    found = {}
    for line in script_lines(outcome, name):
        key, sep, value = line.partition("=")
        if sep and key in POST_ENV:
            found[key] = value.strip("'")
    return found


@pytest.mark.parametrize(
    ("argv", "send", "env", "code", "expected"),
    [
        (["sh", "-c", "exit 0"], None, {}, 0, ("0", "", "completed", "sh exited with code 0")),
        (["sh", "-c", "exit 3"], None, {}, 3, ("3", "", "failed", "sh exited with code 3")),
        ([*PRINT_SIGNALS, "--default", "TERM"], signal.SIGTERM, {}, 143,
         ("143", "SIGTERM", "killed", f"{Path(sys.executable).name} was killed by SIGTERM")),
        ([*PRINT_SIGNALS, "--exit-on", "PWR:0"], signal.SIGPWR, {}, 0, ("0", "", "decommissioned", None)),
        ([*PRINT_SIGNALS, "--ignore", "TERM"], signal.SIGPWR,
         {"LIFECYCLE_DECOMMISSION_TIMEOUT": "200ms", "LIFECYCLE_KILL_GRACE": "200ms"}, 137,
         ("137", "SIGKILL", "deadline", None)),
    ],
    ids=["completed", "failed", "killed", "decommissioned", "deadline"],
)  # fmt: skip
def test_post_exit_scripts_get_how_the_child_ended(
    runs: Runs, pre: Path, post: Path, pid1: bool, argv: list[str], send: int | None, env: dict[str, str], code: int,
    expected: tuple[str, str, str, str | None],
) -> None:  # fmt: skip
    """A post-exit script should run after the child exited, with its code, signal, lifecycle's exit code and the
    reason in its environment; lifecycle should go running/decommissioning -> post-exit -> terminated and exit
    with the child's status."""
    post_script(post)
    run = runs.start(argv, scripts_env(pre, post, **env), pid1=pid1)
    if send is not None:
        run.ready()
        run.send(send)
    outcome = run.finish()

    assert outcome.code == code, outcome.stderr
    child_code, child_signal, reason, message = expected
    seen = reported(outcome)
    assert (seen["LIFECYCLE_CHILD_EXIT_CODE"], seen["LIFECYCLE_CHILD_SIGNAL"], seen["LIFECYCLE_EXIT_CODE"],
            seen["LIFECYCLE_EXIT_REASON"], seen["LIFECYCLE_MODE"]) == (
        child_code, child_signal, str(code), reason, "pass-through")  # fmt: skip
    if message is not None:
        assert seen["LIFECYCLE_EXIT_MESSAGE"] == message
    lines = outcome.stderr.splitlines()
    entered = next(i for i, line in enumerate(lines) if " -> post-exit (child_exited)" in line)
    left = next(i for i, line in enumerate(lines) if "post-exit -> terminated (scripts_finished)" in line)
    assert entered < next(i for i, line in enumerate(lines) if "10-report> LIFECYCLE_EXIT_REASON=" in line) < left
    no_traceback(outcome.stderr)


def test_a_failing_post_exit_script_never_changes_the_exit_code(runs: Runs, pre: Path, post: Path) -> None:
    """A post-exit script that fails should be a warning; every script still runs and lifecycle exits with the
    child's code."""
    install(post, "10-fail", "--say", "upload failed", "--exit", "4")
    install(post, "20-next", "--say", "still ran")
    outcome = runs.run(["sh", "-c", "exit 5"], scripts_env(pre, post, LIFECYCLE_LOG_FORMAT="json"), pid1=False)

    assert outcome.code == 5
    records = json_records(outcome)
    ends = [r for r in records if r["event"] == "script" and "duration_ms" in r]
    assert [(r["script"], r["level"], r["outcome"], r["exit_code"]) for r in ends] == [
        ("10-fail", "warning", "failed", 4), ("20-next", "info", "ok", 0)]  # fmt: skip
    (left,) = [r for r in records if r.get("trigger") == "scripts_finished"]
    assert [result["script"] for result in left["results"]] == ["10-fail", "20-next"]
    assert all(result["duration_ms"] >= 0 for result in left["results"])
    assert next(r for r in records if r["event"] == "terminated")["exit_code"] == 5


def test_post_exit_scripts_are_bounded_by_the_post_exit_timeout(
    runs: Runs, pre: Path, post: Path, ready: Ready, pid1: bool
) -> None:
    """A post-exit script past LIFECYCLE_POST_EXIT_TIMEOUT should get SIGTERM, then SIGKILL after the kill grace;
    the scripts after it are skipped, and lifecycle exits with the child's code inside the bound."""
    install(post, "10-stuck", "--ready", str(ready.path), "--hold", "--ignore-term")
    install(post, "20-late", "--say", "should not run")
    env = scripts_env(pre, post, LIFECYCLE_POST_EXIT_TIMEOUT="1", LIFECYCLE_KILL_GRACE="300ms")
    started = time.monotonic()
    run = runs.start(["sh", "-c", "exit 2"], env, pid1=pid1)
    ready.pid()
    outcome = run.finish()

    assert outcome.code == 2, outcome.stderr
    assert time.monotonic() - started < 10
    assert script_lines(outcome, "10-stuck") == ["got SIGTERM"]
    assert "post-exit script 10-stuck timed out after 1s (LIFECYCLE_POST_EXIT_TIMEOUT) and was killed by SIGKILL" \
        in outcome.stderr  # fmt: skip
    assert "warning: post-exit script 20-late skipped: LIFECYCLE_POST_EXIT_TIMEOUT (1s) has passed" in outcome.stderr


def test_signals_during_post_exit_are_not_sent_on(runs: Runs, pre: Path, post: Path, ready: Ready,
                                                  pid1: bool) -> None:  # fmt: skip
    """A SIGTERM to lifecycle while a post-exit script runs (the kubelet's, once the preStop command returned)
    should not reach the script: it finishes its work, and lifecycle exits with the child's code."""
    install(post, "10-upload", "--ready", str(ready.path), "--hold")
    run = runs.start(["sh", "-c", "exit 6"], scripts_env(pre, post), pid1=pid1)
    script = run.host_pid(ready.pid())
    run.send(signal.SIGTERM)
    run.send(signal.SIGUSR2)
    os.kill(script, signal.SIGUSR1)  # the upload ends on its own
    outcome = run.finish()

    assert outcome.code == 6, outcome.stderr
    assert script_lines(outcome, "10-upload") == ["got SIGUSR1", "released"]


def test_exec_mode_warns_that_post_exit_scripts_will_not_run(runs: Runs, pre: Path, post: Path) -> None:
    """With LIFECYCLE_RUN_MODE=exec, post-exit scripts should be named in a warning and never run."""
    install(post, "10-upload", "--say", "ran")
    outcome = runs.run(["sh", "-c", "exit 0"], scripts_env(pre, post, LIFECYCLE_RUN_MODE="exec"), pid1=False)

    assert outcome.code == 0
    assert ("warning: 1 post-exit script(s) in LIFECYCLE_POST_EXIT_DIR will not run: with LIFECYCLE_RUN_MODE=exec "
            "nothing of lifecycle is left once the command exits") in outcome.stderr  # fmt: skip
    assert "10-upload" not in outcome.stderr


def test_post_exit_scripts_get_the_childs_stderr_tail(runs: Runs, pre: Path, post: Path) -> None:
    """LIFECYCLE_CHILD_STDERR should name a file holding the child's last stderr lines, secrets redacted."""
    post.mkdir()
    (post / "10-tail").write_text('#!/bin/sh\necho "path=$LIFECYCLE_CHILD_STDERR"\nsed "s/^/tail: /" '
                                  '"$LIFECYCLE_CHILD_STDERR"\n')  # fmt: skip
    (post / "10-tail").chmod(0o755)
    env = scripts_env(pre, post, DB_PASSWORD="dbpw-1f2e3d4c")
    outcome = runs.run(["sh", "-c", "echo one >&2; echo password=dbpw-1f2e3d4c >&2; echo three >&2; exit 1"], env,
                       pid1=False)  # fmt: skip

    assert outcome.code == 1
    lines = script_lines(outcome, "10-tail")
    assert lines[0].startswith("path=/proc/self/fd/")
    assert lines[1:] == ["tail: one", "tail: password=<redacted>", "tail: three"]
    own = [line for line in outcome.stderr.splitlines() if line.startswith("lifecycle:")]  # the child's pass as is
    assert "dbpw-1f2e3d4c" not in "\n".join(own)


# ---- secrets and identity -------------------------------------------------------------------------------------

KNOWN = "dbpassword-5c3e9a71"  # a secret-named variable of the pod
EXPORTED = "exportedtoken-8b2f4d60"  # exported by a script under a secret-looking name
SHAPED = "shapedsecret-1a7c3e95"  # printed as `password=…`
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7keybody"
PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\nsecondkeyline-77e1d2\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_in_script_output_and_exports_are_never_logged(
    runs: Runs, pre: Path, post: Path, tmp_path: Path, log_format: str
) -> None:
    """A pre-launch script that prints a known secret, a `password=` value, the token it then exports under a secret
    name and a private key line by line, and a post-exit script that prints the token, should have none of them in
    lifecycle's log or the termination message; the secret name itself is never logged either."""
    termination = tmp_path / "termination-log"
    termination.write_text("")
    pre.mkdir()
    (pre / "10-fetch").write_text(
        "#!/bin/sh\n"
        'echo "db is $DB_PASSWORD"\n'
        f'echo "password={SHAPED}"\n'
        f'echo "got {EXPORTED}"\n'
        f"printf '%s\\n' '{PEM}'\n"
        f'echo "MY_API_TOKEN={EXPORTED}" >> "$LIFECYCLE_ENV_FILE"\n'
        f"printf 'SERVICE_PRIVATE_KEY<<EOF\\n%s\\nEOF\\n' '{PEM}' >> \"$LIFECYCLE_ENV_FILE\"\n"
        'echo "PLAIN=visible" >> "$LIFECYCLE_ENV_FILE"\n'
    )
    (pre / "10-fetch").chmod(0o755)
    post.mkdir()
    (post / "10-report").write_text('#!/bin/sh\necho "token $MY_API_TOKEN"\n')
    (post / "10-report").chmod(0o755)
    env = scripts_env(pre, post, DB_PASSWORD=KNOWN, LIFECYCLE_LOG_FORMAT=log_format,
                      LIFECYCLE_TERMINATION_LOG=str(termination))  # fmt: skip
    outcome = runs.run(["sh", "-c", 'echo "child token $MY_API_TOKEN" >&2; exit 1'], env, pid1=False)

    assert outcome.code == 1, outcome.stderr
    own = "\n".join(line for line in outcome.stderr.splitlines() if not line.startswith("child token"))
    for secret in (KNOWN, EXPORTED, SHAPED, KEY_BODY, "secondkeyline-77e1d2"):
        assert secret not in own, secret
        assert secret not in termination.read_text(), secret
    assert "MY_API_TOKEN" not in own and "SERVICE_PRIVATE_KEY" not in own
    assert "PLAIN" in own  # the names that do not look secret are logged
    assert "child token <redacted>" in termination.read_text()  # the supervisor knows the exported value
    if log_format == "text":
        shown = ["db is <redacted>", "password=<redacted>", "got <redacted>", "-----BEGIN PRIVATE KEY-----<redacted>",
                 "<redacted>", "<redacted>", "<redacted>"]  # fmt: skip
        assert script_lines(outcome, "10-fetch") == shown, outcome.stderr
        assert "10-fetch exported PLAIN and 2 secret-named variable(s)" in own
        assert script_lines(outcome, "10-report") == ["token <redacted>"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run lifecycle as another uid")
def test_a_non_root_uid_can_write_its_env_file(runs: Runs) -> None:
    """As an unprivileged uid (OpenShift's arbitrary UID), a script should still reach LIFECYCLE_ENV_FILE through
    /proc/self/fd (the memfd is the same uid's) and its export reach the child."""
    root = Path(tempfile.mkdtemp(prefix="lifecycle-scripts-"))  # any uid can read it (tmp_path's parent: 0700)
    try:
        root.chmod(0o755)
        sh_script(root / "pre", "10-as-nobody", 'id -u\necho "FROM_NOBODY=yes" >> "$LIFECYCLE_ENV_FILE"\n')
        setpriv = ("/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
        env = scripts_env(root / "pre", root / "post")
        outcome = runs.run(["sh", "-c", 'echo "child sees $FROM_NOBODY"'], env, pid1=False,
                           wrapper=(*setpriv, sys.executable, "-m", "lifecycle"), cwd=Path("/"))  # fmt: skip
    finally:
        shutil.rmtree(root)

    assert outcome.code == 0, outcome.stderr
    assert script_lines(outcome, "10-as-nobody") == ["65534"]
    assert outcome.lines == ["child sees yes"]
