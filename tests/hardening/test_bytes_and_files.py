"""Bytes that are not text, names that are not what they seem, and files that are not files (issue #12, 5 and 6).

- A command name that is not UTF-8 (byte 0xff, as a Linux file name may hold) must not cost the exit status
  or the termination message: every string on its way to a log line, an error or the message is escaped
  (`\\xff`), never fatal.
- The termination-log path is written only when it is a regular file with one link: a FIFO there (nobody
  reading) must not hang the exit, a FIFO with a reader gets nothing, and a symlink or a hard link planted there
  (by a less-privileged child, say) must not lead lifecycle, running as root, to truncate another file.
- `SPARK_JAVA_OPT_<n>` names are matched exactly: a trailing newline in the name (possible through execve) is
  not a java option, and n may have any number of digits (Python's int() refuses more than 4300; lifecycle
  orders them without it: a plan, never an internal error).

Process tests run lifecycle's console script as PID 1 of a new PID namespace and as a child subreaper (the `pid1`
fixture), with tests/helpers/supervised.py.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from lifecycle import termination
from lifecycle.launch.settings import SparkEnv
from tests.helpers.executor import SCHEDULER_ENV
from tests.helpers.inputs import SetEnv
from tests.helpers.recorder import fake_java_home, fake_spark_home
from tests.helpers.supervised import Runs, env_for, error_lines, no_traceback

pytestmark = pytest.mark.hardening

FAILING = b"#!/bin/sh\necho 'failing on purpose' >&2\nexit 3\n"
EXIT_BOUND = 10.0  # seconds: far above lifecycle's exit (well under 1 s), far below "hung"


# ---- a command name that is not UTF-8 ---------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("run_mode", ["supervise", "exec"])
def test_command_name_that_is_not_utf8_keeps_the_exit_code_and_the_message(
    runs: Runs,
    tmp_path: Path,
    pid1: bool,
    run_mode: str,
) -> None:
    """A command whose file name holds byte 0xff, exiting 3, should make lifecycle exit 3 with no traceback and
    (supervise mode) write a termination message that shows the name with `\\xff`."""
    command = os.fsencode(tmp_path) + b"/cmd-\xff"
    with open(command, "wb") as script:
        script.write(FAILING)
    os.chmod(command, 0o755)
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")

    outcome = runs.run(
        [command], env_for(LIFECYCLE_RUN_MODE=run_mode, LIFECYCLE_TERMINATION_LOG=str(termination_log)), pid1=pid1
    )

    assert outcome.code == 3, outcome.stderr
    no_traceback(outcome.stderr)
    assert error_lines(outcome) == [], outcome.stderr
    assert "cmd-\\xff" in outcome.stderr, outcome.stderr
    if run_mode == "supervise":  # exec mode: lifecycle became the command, which writes no message
        message = termination_log.read_text()
        assert message.startswith("lifecycle: cmd-\\xff exited with code 3\n"), message
        assert "\nexit code: 3\n" in message and "failing on purpose" in message


@pytest.mark.integration
@pytest.mark.parametrize("run_mode", ["supervise", "exec"])
def test_missing_command_name_that_is_not_utf8_exits_127_with_one_line(
    runs: Runs,
    tmp_path: Path,
    pid1: bool,
    run_mode: str,
) -> None:
    """A command that does not exist and whose name holds byte 0xff should give 127, one error line and the
    same line in the termination message, the byte shown as `\\xff`."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    command = os.fsencode(tmp_path) + b"/absent-\xff"

    outcome = runs.run(
        [command], env_for(LIFECYCLE_RUN_MODE=run_mode, LIFECYCLE_TERMINATION_LOG=str(termination_log)), pid1=pid1
    )

    assert outcome.code == 127, outcome.stderr
    no_traceback(outcome.stderr)
    error = f"cannot execute {tmp_path}/absent-\\xff: {os.strerror(2)}"
    assert error_lines(outcome) == [f"error: {error}"], outcome.stderr
    message = termination_log.read_text()
    assert message.startswith(f"lifecycle: {error}\n") and "\nexit code: 127\n" in message, message


