"""LIFECYCLE_ENV_FILE's format (lifecycle/launch/exports.py): what a pre-launch script's lines export, and the one
line each bad line gives, which names the script and the line number and never shows a value."""

from __future__ import annotations

import os

import pytest

from lifecycle import knobs, scripts
from lifecycle.launch import exports

WHERE = "LIFECYCLE_ENV_FILE of pre-launch script 10-x.sh,"


def parse(text: str | bytes) -> tuple[list[tuple[str, str]], list[str]]:
    return exports.parse(text.encode() if isinstance(text, str) else text, WHERE)


def test_name_equals_value_keeps_everything_after_the_first_equals_sign() -> None:
    """A value should be everything after the first `=`, with further `=`, spaces and quotes kept as they are."""
    found, problems = parse('A=b=c d\nB=  spaced  \nC="quoted"\nD=\n')
    assert problems == []
    assert found == [("A", "b=c d"), ("B", "  spaced  "), ("C", '"quoted"'), ("D", "")]


def test_heredoc_gives_a_multi_line_value_without_its_last_newline() -> None:
    """NAME<<DELIM should take the lines up to a line that is exactly DELIM, joined with newlines."""
    found, problems = parse("PEM<<EOF\n-----BEGIN X-----\nab=cd\n\n  EOF\nEOF\nAFTER=1\n")
    assert problems == []
    assert found == [("PEM", "-----BEGIN X-----\nab=cd\n\n  EOF"), ("AFTER", "1")]


def test_crlf_line_ends_are_line_ends_in_plain_and_multi_line_values() -> None:
    """A file written with CRLF line ends should give the same values as with LF: no `\\r` at a value's end."""
    found, problems = parse("TOKEN=abc\r\nPEM<<EOF\r\nline 1\r\nline 2\r\nEOF\r\nINNER=a\rb\r\n")
    assert problems == []
    assert found == [("TOKEN", "abc"), ("PEM", "line 1\nline 2"), ("INNER", "a\rb")]


def test_an_empty_heredoc_is_an_empty_value() -> None:
    """A delimiter right after the NAME<<DELIM line should give an empty value."""
    assert parse("E<<END\nEND\n") == ([("E", "")], [])


def test_comments_blank_lines_and_a_missing_last_newline_are_fine() -> None:
    """`#` lines and empty lines should be skipped, and a last line without its newline read."""
    assert parse("# a comment\n\nA=1\n#B=2\nC=3") == ([("A", "1"), ("C", "3")], [])


def test_later_entries_for_a_name_win_in_order() -> None:
    """Entries should come back in file order, so applying them in order lets the last one win."""
    assert parse("A=1\nA=2\n")[0] == [("A", "1"), ("A", "2")]


def test_bytes_that_are_not_utf8_are_kept_as_the_environment_keeps_them() -> None:
    """A value that is not UTF-8 should be kept byte for byte (surrogate escapes), as os.environ holds it."""
    ((name, value),), _ = parse(b"RAW=\xff\xfe\n")
    assert name == "RAW" and value.encode("utf-8", "surrogateescape") == b"\xff\xfe"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("just-a-value-s3cr3t\n", "line 1: expected NAME=value or NAME<<DELIMITER (line not shown)"),
        ("A=1\nbad-name=s3cr3t\n", "line 2: the text before '=' is not a variable name"),
        ("1ABC=s3cr3t\n", "line 1: the text before '=' is not a variable name"),
        ("=s3cr3t\n", "line 1: the text before '=' is not a variable name"),
        ("X<<EOF\ns3cr3t\n", "line 1: a multi-line value is opened here (NAME<<DELIMITER) but no later line"),
        ("TOKEN<<EOF\ns3cr3t\n", "line 1: a multi-line value is opened here (NAME<<DELIMITER) but no later line"),
        ("A=s3cr3t\x00\n", "line 1: the value of A contains a NUL byte"),
        ("MY_PASSWORD=s3cr3t\x00\n", "line 1: the value of a secret-named variable contains a NUL byte"),
    ],
    ids=["no-equals", "bad-name", "leading-digit", "empty-name", "open-heredoc", "open-secret-heredoc", "nul",
         "nul-secret"],
)  # fmt: skip
def test_a_bad_line_names_its_number_and_never_the_value(text: str, problem: str) -> None:
    """Each bad line should give one problem naming the script and line number, never the value or a secret name."""
    _, problems = parse(text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE} {problem}")
    assert "s3cr3t" not in problems[0]
    assert "PASSWORD" not in problems[0] and "TOKEN<<" not in problems[0]


