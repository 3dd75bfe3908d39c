"""10,000 generated environments and command lines through `lifecycle.launch.cli.main`, in this process.

Each example runs the console script's own entry point, `main(argv)`, with the environment patched to a generated
one. Nothing is ever executed: one test always puts `--dry-run` first; the other generates only command lines
that parse_args refuses (checked before main is called) and makes `signals.block_all`, the first step of a real
launch, fail the test if it is ever reached. What an operator would see is captured per example:

* sys.stdout is a strict UTF-8 text stream, as Python opens it under a UTF-8 locale such as the Spark image's
  LANG=en_US.UTF-8 (not C.UTF-8, where CPython uses surrogateescape);
* sys.stderr is a UTF-8 stream with backslashreplace, as CPython always opens it (print_error writes there);
* file descriptors 1 and 2 go to temporary files, because lifecycle's log writes os.write(2, …) directly, which
  neither redirect_stderr nor pytest's capture per test can take apart per example.

Checked for every example: no exception escapes main, the exit code is one the README documents for this path,
every stderr line is lifecycle's (`lifecycle: …`, a JSON object with "logger": "lifecycle", or the usage text),
a failure says why in error lines (one, or one per variable for 78), stdout is the plan (or help) only on success,
no secret value appears anywhere, and main leaves nothing behind: environment, signal mask and handlers, open file
descriptors, threads and the working directory are as they were. The profile (conftest.py) is derandomized.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import re
import signal
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import LifecycleError
from lifecycle.launch import cli
from tests.helpers.inputs import EXECUTOR_ENV, HARDENING_PROFILE, KNOB_NAMES, SPARK_NAMES
from tests.helpers.inputs import VALUES as PROPERTY_VALUES

# In-process, but marked integration all the same: 20,000 runs of the console script's entry point take about
# a minute and a half, and `pytest -m "not integration"` must stay the fast loop (STYLE rule 20).
pytestmark = [pytest.mark.integration, pytest.mark.hardening, pytest.mark.timeout(600)]

PROFILE = settings.get_profile(HARDENING_PROFILE)
# Restated, not imported from lifecycle.redaction: names with SECRET, PASSWORD, TOKEN or CREDENTIAL in any case.
SECRET_NAMES = [
    "_SPARK_AUTH_SECRET", "HADOOP_TOKEN_FILE_LOCATION", "DB_PASSWORD", "db_password", "MyServiceToken",
    "AWS_SECRET_ACCESS_KEY", "Gcp_Credential_Json",
]  # fmt: skip
PLAIN_NAMES = [name for name in [*SPARK_NAMES, *KNOB_NAMES] if name not in SECRET_NAMES]
KNOWN_NAMES = {*PLAIN_NAMES, *SECRET_NAMES}
SECRET_MARK = "zq9-secret-"  # every generated secret value starts with it: appearing anywhere is a leak
USAGE_LINES = set(cli.USAGE.splitlines())
DRY_RUN_CODES = {0, 64, 78, 127}  # README: plan printed, bad option, configuration error, java not found
TEXT_ERROR = re.compile(r"^lifecycle: (\[ *[0-9.]+s\] )?error: (.*)$")

NASTY = st.sampled_from(
    ["", " ", "\t", "\n", "\r\n", " \n ", "a\nb", "=", "a=b", "==", "x=y=z", "-Dx=1", "0", "00", "-1", "+1", "1.5",
     "99999999999999999999", "-99999999999999999999", "1e309", "inf", "-inf", "nan", "0x1f", "1_000", "256", "256:0",
     "1:256", "143:0,,", ",", ":", "::", "a:b:", "/", "//", ".", "..", "/opt/spark", "/nonexistent", "relative/dir",
     "é", "日本語", "\u2028", "\u202e", "\u200b", "🙂", "a b", "  padded  ", "'", '"', "\\", "$HOME", "`id`", "%s",
     "{}", "[1]", "null", "true", "TRUE", "PWR", "SIGPWR", "sigterm", "KILL", "0", "64", "65", "100ms", "2m", "-5s",
     "1e3", "30 s", "\x7f", "\x1b[31m"]
)  # fmt: skip
NOT_UTF8 = st.binary(max_size=12).map(lambda raw: raw.replace(b"\0", b"").decode("utf-8", "surrogateescape"))
VALUES = st.one_of(
    PROPERTY_VALUES,  # tests/test_properties.py: arbitrary text and values near the validators' edges
    NASTY,
    NOT_UTF8,  # the kernel hands over bytes: a value need not be UTF-8
    st.integers(min_value=1_000, max_value=100_000).map(lambda size: "x" * size),
    st.integers(min_value=100, max_value=5_000).map(lambda count: ":/opt/jars/*" * count),
    st.integers().map(str),
    st.tuples(NASTY, NASTY).map("=".join),
)
SECRETS = st.dictionaries(
    st.sampled_from(SECRET_NAMES), st.tuples(st.integers(0, 99), VALUES).map(lambda p: f"{SECRET_MARK}{p[0]}-{p[1]}")
)
PATHS = st.sampled_from(["/usr/bin:/bin", "/nonexistent", ""])


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    """A PATH, half the time a valid executor environment, then up to 12 plain variables and some secrets."""
    env = {"PATH": draw(PATHS)}
    if draw(st.booleans()):
        env.update(EXECUTOR_ENV)
    env.update(draw(st.dictionaries(st.sampled_from(PLAIN_NAMES), VALUES, max_size=12)))
    env.update(draw(SECRETS))
    return env


def log_environments() -> st.SearchStrategy[dict[str, str]]:
    """What a refused command line reads of the environment: the log format and level (cli.early_log), and a few
    other variables, which must change nothing."""
    log = st.fixed_dictionaries(
        {},
        optional={
            "LIFECYCLE_LOG_FORMAT": st.one_of(st.sampled_from(["json", " JSON ", "text", "xml"]), VALUES),
            "LIFECYCLE_LOG_LEVEL": st.one_of(st.sampled_from(["debug", "error", " Warning", "loud"]), VALUES),
        },
    )
    others = st.dictionaries(st.sampled_from(PLAIN_NAMES), VALUES, max_size=3)
    return st.tuples(others, log).map(lambda pair: {**pair[0], **pair[1]})


ARGS = st.one_of(PROPERTY_VALUES, NASTY, NOT_UTF8)
OPTIONS = st.sampled_from(
    ["--json", "--dry-run", "--", "--help", "-h", "--version", "--bogus", "-", "--dry-run=1", "--JSON", "-x", "---"]
)
MODES = st.one_of(st.sampled_from(["executor", "driver", "sh", "true", "Executor", "executor ", " driver"]), ARGS)


@st.composite
def dry_run_argv(draw: st.DrawFn) -> list[str]:
    """`--dry-run`, then up to three options (valid or not), a mode or command, and up to four arguments."""
    return ["--dry-run", *draw(st.lists(OPTIONS, max_size=3)), draw(MODES), *draw(st.lists(ARGS, max_size=4))]


NOT_A_DASH = ARGS.filter(lambda arg: not arg.startswith("-"))
UNKNOWN_OPTION = st.one_of(
    st.sampled_from(["--bogus", "-", "---", "-x", "--JSON", "--dry-run=1", "--help=1", "-dry-run", "--password=x"]),
    ARGS.map(lambda arg: "-" + arg).filter(
        lambda arg: arg not in ("--", "-h", "--help", "--version", "--dry-run", "--json")
    ),
)


@st.composite
def refused_argv(draw: st.DrawFn) -> list[str]:
    """Command lines without --dry-run that parse_args must refuse (64): an unknown option before the mode, no mode
    at all, --json without --dry-run, arguments after executor."""
    rest = draw(st.lists(ARGS, max_size=3))
    kind = draw(st.sampled_from(["unknown-option", "no-mode", "json-alone", "executor-arguments"]))
    if kind == "unknown-option":
        return [*draw(st.lists(st.just("--json"), max_size=1)), draw(UNKNOWN_OPTION), *rest]
    if kind == "no-mode":
        options = draw(st.lists(st.sampled_from(["--json", "--dry-run"]), max_size=3))
        return [*options, *draw(st.sampled_from([[], ["--"]]))]
    if kind == "json-alone":
        return ["--json", draw(NOT_A_DASH), *rest]
    return ["executor", draw(ARGS), *rest]


# ---- one in-process run, captured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    code: int
    stdout: str  # sys.stdout and file descriptor 1
    stderr: str  # sys.stderr and file descriptor 2
    json_log: bool


class Capture:
    """Per-example capture of sys.stdout/sys.stderr and of file descriptors 1 and 2 (two reusable temporary files)."""

    def __init__(self, fd1: IO[bytes], fd2: IO[bytes]) -> None:
        self.files = {1: fd1, 2: fd2}

    def run(self, argv: list[str], env: dict[str, str]) -> Captured:
        out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
        out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", newline="\n")
        err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", newline="\n")
        saved = {}
        for fd, handle in self.files.items():
            handle.seek(0)
            handle.truncate()
            saved[fd] = os.dup(fd)
            os.dup2(handle.fileno(), fd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(argv)
            out.flush()
            err.flush()
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        texts = {}
        for fd, handle in self.files.items():
            handle.seek(0)
            texts[fd] = handle.read().decode("utf-8", "backslashreplace")
        stdout = out_bytes.getvalue().decode() + texts[1]
        stderr = err_bytes.getvalue().decode() + texts[2]
        json_log = env.get("LIFECYCLE_LOG_FORMAT", "text").strip().lower() == "json"  # as cli.early_log decides
        return Captured(code, stdout, stderr, json_log)


@dataclass(frozen=True)
class State:
    """What main must leave as it found it."""

    mask: frozenset[int]
    handlers: tuple[object, ...]
    fds: frozenset[str]
    threads: int
    cwd: str

    @classmethod
    def now(cls) -> State:
        signals = sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP})
        return cls(
            frozenset(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            tuple(signal.getsignal(s) for s in signals),
            frozenset(os.listdir("/proc/self/fd")),
            threading.active_count(),
            os.getcwd(),
        )


@pytest.fixture
def capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """A Capture, run from an empty working directory (relative paths in generated values point nowhere), with
    `block_all` (the first step of a real launch: it blocks signals, then lifecycle execs) turned into a failure."""
    monkeypatch.chdir(tmp_path)
    # transitions.core logs 14 WARNINGs per machine built ("Skip binding of 'may_…' … model override policy") to
    # its own NullHandler; a real run configures no root handler, so they are never seen. pytest's logging plugin
    # would keep them all (it also hooks non-propagating loggers): disable that logger, as good as unseen.
    monkeypatch.setattr(logging.getLogger("transitions.core"), "disabled", True)
    refuse = AssertionError("a generated command line reached a real launch")
    with (
        mock.patch("lifecycle.signals.block_all", side_effect=refuse),
        tempfile.TemporaryFile() as fd1,
        tempfile.TemporaryFile() as fd2,
    ):
        yield Capture(fd1, fd2)


def fd_target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed meanwhile
        return "(closed)"


def run_isolated(capture: Capture, argv: list[str], env: dict[str, str]) -> Captured:
    """main(argv) with exactly `env` as the environment; fails if it changes the process state."""
    # Earlier tests in this process (the container harness's Popen objects, say) may leave cyclic garbage that
    # holds descriptors: collected during main, it would close them and look like main's doing. So no automatic
    # collection runs between the two snapshots.
    gc.disable()
    try:
        before = State.now()
        with mock.patch.dict(os.environ, env, clear=True), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            captured = capture.run(argv, env)
            assert dict(os.environ) == env, "main changed os.environ"
        after = State.now()
    finally:
        gc.enable()
    if after.fds != before.fds and replace(after, fds=before.fds) == before:
        opened = sorted(after.fds - before.fds)
        assert opened, f"main closed descriptors it did not open: {sorted(before.fds - after.fds)}"
        targets = {fd: fd_target(fd) for fd in opened}
        # Threads left by earlier tests in this process (a Spark coordinator's accept loop) may open sockets
        # meanwhile: a dry run never opens a socket, so only those are set aside, and only with such threads.
        others = threading.active_count() > 1 and all(target.startswith("socket:") for target in targets.values())
        assert others, f"main left descriptors open: {targets} (threads: {threading.enumerate()})"
    else:
        assert after == before, "main left process state behind (mask, handlers, fds, threads or cwd)"
    assert [str(w.message) for w in caught] == []  # a real run would print each one on stderr
    return captured


# ---- what an operator sees ----------------------------------------------------------------------------------


def error_messages(captured: Captured) -> list[str]:
    """The messages of lifecycle's error lines; any stderr line that is not lifecycle's fails the test."""
    errors = []
    for line in captured.stderr.split("\n")[:-1] if captured.stderr else []:
        if captured.json_log:
            record = json.loads(line)
            assert isinstance(record, dict) and record["logger"] == "lifecycle", line
            if record["level"] == "error":
                errors.append(str(record["message"]))
            continue
        if line in USAGE_LINES and captured.code == 64:
            continue
        assert line.startswith("lifecycle: "), f"a stderr line that is not lifecycle's: {line!r}"
        match = TEXT_ERROR.match(line)
        if match:
            errors.append(match.group(2))
    assert captured.stderr == "" or captured.stderr.endswith("\n")
    return errors


def check_failure_is_explained(captured: Captured) -> None:
    errors = error_messages(captured)
    if captured.code == 0:
        assert errors == []
    elif captured.code == 78:  # one `VARIABLE: problem` line per problem
        assert errors
        for message in errors:
            name, sep, why = message.partition(": ")
            assert sep and why and name in KNOWN_NAMES, message
    else:
        assert len(errors) == 1, errors


def check_no_secret(captured: Captured, env: dict[str, str]) -> None:
    if any(value.startswith(SECRET_MARK) for value in env.values()):
        assert SECRET_MARK not in captured.stdout
        assert SECRET_MARK not in captured.stderr


# ---- the two properties ---------------------------------------------------------------------------------------


@PROFILE
@given(env=environments(), argv=dry_run_argv())
def test_any_environment_and_dry_run_command_line_gives_a_plan_or_documented_one_line_errors(
    capture: Capture, env: dict[str, str], argv: list[str]
) -> None:
    """For any environment and `--dry-run` command line, lifecycle should print the plan (or help) and exit 0, or
    exit 64, 78 or 127 with error lines of its own: never a traceback, an internal error or a line not its own."""
    captured = run_isolated(capture, argv, env)

    assert captured.code in DRY_RUN_CODES, captured.stderr
    assert "Traceback" not in captured.stderr
    check_failure_is_explained(captured)
    check_no_secret(captured, env)
    if captured.code != 0:
        assert captured.stdout == ""
        return
    asked = cli.parse_args(argv)  # what the command line asked for: help or version text, or a plan
    if isinstance(asked, str):
        assert captured.stdout == asked
    elif asked.json:
        plan = json.loads(captured.stdout)
        assert plan["launched"] is False and plan["mode"] == asked.mode
    else:
        assert captured.stdout.startswith(f"lifecycle dry run: {asked.mode}\n"), captured.stdout


@PROFILE
@given(env=log_environments(), argv=refused_argv())
def test_any_refused_command_line_exits_64_with_one_error_line(
    capture: Capture, env: dict[str, str], argv: list[str]
) -> None:
    """A command line parse_args refuses (an unknown option, no mode, --json alone, executor with arguments) should
    exit 64 with one error line (and the usage text), whatever the environment, and start nothing."""
    with pytest.raises(LifecycleError):  # checked before main: a command line that parses would launch for real
        cli.parse_args(argv)

    captured = run_isolated(capture, argv, env)

    assert captured.code == 64, captured.stderr
    assert "Traceback" not in captured.stderr
    assert len(error_messages(captured)) == 1, captured.stderr
    assert captured.stdout == ""