def test_compose_never_raises_and_counts_the_limit_in_utf8_bytes() -> None:
    """compose should escape surrogates (undecodable bytes) in the reason and the tail, and cut the tail so that
    the UTF-8 encoding, not the character count, stays within 4096 bytes."""
    tail = ["bad byte \udcff here", *["é€" * 300 for _ in range(10)], "last line"]

    message = termination.compose("terminated", 3, None, "cmd-\udcff exited with code 3", tail, known=())

    assert message.startswith("lifecycle: cmd-\\xff exited with code 3\n")
    assert len(message.encode("utf-8")) <= termination.MESSAGE_LIMIT
    assert message.endswith("last line\n") and "bad byte" not in message  # the oldest lines went first
    assert termination.compose("terminated", 70, None, "lone \ud800 surrogate", [], known=()).startswith(
        "lifecycle: lone \\ud800 surrogate\n"
    )


def test_stderr_tail_shows_bytes_that_are_not_utf8_escaped_and_drops_the_line_the_limit_cut() -> None:
    """The tail keeps a child's undecodable bytes as `\\xNN` (not `?`), and when the byte limit falls inside a line,
    that line's visible end (which may be the rest of a `password=` whose key was cut off) is dropped."""
    tail = termination.StderrTail()
    tail.feed(b"x" * (termination.TAIL_BYTES - 10) + b" password=hunter2xyz and more\n")
    tail.feed(b"raw \xff byte\n")
    lines = tail.lines()
    assert lines == ["raw \udcff byte"]
    message = termination.compose("terminated", 1, None, "c exited with code 1", lines, known=())
    assert "raw \\xff byte" in message and "hunter2xyz" not in message


# ---- the termination-log path -----------------------------------------------------------------------------


def plant(kind: str, path: Path, other: Path) -> int | None:
    """Put a `kind` at path (`other` is a file someone else owns); return a FIFO reader's fd, if any."""
    other.write_text("precious\n")
    if kind == "regular":
        path.write_text("")
    elif kind == "symlink":
        path.symlink_to(other)
    elif kind == "hard-link":
        os.link(other, path)
    else:
        os.mkfifo(path)
        if kind == "fifo-with-reader":
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    return None


def unread(reader: int) -> bytes:
    """What a FIFO's reader can read now: b"" at end of file (a writer came and went) or when nothing waits."""
    try:
        return os.read(reader, 4096)
    except BlockingIOError:  # no writer has written (ok: that is what is checked)
        return b""


KINDS = ["regular", "fifo-no-reader", "fifo-with-reader", "symlink", "hard-link"]


@pytest.mark.parametrize("kind", KINDS)
def test_write_only_writes_a_regular_file_and_never_blocks(tmp_path: Path, kind: str) -> None:
    """termination.write and usable: True only for a regular file with one link; anything else at once False."""
    path, other = tmp_path / "termination-log", tmp_path / "other"
    reader = plant(kind, path, other)
    try:
        started = time.monotonic()
        written = termination.write(str(path), "message\n")
        assert time.monotonic() - started < 1.0
        assert written is termination.usable(str(path)) is (kind == "regular")
        assert other.read_text() == "precious\n"
        if kind == "regular":
            assert path.read_text() == "message\n"
        if reader is not None:
            assert unread(reader) == b""
    finally:
        if reader is not None:
            os.close(reader)


