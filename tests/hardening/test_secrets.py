"""Secrets never leave lifecycle: every byte of stdout, stderr and the termination message is searched for them.

What lifecycle treats as secret (lifecycle/redaction.py): the value of any variable whose name contains SECRET,
PASSWORD, PASSWD, TOKEN, CREDENTIAL, PRIVATE_KEY, API_KEY or ACCESS_KEY in any case (`_SPARK_AUTH_SECRET`,
`db_password`, `MyServiceToken`), and in an argument the value after `<…secret|password|passwd|token|credential…>=`
(`-Dspark.ssl.keyStorePassword=…`). Each value below is distinctive, so finding it anywhere is a leak.

Runs are real: lifecycle as PID 1 of a new PID namespace (tests/helpers/supervised.py) with the recorder stub as java
and spark-submit. The child's own stderr passes through lifecycle unchanged (as under tini): the JVM's log is the
JVM's. What is checked there is lifecycle's own lines and the termination message, which quotes the child's tail.

Already covered (docs/reliability.md): `_SPARK_AUTH_SECRET` and a password java option in a dry run and a real run
(test_cli.py::test_dry_run_never_prints_secrets, test_real_run_never_prints_secrets), and a secret-named variable
with an invalid value (test_settings.py::test_secret_named_variable_when_invalid_never_shows_its_value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.redaction import REDACTED
from tests.helpers.executor import SCHEDULER_ENV
from tests.helpers.recorder import fake_java_home, fake_spark_home, install, read_record
from tests.helpers.supervised import Runs, env_for, needs_unshare

pytestmark = [pytest.mark.integration, pytest.mark.hardening, pytest.mark.pid1, needs_unshare]

SECRET_VARIABLES = {
    "_SPARK_AUTH_SECRET": "authsecret-5e1f0c27",
    "DB_PASSWORD": "dbpassword-7a2b91d4",
    "db_password_2": "lowerpassword-1c9d8e",
    "MyServiceToken": "mixedtoken-3f8e27b0",
    "AWS_SECRET_ACCESS_KEY": "awssecret-90d4c2aa",
    "Gcp_Credential_Json": "credential-4b7a1399",
    "HADOOP_TOKEN_FILE_LOCATION": "/var/run/tokenfile-8d2e5f61",
}
SECRET_OPTIONS = {  # SPARK_JAVA_OPT_<n> assignments that redact_arg covers
    "SPARK_JAVA_OPT_0": ("-Dspark.ssl.keyStorePassword=", "javaoptpw-6c1e0a95"),
    "SPARK_JAVA_OPT_1": ("-Dspark.authenticate.secret=", "javaoptsecret-2d9f77"),
    "SPARK_JAVA_OPT_2": ("-Dspark.kubernetes.authenticate.oauthToken=", "oauthtoken-a1b2c3d4"),
    "SPARK_JAVA_OPT_3": ("-Dfs.gs.auth.credential=", "gscredential-0e9d8c7b"),
}
SECRET_VALUES = [*SECRET_VARIABLES.values(), *(value for _, value in SECRET_OPTIONS.values())]
EXECUTOR_ENV = {**SCHEDULER_ENV, "SPARK_EXECUTOR_MEMORY": "512m"}


@dataclass(frozen=True)
class Scene:
    """One way to run lifecycle with the secrets in its environment, and the exit code it should end with."""

    argv: list[str]
    variables: dict[str, str]
    code: int


@dataclass(frozen=True)
class Output:
    """Every byte lifecycle wrote, as text: stdout, stderr, the termination message."""

    code: int
    stdout: str
    stderr: str
    termination: str

    def leaks(self, secrets: Sequence[str]) -> dict[str, list[str]]:
        """{where: [secret values found there]} for every channel that holds one."""
        found = {}
        for where, text in (("stdout", self.stdout), ("stderr", self.stderr), ("termination", self.termination)):
            seen = [secret for secret in secrets if secret in text]
            if seen:
                found[where] = seen
        return found


@dataclass(frozen=True)
class Installation:
    """A fake SPARK_HOME and JAVA_HOME (the recorder), a termination-log file and the recorder's file."""

    root: Path
    spark_home: Path
    java_home: Path
    termination_log: Path
    record: Path

    def env(self, **more: str) -> dict[str, str]:
        """env_for's base, the executor's variables, every secret, then `more` (which wins)."""
        options = {name: prefix + value for name, (prefix, value) in SECRET_OPTIONS.items()}
        installed = {
            "SPARK_HOME": str(self.spark_home),
            "JAVA_HOME": str(self.java_home),
            "RECORD_FILE": str(self.record),
            "LIFECYCLE_TERMINATION_LOG": str(self.termination_log),
        }
        return {**env_for(), **installed, **EXECUTOR_ENV, **SECRET_VARIABLES, **options, **more}

    def run(self, runs: Runs, argv: Sequence[str], **more: str) -> Output:
        self.termination_log.write_text("")
        outcome = runs.run(argv, self.env(**more), pid1=True, cwd=self.root)
        return Output(outcome.code, "\n".join(outcome.lines), outcome.stderr, self.termination_log.read_text())


