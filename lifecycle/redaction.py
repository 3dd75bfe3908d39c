"""Which values are secrets, and how they are shown: never.

Three nets, widest last: names (a variable or property whose name says secret, password, token, key…),
shapes (`<such a key>=value`, `<such a key>: value`, `--<such an option> value`, `Authorization: Bearer v`),
and the known values themselves (whatever the secret-named variables of this process hold, wherever they
turn up). Used for the dry run, usage errors, and the child's stderr lines in the termination message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

REDACTED = "<redacted>"

# _SPARK_AUTH_SECRET, HADOOP_TOKEN_FILE_LOCATION-style names, AWS_SECRET_ACCESS_KEY, DB_PASSWORD, …
_SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|ACCOUNT_KEY", re.IGNORECASE
)
# The same words inside keys of any spelling: spark.ssl.keyStorePassword, fs.s3a.access.key,
# fs.azure.account.key.<account>.blob.core.windows.net, api-key, privateKey.
_WORDS = r"(?:secret|password|passwd|token|credential|(?:private|api|access|account|secret)[._-]?key)"
_KEY = rf"[A-Za-z0-9_.\-]*{_WORDS}[A-Za-z0-9_.\-]*"
# key=value (the rest of the argument or line) and key: value (one word), in any text.
_ASSIGNMENT = re.compile(rf"({_KEY}\s*=)(.+)", re.IGNORECASE)
_COLON = re.compile(rf"({_KEY}\"?\s*:\s*\"?)([^\s\",}}]+)", re.IGNORECASE)
# --password VALUE, -Dx.token VALUE in a line of text: the next word.
_OPTION_THEN_VALUE = re.compile(rf"((?<![\w.-])--?{_KEY}\s+)([^\s-]\S*)", re.IGNORECASE)
# `Authorization: <scheme> v` (HTTP headers in a client's error), and a bare `Bearer v`.
_AUTH_SCHEME = re.compile(r"(\bAuthorization\s*:\s*(?:[A-Za-z]+\s+)?|\bBearer\s+)(\S+)", re.IGNORECASE)
_OPTION = re.compile(rf"--?{_KEY}", re.IGNORECASE)

NOT_SECRET = frozenset({"NSS_WRAPPER_PASSWD"})  # a path to a passwd file (identity.py), not a password
MIN_KNOWN_LENGTH = 4  # shorter values are too likely to be ordinary words or numbers to hunt for


def is_secret_name(name: str) -> bool:
    """True for variable or property names that look like they hold a secret."""
    return name not in NOT_SECRET and bool(_SECRET_NAME.search(name))


def redact_value(name: str, value: str) -> str:
    """The value, or <redacted> if the name looks secret."""
    return REDACTED if is_secret_name(name) else value


def known_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values of this environment's secret-named variables, longest first (so none hides a longer one)."""
    values = {value for name, value in environ.items() if is_secret_name(name) and len(value) >= MIN_KNOWN_LENGTH}
    return tuple(sorted(values, key=len, reverse=True))


def _replace_known(text: str, known: Iterable[str]) -> str:
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_arg(arg: str, known: Iterable[str] = ()) -> str:
    """An argv element with the value of any `secret-like-key=value` replaced, and any known secret value."""
    return _replace_known(_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, arg), known)


def redact_argv(argv: Sequence[str], known: Iterable[str] = ()) -> list[str]:
    """argv with redact_arg applied, and the value after a secret-named option given apart (`--password v`)."""
    known = tuple(known)
    shown: list[str] = []
    for index, arg in enumerate(argv):
        previous = argv[index - 1] if index else ""
        if "=" not in previous and _OPTION.fullmatch(previous) and not arg.startswith("-"):
            shown.append(REDACTED)
        else:
            shown.append(redact_arg(arg, known))
    return shown


def redact_text(line: str, known: Iterable[str] = ()) -> str:
    """A line of free text (a child's stderr): every shape above, then the known values."""
    line = _ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, line)
    line = _COLON.sub(lambda m: m.group(1) + REDACTED, line)
    line = _OPTION_THEN_VALUE.sub(lambda m: m.group(1) + REDACTED, line)
    line = _AUTH_SCHEME.sub(lambda m: m.group(1) + REDACTED, line)
    return _replace_known(line, known)
