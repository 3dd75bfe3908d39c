"""Redaction: the shapes a secret takes in argv and in a child's stderr, and what must be left alone."""

from __future__ import annotations

import pytest

from lifecycle.redaction import REDACTED, known_secrets, redact_arg, redact_argv, redact_text

KNOWN = ("s3cr3t-value-xyz",)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("password: hunter22", f"password: {REDACTED}"),
        ("--password hunter22 --user spark", f"--password {REDACTED} --user spark"),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {REDACTED}"),
        ("retrying with Bearer abcdef123", f"retrying with Bearer {REDACTED}"),
        ("the value is s3cr3t-value-xyz, ok", f"the value is {REDACTED}, ok"),
        ("-Dspark.hadoop.fs.s3a.access.key=AKIA123", f"-Dspark.hadoop.fs.s3a.access.key={REDACTED}"),
        ('{"token": "zzz"}', f'{{"token": "{REDACTED}"}}'),
        ("fs.azure.account.key.acct.dfs=KEY", f"fs.azure.account.key.acct.dfs={REDACTED}"),
        ("failed with secret=abc for user spark", f"failed with secret={REDACTED}"),
    ],
)  # fmt: skip
def test_redact_text_hides_every_shape_of_secret(line: str, expected: str) -> None:
    """A child's stderr line should lose the secret whatever shape it is printed in."""
    assert redact_text(line, KNOWN) == expected


@pytest.mark.parametrize(
    "line",
    ["Basic authentication enabled", "key: value", "normal line: fine", "Exception in thread main", "--user spark"],
)
def test_redact_text_leaves_ordinary_lines_alone(line: str) -> None:
    """Lines with no secret-named key and no known value should be kept as they are."""
    assert redact_text(line, KNOWN) == line


def test_redact_argv_hides_the_value_after_a_secret_option_and_known_values() -> None:
    """`--password v` given as two arguments, `key=v`, and a known value standing alone should all be hidden."""
    argv = ["java", "--password", "hunter", "-cp", "x", "--token=abc", "s3cr3t-value-xyz", "--password", "--next"]
    assert redact_argv(argv, KNOWN) == [
        "java", "--password", REDACTED, "-cp", "x", f"--token={REDACTED}", REDACTED, "--password", "--next",
    ]  # fmt: skip


def test_known_secrets_are_the_secret_named_values_longest_first() -> None:
    """Only secret-named variables count, short values are skipped, and a longer value is replaced first."""
    environ = {"DB_PASSWORD": "abcd", "_SPARK_AUTH_SECRET": "abcdefgh", "API_TOKEN": "xyz", "HOME": "/home/abcdefgh"}
    assert known_secrets(environ) == ("abcdefgh", "abcd")
    assert redact_arg("prefix-abcdefgh", known_secrets(environ)) == f"prefix-{REDACTED}"


@pytest.mark.timeout(60)  # a hang guard, not a speed check: the quadratic version took 75 s per value
@pytest.mark.parametrize("text", ["password" * 10_000, "--token" * 10_000, "x" * 100_000, "-password " * 10_000])
def test_long_values_are_redacted_without_backtracking(text: str) -> None:
    """A 100,000-character value must not make redaction backtrack (a generated environment hung on one)."""
    assert redact_text(text) and redact_argv([text, text]) and redact_arg(text)


def test_known_value_beside_a_key_run_and_a_colon_form_in_one_line() -> None:
    """Several shapes in one line should each be redacted, and the text between them kept."""
    line = "user=spark token: abc123 --password hunter22 then s3cr3t-value-xyz end"
    assert redact_text(line, KNOWN) == f"user=spark token: {REDACTED} --password {REDACTED} then {REDACTED} end"