@pytest.fixture
def installation(tmp_path: Path) -> Installation:
    return Installation(
        tmp_path,
        fake_spark_home(tmp_path),
        fake_java_home(tmp_path),
        tmp_path / "termination-log",
        tmp_path / "record.json",
    )


SCENES = {
    "dry-run-text-log-debug": Scene(["--dry-run", "executor"], {"LIFECYCLE_LOG_LEVEL": "debug"}, 0),
    "dry-run-json-log-debug": Scene(
        ["--dry-run", "executor"], {"LIFECYCLE_LOG_LEVEL": "debug", "LIFECYCLE_LOG_FORMAT": "json"}, 0
    ),
    "dry-run-json-plan": Scene(["--dry-run", "--json", "executor"], {"LIFECYCLE_LOG_LEVEL": "debug"}, 0),
    "dry-run-json-plan-json-log": Scene(
        ["--dry-run", "--json", "executor"], {"LIFECYCLE_LOG_LEVEL": "debug", "LIFECYCLE_LOG_FORMAT": "json"}, 0
    ),
    "dry-run-driver-with-secret-conf": Scene(
        ["--dry-run", "driver", "--conf", "spark.ssl.keyPassword=" + SECRET_VARIABLES["DB_PASSWORD"], "app.jar"],
        {"LIFECYCLE_LOG_LEVEL": "debug"},
        0,
    ),
    "run-supervise-text-log-debug": Scene(["executor"], {"LIFECYCLE_LOG_LEVEL": "debug"}, 0),
    "run-supervise-json-log-debug": Scene(
        ["executor"], {"LIFECYCLE_LOG_LEVEL": "debug", "LIFECYCLE_LOG_FORMAT": "json"}, 0
    ),
    "run-exec-json-log-debug": Scene(
        ["executor"],
        {"LIFECYCLE_LOG_LEVEL": "debug", "LIFECYCLE_LOG_FORMAT": "json", "LIFECYCLE_RUN_MODE": "exec"},
        0,
    ),
    "run-child-fails-termination-tail": Scene(
        ["executor"], {"LIFECYCLE_LOG_LEVEL": "debug", "RECORD_STDERR": "dying\n", "RECORD_EXIT": "3"}, 3
    ),
    "bad-value-in-another-variable": Scene(["executor"], {"SPARK_EXECUTOR_MEMORY": "lots"}, 78),
    "bad-value-json-log": Scene(
        ["executor"],
        {"SPARK_EXECUTOR_CORES": "many", "LIFECYCLE_LOG_FORMAT": "json", "LIFECYCLE_LOG_LEVEL": "debug"},
        78,
    ),
    "bad-knob": Scene(["executor"], {"LIFECYCLE_KILL_GRACE": "soon", "LIFECYCLE_LOG_LEVEL": "debug"}, 78),
    "every-knob-bad": Scene(
        ["executor"],
        {"LIFECYCLE_DECOMMISSION_SIGNAL": "NOPE", "LIFECYCLE_EXIT_REMAP": "x", "LIFECYCLE_SIGNAL_GROUP": "maybe"},
        78,
    ),
    "java-missing": Scene(["executor"], {"JAVA_HOME": "/nonexistent-jdk", "LIFECYCLE_LOG_LEVEL": "debug"}, 127),
}


@pytest.mark.parametrize("scene", SCENES.values(), ids=list(SCENES))
def test_secrets_appear_in_no_output(runs: Runs, installation: Installation, scene: Scene) -> None:
    """No secret-named variable's value and no secret java option value should appear in stdout, stderr or the
    termination message: dry runs (text and JSON, both log formats, debug), real runs, and every kind of error."""
    output = installation.run(runs, scene.argv, **scene.variables)

    assert output.code == scene.code, output.stderr
    assert output.leaks(SECRET_VALUES) == {}
    assert "Traceback" not in output.stderr
    if scene.code == 0 and "--dry-run" not in scene.argv:  # the secrets did reach the child, unchanged
        record = read_record(installation.record)
        assert all(record["env"][name] == value for name, value in SECRET_VARIABLES.items())
        assert {prefix + value for prefix, value in SECRET_OPTIONS.values()} <= set(record["argv"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--password=" + SECRET_VARIABLES["DB_PASSWORD"], "executor"],
        ["--dry-run", "--token=" + SECRET_VARIABLES["MyServiceToken"], "executor"],
        ["executor", "--password=" + SECRET_VARIABLES["_SPARK_AUTH_SECRET"]],
    ],
    ids=["option-before-the-mode", "option-after-dry-run", "argument-after-executor"],
)
def test_usage_error_does_not_echo_a_secret_assignment(runs: Runs, installation: Installation, argv: list[str]) -> None:
    """A usage error (64) quoting the offending argument should redact a `password=`/`token=`/`secret=` value as the
    dry run's argv does, not echo it to the container log."""
    output = installation.run(runs, argv)

    assert output.code == 64, output.stderr
    assert output.leaks(SECRET_VALUES) == {}, output.stderr