@pytest.mark.integration
@pytest.mark.parametrize("kind", KINDS)
def test_termination_log_that_is_not_a_regular_file_is_left_alone_and_the_exit_is_not_delayed(
    runs: Runs,
    tmp_path: Path,
    pid1: bool,
    kind: str,
) -> None:
    """lifecycle should exit at once with the child's code whatever is at the termination-log path: a FIFO nobody
    reads (it used to hang the exit in open), a FIFO with a reader (gets nothing), a symlink or a hard link to
    another file (that file is not truncated). A regular file gets the message."""
    path, other = tmp_path / "termination-log", tmp_path / "other"
    reader = plant(kind, path, other)
    try:
        env = env_for(LIFECYCLE_TERMINATION_LOG=str(path), LIFECYCLE_LOG_FORMAT="json")
        started = time.monotonic()
        outcome = runs.start(["sh", "-c", "echo 'failing on purpose' >&2; exit 3"], env, pid1=pid1).finish(
            timeout=EXIT_BOUND
        )
        assert time.monotonic() - started < EXIT_BOUND

        assert outcome.code == 3, outcome.stderr
        no_traceback(outcome.stderr)
        records = [json.loads(line) for line in outcome.stderr.splitlines() if line.startswith("{")]
        [ended] = [record for record in records if record["event"] == "terminated"]
        assert ended["termination_log"] is (kind == "regular")
        assert other.read_text() == "precious\n"
        if kind == "regular":
            assert "\nexit code: 3\n" in path.read_text()
            assert "failing on purpose" in path.read_text()
        elif kind == "symlink":
            assert path.is_symlink()
        elif kind == "hard-link":
            assert path.stat().st_nlink == 2
        else:
            assert stat.S_ISFIFO(path.stat().st_mode)
        if reader is not None:
            assert unread(reader) == b""
    finally:
        if reader is not None:
            os.close(reader)


# ---- SPARK_JAVA_OPT_<n> names -----------------------------------------------------------------------------

HUGE = "7" * 5000  # Python 3.11's int() refuses more than 4300 digits (ValueError: an internal error, 70, before)
ORDERED = {  # name suffix -> value, in the order the JVM must get them: numeric, ties by name
    "2": "-Dorder=2",
    "0010": "-Dorder=0010",
    "10": "-Dorder=10",
    "9999999999999999999999": "-Dorder=22-digits",
    HUGE: "-Dorder=5000-digits",
}


def test_java_options_are_ordered_numerically_whatever_their_number_of_digits(set_env: SetEnv) -> None:
    """Numeric order (10 after 2), ties by name (0010 before 10), and numbers far beyond a machine integer."""
    set_env({f"SPARK_JAVA_OPT_{n}": value for n, value in reversed(ORDERED.items())})
    assert [value for _, value in SparkEnv().java_opts] == list(ORDERED.values())


def test_a_name_with_a_trailing_newline_is_not_a_java_option(set_env: SetEnv) -> None:
    """`SPARK_JAVA_OPT_1\\n` (a name execve allows) should not match: `$` would match before the newline."""
    set_env({"SPARK_JAVA_OPT_1\n": "-Dnewline=1", "SPARK_JAVA_OPT_0": "-Dkept=0", "SPARK_JAVA_OPT_\n": "-Dx=1"})
    assert SparkEnv().java_opts == (("SPARK_JAVA_OPT_0", "-Dkept=0"),)


@pytest.mark.integration
def test_dry_run_orders_huge_numbers_and_ignores_a_name_with_a_newline(runs: Runs, tmp_path: Path) -> None:
    """Through the console script, with the names given to execve as bytes: the plan holds the options in order,
    including the 5000-digit one (a plan, exit 0: never 70), and not the option whose name ends in a newline."""
    env: dict[str | bytes, str | bytes] = {
        **env_for(SPARK_HOME=str(fake_spark_home(tmp_path)), JAVA_HOME=str(fake_java_home(tmp_path))),
        **SCHEDULER_ENV,
        **{f"SPARK_JAVA_OPT_{n}": value for n, value in reversed(ORDERED.items())},
        b"SPARK_JAVA_OPT_1\n": b"-Dnewline=1",
    }

    outcome = runs.run(["--dry-run", "--json", "executor"], env, pid1=False)  # type: ignore[arg-type]

    assert outcome.code == 0, outcome.stderr
    no_traceback(outcome.stderr)
    argv = json.loads("\n".join(outcome.lines))["argv"]
    assert [arg for arg in argv if arg.startswith(("-Dorder=", "-Dnewline="))] == list(ORDERED.values())
