"""Redaction: the shapes a secret takes in argv and in a child's stderr, and what must be left alone."""

from __future__ import annotations

import pytest

from lifecycle.redaction import REDACTED, Redactor, known_secrets, redact_arg, redact_argv, redact_text

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


# ---- the pipeline: known values first, then every documented shape (issue #12, item 7) --------------------------

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7pem1body\n"
    "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9wem9ydGhy\n"
    "-----END PRIVATE KEY-----\n"
)
PEM_BODY = [line for line in PEM.splitlines() if not line.startswith("-----")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--password hunter22", f"--password {REDACTED}"),
        ("--password=hunter22 --user spark", f"--password={REDACTED}"),
        ("-Dspark.ssl.keyStorePassword=hunter22", f"-Dspark.ssl.keyStorePassword={REDACTED}"),
        ("-Dspark.ssl.keyStorePassword hunter22", f"-Dspark.ssl.keyStorePassword {REDACTED}"),
        ("GET https://user:s3cr3t@host/path failed", f"GET https://user:{REDACTED}@host/path failed"),
        ("redis://:s3cr3t@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("https://user:p@ss@host/x", f"https://user:{REDACTED}@host/x"),
        ('{"password": "two words \\" and a quote", "user": "x"}', f'{{"password": "{REDACTED}", "user": "x"}}'),
        ("{'password': 'two words', 'user': 'spark'}", f"{{'password': '{REDACTED}', 'user': 'spark'}}"),
        ('"Authorization": "Bearer abc.def"', f'"Authorization": "Bearer {REDACTED}"'),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
        ("X-Auth-Token: Bearer abc.def", f"X-Auth-Token: {REDACTED} {REDACTED}"),
        ("--password 'hunter 22' --user spark", f"--password '{REDACTED}' --user spark"),
    ],
)  # fmt: skip
def test_every_documented_shape_is_redacted(text: str, expected: str) -> None:
    """Each shape README's "Secrets" lists should lose its value, and only its value."""
    assert redact_text(text) == expected


def test_json_private_key_with_escaped_newlines_is_redacted_to_its_closing_quote() -> None:
    """A service-account JSON `"private_key"` value (a PEM with `\\n` escapes and spaces) should go whole."""
    line = '{"type": "service_account", "private_key": "' + PEM.replace("\n", "\\n") + '", "client_id": "42"}'
    shown = redact_text(line)
    assert shown == f'{{"type": "service_account", "private_key": "{REDACTED}", "client_id": "42"}}'


def test_pem_block_spanning_lines_is_redacted_whole_and_the_lines_around_it_kept() -> None:
    """A private-key block in multi-line text should lose its body, markers and neighbouring lines kept."""
    text = "loading key\n" + PEM + "done\n"
    shown = redact_text(text)
    assert shown == f"loading key\n-----BEGIN PRIVATE KEY-----{REDACTED}-----END PRIVATE KEY-----\ndone\n"
    assert redact_text("x\n-----BEGIN RSA PRIVATE KEY-----\nAAAA\n") == f"x\n-----BEGIN RSA PRIVATE KEY-----{REDACTED}"
    assert redact_text("AAAA\nBBBB\n-----END EC PRIVATE KEY-----\nok") == f"{REDACTED}-----END EC PRIVATE KEY-----\nok"


def test_a_known_value_goes_before_a_shape_could_cut_it_in_half() -> None:
    """`token: abc def` with the secret value `abc def`: the colon shape alone would take `abc` and leave `def`."""
    shown = redact_text("token: abc def, then more", ["abc def"])
    assert shown == f"token: {REDACTED}, then more"
    assert "def" not in shown.replace("then more", "")


def test_a_multi_line_known_value_is_found_line_by_line() -> None:
    """A PEM private key held by a secret variable should be redacted when a child prints it line by line."""
    known = known_secrets({"TLS_PRIVATE_KEY": PEM, "HOME": "/root"})
    for line in PEM.splitlines():
        shown = redact_text("  " + line + "  ", known)
        assert not any(body in shown for body in PEM_BODY), shown
    assert redact_text(PEM_BODY[0], known) == REDACTED
    assert redact_text("-----BEGIN CERTIFICATE-----", known) == "-----BEGIN CERTIFICATE-----"  # markers are not secret


def test_redacting_twice_changes_nothing_more() -> None:
    """A redacted argv shown inside a log line (then redacted as text) should keep the words after it."""
    label = redact_arg("--password=hunter22")
    assert label == f"--password={REDACTED}"
    assert redact_text(f"{label} exited with code 3") == f"{label} exited with code 3"
    assert redact_text(f"running './{label}' as given") == f"running './{label}' as given"
    for text in ["password: a b", "--password x y", "https://u:p@h/", "Bearer x y", "a\n" + PEM, '{"token": "x"}']:
        once = redact_text(text)
        assert redact_text(once) == once


def test_redactor_binds_known_values_once_and_serves_text_arg_and_argv() -> None:
    """Redactor(known): `.arg` takes a `key=value` value to the argument's end, `.text` to the line's end."""
    redactor = Redactor(["s3cr3t-value-xyz"])
    assert redactor.arg("--conf=a\nb") == "--conf=a\nb"
    assert redactor.arg("spark.password=a\nb") == f"spark.password={REDACTED}"
    assert redactor.text("spark.password=a\nb") == f"spark.password={REDACTED}\nb"
    assert redactor.argv(["cmd", "--token", "t0k3n", "s3cr3t-value-xyz"]) == ["cmd", "--token", REDACTED, REDACTED]


@pytest.mark.parametrize(
    "line",
    ["https://host:8080/path", "postgres://db/spark?user=spark", "-----BEGIN CERTIFICATE-----", "Bearer", "x: y"],
)
def test_shapes_without_a_secret_are_left_alone(line: str) -> None:
    """A URL without userinfo, a certificate marker, a bare scheme word: nothing to redact."""
    assert redact_text(line) == line


@pytest.mark.timeout(60)  # a hang guard: each of these would be quadratic with a naive pattern
@pytest.mark.parametrize(
    "text",
    [
        '{"password": "' + '\\"' * 50_000,  # JSON value with escapes, never closed
        "'token': '" + "a" * 100_000,
        "https://u:" + "a" * 100_000,  # userinfo without an @
        "://a:" * 30_000,
        "a" * 100_000 + "://",
        "-----BEGIN " + "A " * 50_000,  # a marker that never ends
        "-----BEGIN PRIVATE KEY-----" * 4_000,
        "-----END PRIVATE KEY-----" * 4_000,
        "Authorization: " * 7_000,
        "Bearer " * 15_000,
        "password: " * 10_000,
        "password=\n" * 10_000,
        "--password " * 10_000,
    ],
    ids=["json-escapes", "quoted-open", "url-no-at", "url-many", "url-scheme-run", "pem-run", "pem-begins",
         "pem-ends", "authorization", "bearer", "colon", "equals-lines", "option"],
)  # fmt: skip
def test_every_shape_is_linear_on_long_inputs(text: str) -> None:
    """A 100,000-character input should be redacted in linear time whatever shape it imitates."""
    known = ["a" * 50_000 + "\n" + "b" * 50_000]
    assert redact_text(text, known) and redact_argv([text, text], known) and redact_arg(text, known)