# The child's last stderr lines go into the termination message; redaction.redact_text rewrites every shape
# below (key=value, key: value, --option value, Authorization/Bearer) and hunts for the known secret values.
FORMS = {
    "--password=": "--password={}",
    "token=": "token={}",
    "java-option-password": "-Djavax.net.ssl.trustStorePassword={}",
    "secret=-in-a-sentence": "failed to log in with secret={} for user spark",
    "credential=": "gcs credential={}",
    "password-colon": "password: {}",
    "password-space": "--password {}",
    "bearer-header": "Authorization: Bearer {}",
    "bare-value": "{}",
    "access-key=": "-Dspark.hadoop.fs.s3a.access.key={}",
}


@pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))
def test_termination_message_redacts_a_secret_the_child_prints(
    runs: Runs, installation: Installation, form: str
) -> None:
    """A failing child that prints a secret to stderr should not have it copied into the termination message, nor
    into lifecycle's own log lines (the child's own line passes through unchanged, as under tini)."""
    secret = SECRET_VARIABLES["DB_PASSWORD"]
    child = install(installation.root / "bin" / "leaky")
    output = installation.run(
        runs, [str(child)], RECORD_STDERR="starting\n" + form.format(secret) + "\ngiving up\n", RECORD_EXIT="1"
    )

    assert output.code == 1, output.stderr
    assert "exit code: 1\n" in output.termination
    assert "giving up" in output.termination  # the tail is there, so the secret's line was considered
    own_lines = [line for line in output.stderr.splitlines() if line.startswith("lifecycle:")]
    assert not [line for line in own_lines if secret in line]
    assert secret not in output.termination, output.termination


DRY_RUN_KEYS = {
    "access-key=": "-Dspark.hadoop.fs.s3a.access.key={}",
    "azure-account-key=": "-Dspark.hadoop.fs.azure.account.key.acct.blob.core.windows.net={}",
}


@pytest.mark.parametrize(
    "option",
    [pytest.param(form, id=name) for name, form in DRY_RUN_KEYS.items()],
)
def test_dry_run_redacts_cloud_storage_keys_in_java_options(
    runs: Runs, installation: Installation, option: str
) -> None:
    """A cloud-storage key passed as a java option should be redacted in the dry run like a password option is."""
    secret = "storagekey-77aa55cc"
    output = installation.run(runs, ["--dry-run", "executor"], SPARK_JAVA_OPT_9=option.format(secret))

    assert output.code == 0, output.stderr
    assert output.leaks([secret]) == {}


# ---- issue #12, item 7: the pass-through command's own argv, secrets no variable holds, multi-line values ------

PASS_THROUGH_SECRET = "hunter2xyz-5b8e1d"  # in the command's own name: no variable holds it, only its shape tells


def failing_script(installation: Installation) -> Path:
    """A command that prints to stderr and exits 3, reachable as `./--password=<secret>` and on PATH by that name."""
    script = installation.root / "bin" / "failing"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\necho 'failing on purpose' >&2\nexit 3\n")
    script.chmod(0o755)
    for where in (installation.root, installation.root / "bin"):
        (where / f"--password={PASS_THROUGH_SECRET}").symlink_to(script)
    return script


PASS_THROUGH = {
    "relative-supervise": (["--", f"./--password={PASS_THROUGH_SECRET}"], {}, 3),
    "on-path-supervise": (["--", f"--password={PASS_THROUGH_SECRET}", "arg"], {"PATH": "{bin}:/usr/bin:/bin"}, 3),
    "relative-exec": (["--", f"./--password={PASS_THROUGH_SECRET}"], {"LIFECYCLE_RUN_MODE": "exec"}, 3),
    "json-log": (["--", f"./--password={PASS_THROUGH_SECRET}"], {"LIFECYCLE_LOG_FORMAT": "json"}, 3),
    "not-found": (["--", f"./missing/--password={PASS_THROUGH_SECRET}"], {}, 127),
    "not-found-exec": (["--", f"./missing/--password={PASS_THROUGH_SECRET}"], {"LIFECYCLE_RUN_MODE": "exec"}, 127),
    "dry-run": (["--dry-run", "--", f"./--password={PASS_THROUGH_SECRET}", "--token", PASS_THROUGH_SECRET], {}, 0),
}


