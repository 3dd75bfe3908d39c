"""What a pre-launch script exports through LIFECYCLE_ENV_FILE: its lines parsed and checked (pure).

The format, one entry a line, applied in order (a later entry for the same name wins):

    NAME=value        the value is everything after the first `=` up to the end of the line: `=`, spaces and
                      quotes are kept as they are (no shell quoting: `A="x"` sets A to `"x"` with the quotes)
    NAME<<DELIMITER   the lines that follow, up to a line that is exactly DELIMITER, joined with newlines
                      (no newline after the last); GitHub Actions' GITHUB_ENV uses the same form
    # comment         lines starting with `#`, and empty lines, are skipped

NAME is letters, digits and `_`, not starting with a digit. Refused: the knobs lifecycle reads before the scripts
run (knobs.BEFORE_SCRIPTS: they would not apply to this run) and the variables lifecycle itself gives scripts
(scripts.SCRIPT_VARIABLES). A value may hold any byte but NUL, and NAME=value at most MAX_ENTRY bytes (128 KiB);
bytes that are not UTF-8 are kept as the environment keeps them. Every problem is one line naming the script and
the line number, never the value (nor a name that looks secret, nor the text of a line that is not an entry: it
may be a value written without its name); at most MAX_PROBLEMS of them, and one line counting the rest.
"""

from __future__ import annotations

import os

from lifecycle import knobs, scripts
from lifecycle.redaction import is_secret_name

LIMIT = 1 << 20  # bytes a script may export; a larger file is refused whole
# execve(2) refuses (E2BIG) an environment holding one string longer than MAX_ARG_STRLEN, 32 pages (linux/binfmts.h):
# the next script, then the child, would fail to start, each blamed for it.
MAX_ENTRY = 32 * os.sysconf("SC_PAGE_SIZE")
MAX_PROBLEMS = 10  # problem lines shown for one file; the rest are counted in one more line
REFUSED = {*knobs.BEFORE_SCRIPTS, *scripts.SCRIPT_VARIABLES}


def is_name(text: str) -> bool:
    """A variable name as a shell would take it: [A-Za-z_][A-Za-z0-9_]*."""
    return bool(text) and text.isascii() and not text[0].isdigit() and text.replace("_", "a").isalnum()


def named(name: str) -> str:
    """A name as a problem line shows it: not at all when it looks secret."""
    return "a secret-named variable" if is_secret_name(name) else name


def parse(data: bytes, where: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(NAME, value) pairs in file order, and one problem line each for what is wrong (`where` starts them). With
    problems the pairs are never applied, only redacted (an unclosed NAME<<DELIMITER's value runs to the end)."""
    # A CRLF line end (a file written on Windows, or by a tool that writes them) is a line end: a `\r` kept at the
    # end of a value would silently break a credential or a path.
    lines = [line.removesuffix("\r") for line in data.decode("utf-8", "surrogateescape").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    found: list[tuple[str, str]] = []
    problems = Problems()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        index += 1
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if equals and is_name(name):
            pass
        elif "<<" in line and is_name(line.partition("<<")[0]) and line.partition("<<")[2].strip():
            name, _, delimiter = line.partition("<<")
            try:
                end = lines.index(delimiter, index)
            except ValueError:
                # Neither the name nor the delimiter is shown: a value written without its name (a password
                # holding `<<`) reads as NAME<<DELIMITER too, and its text must not reach the log.
                problems.append(f"{where} line {number}: a multi-line value is opened here (NAME<<DELIMITER) but no "
                                "later line is its DELIMITER alone (expected NAME<<DELIMITER, the value's lines, then "
                                "DELIMITER alone on a line; line not shown)")  # fmt: skip
                # Never applied (there is a problem), but a secret-looking name's value is redacted all the same.
                found.append((name, "\n".join(lines[index:])))
                break
            value = "\n".join(lines[index:end])
            index = end + 1
        elif equals:
            problems.append(f"{where} line {number}: the text before '=' is not a variable name (expected letters, "
                            "digits and _, not starting with a digit; line not shown)")  # fmt: skip
            continue
        else:
            problems.append(f"{where} line {number}: expected NAME=value or NAME<<DELIMITER (line not shown)")
            continue
        problem = refused(name, value)
        if problem:
            problems.append(f"{where} line {number}: {problem}")
        else:
            found.append((name, value))
    shown = problems[:MAX_PROBLEMS]
    if problems.more:  # half a million bad lines are still a few lines of error (and a few strings in memory)
        shown.append(f"{where} {problems.more} more bad line(s) not shown (the first {MAX_PROBLEMS} are)")
    return found, shown


class Problems(list[str]):
    """The first MAX_PROBLEMS problem lines, and how many more there were."""

    more = 0

    def append(self, problem: str) -> None:
        if len(self) < MAX_PROBLEMS:
            super().append(problem)
        else:
            self.more += 1


def refused(name: str, value: str) -> str:
    """Why a well-formed entry cannot be applied, or ''."""
    if name in knobs.BEFORE_SCRIPTS:
        return (f"{name} cannot be set by a pre-launch script: lifecycle reads it before the scripts run (set it in "
                "the pod's environment)")  # fmt: skip
    if name in scripts.SCRIPT_VARIABLES:
        return f"{name} is set by lifecycle for its scripts and cannot be exported"
    if "\x00" in value:
        return f"the value of {named(name)} contains a NUL byte, which no environment variable can hold"
    size = len(name) + len(value.encode("utf-8", "surrogateescape")) + 2  # NAME=value and its NUL, as execve counts
    if size > MAX_ENTRY:
        return (f"the value of {named(name)} is too long: with its name it is {size} bytes, more than execve(2) takes "
                f"for one environment variable ({MAX_ENTRY}, MAX_ARG_STRLEN)")  # fmt: skip
    return ""


def describe(found: list[tuple[str, str]]) -> tuple[list[str], int]:
    """(the names that may be logged, in order and once each; how many secret-looking names were left out)."""
    shown: list[str] = []
    secret: set[str] = set()
    for name, _ in found:
        if is_secret_name(name):
            secret.add(name)
        elif name not in shown:
            shown.append(name)
    return shown, len(secret)