@pytest.mark.parametrize("name", knobs.BEFORE_SCRIPTS)
def test_knobs_read_before_the_scripts_cannot_be_exported(name: str) -> None:
    """A knob lifecycle reads before the scripts run should be refused, saying to set it in the pod."""
    found, problems = parse(f"{name}=1\n")
    assert found == []
    assert problems == [f"{WHERE} line 1: {name} cannot be set by a pre-launch script: lifecycle reads it before the "
                        "scripts run (set it in the pod's environment)"]  # fmt: skip


@pytest.mark.parametrize("name", scripts.SCRIPT_VARIABLES)
def test_the_variables_lifecycle_gives_scripts_cannot_be_exported(name: str) -> None:
    """LIFECYCLE_ENV_FILE and the other variables lifecycle sets for its scripts should be refused."""
    assert parse(f"{name}=x\n")[1] == [f"{WHERE} line 1: {name} is set by lifecycle for its scripts and cannot be "
                                       "exported"]  # fmt: skip


def test_other_knobs_may_be_exported() -> None:
    """Knobs read after the scripts (validated with every other setting) should be accepted."""
    text = "LIFECYCLE_EXIT_REMAP=3:0\nLIFECYCLE_POST_EXIT_DIR=/x\nLIFECYCLE_DECOMMISSION_TIMEOUT=20s\n"
    assert [name for name, _ in parse(text)[0]] == ["LIFECYCLE_EXIT_REMAP", "LIFECYCLE_POST_EXIT_DIR",
                                                    "LIFECYCLE_DECOMMISSION_TIMEOUT"]  # fmt: skip


def test_describe_leaves_secret_looking_names_out_and_counts_them() -> None:
    """The log line's names should leave out every secret-looking name (counted once each) and repeat none."""
    found = [("A", "1"), ("DB_PASSWORD", "x"), ("A", "2"), ("MyToken", "y"), ("DB_PASSWORD", "z"), ("B", "")]
    assert exports.describe(found) == (["A", "B"], 2)


def test_a_value_written_without_its_name_is_never_shown_even_when_it_holds_double_angles() -> None:
    """A password with `<<` written alone reads as an unclosed NAME<<DELIMITER: neither part should be shown."""
    _, problems = parse("Pa<<w0rd-s3cr3t\n")
    assert len(problems) == 1
    assert "Pa" not in problems[0].split(",", 1)[1] and "s3cr3t" not in problems[0] and "w0rd" not in problems[0]


def test_at_most_ten_problems_are_listed_and_the_rest_counted() -> None:
    """A file of many bad lines should give its first ten problems and one line counting the others."""
    _, problems = parse("x\n" * 1000)
    assert problems == [f"{WHERE} line {n}: expected NAME=value or NAME<<DELIMITER (line not shown)"
                        for n in range(1, 11)] + [f"{WHERE} 990 more bad line(s) not shown (the first 10 are)"]


def test_a_value_longer_than_execve_takes_is_a_bad_line_naming_the_variable() -> None:
    """NAME=value up to 32 pages (execve's MAX_ARG_STRLEN, NUL included) should be exported; one byte more should be
    a bad line naming the variable (a secret-looking one not even by name), never the value."""
    limit = 32 * os.sysconf("SC_PAGE_SIZE")
    fits = "a" * (limit - len("BIG=") - 1)
    assert parse(f"BIG={fits}\n") == ([("BIG", fits)], [])
    _, problems = parse(f"BIG={fits}a\nMY_TOKEN={fits}\n")
    assert problems == [f"{WHERE} line 1: the value of BIG is too long: with its name it is {limit + 1} bytes, more "
                        f"than execve(2) takes for one environment variable ({limit}, MAX_ARG_STRLEN)",
                        f"{WHERE} line 2: the value of a secret-named variable is too long: with its name it is "
                        f"{limit + 5} bytes, more than execve(2) takes for one environment variable ({limit}, "
                        "MAX_ARG_STRLEN)"]  # fmt: skip