@pytest.mark.parametrize(("argv", "variables", "code"), PASS_THROUGH.values(), ids=list(PASS_THROUGH))
def test_pass_through_command_name_holding_a_secret_is_redacted_everywhere(
    runs: Runs, installation: Installation, argv: list[str], variables: dict[str, str], code: int
) -> None:
    """`lifecycle -- ./--password=<v>`: the command's own name is shown (the pass-through log line, the label in
    `running as pid`, the exit reason, an exec error, the termination message) with its value redacted, and the
    child's exit code is kept."""
    failing_script(installation)
    more = {name: value.format(bin=installation.root / "bin") for name, value in variables.items()}

    output = installation.run(runs, argv, **more)

    assert output.code == code, output.stderr
    assert output.leaks([PASS_THROUGH_SECRET]) == {}, output.stderr + output.termination
    assert "Traceback" not in output.stderr
    if code == 0:
        assert f"--password={REDACTED}" in output.stdout
    elif variables.get("LIFECYCLE_RUN_MODE") != "exec" or code == 127:  # exec'd: the command has no message
        assert f"--password={REDACTED}" in output.termination, output.termination
        assert f"\nexit code: {code}\n" in output.termination


UNKNOWN_SECRET = "notinenv-5d2a9c71"  # held by no variable: only the shape it is printed in can hide it
SHAPES = {
    "--password=": "--password={}",
    "--password-space": "--password {}",
    "java-option": "-Dspark.ssl.keyStorePassword={}",
    "java-option-space": "-Dspark.ssl.keyStorePassword {}",
    "colon": "token: {}",
    "json": '{{"password": "{} and more words", "user": "spark"}}',
    "json-private-key": '{{"private_key": "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n"}}',
    "url-userinfo": "cannot connect to https://spark:{}@db.internal:5432/metastore",
    "bearer": "Authorization: Bearer {}",
    "pem-block": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow{}\nAAAA\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_termination_message_redacts_a_secret_no_variable_holds_by_its_shape(
    runs: Runs, installation: Installation, shape: str
) -> None:
    """A failing child that prints a secret lifecycle cannot know in one of the documented shapes should not have
    it copied into the termination message (the known-values pass cannot help here: only the shape can)."""
    child = install(installation.root / "bin" / "leaky")
    output = installation.run(
        runs, [str(child)], RECORD_STDERR="starting\n" + shape.format(UNKNOWN_SECRET) + "\ngiving up\n", RECORD_EXIT="1"
    )

    assert output.code == 1, output.stderr
    assert "giving up" in output.termination and "starting" in output.termination
    assert UNKNOWN_SECRET not in output.termination, output.termination
    own_lines = [line for line in output.stderr.splitlines() if line.startswith("lifecycle:")]
    assert not [line for line in own_lines if UNKNOWN_SECRET in line]


PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDpemline1\n"
    "c2Vjb25kIGxpbmUgb2YgdGhlIGtleSBib2R5IGZvciB0aGUgdGVzdHBlbTI=\n"
    "-----END PRIVATE KEY-----\n"
)
PEM_BODY = [line for line in PEM_KEY.splitlines() if not line.startswith("-----")]
PEM_PRINTS = {
    "whole-block": PEM_KEY,
    "body-lines-only": "".join(f"{line}\n" for line in PEM_BODY),
    "logger-prefixed-lines": "".join(f"[main] DEBUG key material: {line} (len {len(line)})\n" for line in PEM_BODY),
}
SPACED_SECRET = "open sesame 42"  # a known value the colon shape alone would cut after `open`


@pytest.mark.parametrize("printed", list(PEM_PRINTS.values()), ids=list(PEM_PRINTS))
def test_multi_line_secret_value_printed_line_by_line_is_redacted(
    runs: Runs, installation: Installation, printed: str
) -> None:
    """A PEM private key held by a secret-named variable (multi-line), printed by the child whole or line by line
    (no markers, or behind a logger's prefix), should leave none of its lines in the termination message; a known
    value with spaces printed after `token:` should go whole."""
    child = install(installation.root / "bin" / "leaky")
    output = installation.run(
        runs,
        [str(child)],
        TLS_PRIVATE_KEY=PEM_KEY,
        SPACED_TOKEN=SPACED_SECRET,
        RECORD_STDERR=f"starting\n{printed}token: {SPACED_SECRET}\ngiving up\n",
        RECORD_EXIT="1",
    )

    assert output.code == 1, output.stderr
    assert "giving up" in output.termination
    assert output.leaks(PEM_BODY) == {"stderr": PEM_BODY}  # only the child's own lines, passed through as under tini
    assert "sesame" not in output.termination, output.termination
    own_lines = [line for line in output.stderr.splitlines() if line.startswith("lifecycle:")]
    assert not [line for line in own_lines if any(body in line for body in PEM_BODY) or "sesame" in line]
