"""Which values are secrets, and how they are shown: never.

Three nets, widest last: names (a variable or property whose name says secret, password, token, key…),
shapes (`<such a key>=value`, `<such a key>: value`, `--<such an option> value`, `Authorization: Bearer v`),
and the known values themselves (whatever the secret-named variables of this process hold, wherever they
turn up). Used for the dry run, usage errors, and the child's stderr lines in the termination message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

REDACTED = "<redacted>"

# _SPARK_AUTH_SECRET, HADOOP_TOKEN_FILE_LOCATION-style names, AWS_SECRET_ACCESS_KEY, DB_PASSWORD, …
_SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|ACCOUNT_KEY", re.IGNORECASE
)
# The same words inside keys of any spelling: spark.ssl.keyStorePassword, fs.s3a.access.key,
# fs.azure.account.key.<account>.blob.core.windows.net, api-key, privateKey. Keys are found as maximal runs of
# key characters, then searched for a word: linear time whatever the input (a single regular expression with
# `[…]*` around the words backtracks quadratically on a long value such as "password" * 10,000).
_WORD = re.compile(
    r"secret|password|passwd|token|credential|(?:private|api|access|account|secret)[._-]?key", re.IGNORECASE
)
_KEY_RUN = re.compile(r"[A-Za-z0-9_.\-]+")
_BLANKS = re.compile(r"[ \t]*")
_COLON_VALUE = re.compile(r"\"?[ \t]*:[ \t]*\"?([^\s\",}]+)")
_OPTION_VALUE = re.compile(r"[ \t]+([^\s-]\S*)")
# `Authorization: <scheme> v` (HTTP headers in a client's error), and a bare `Bearer v`.
_AUTH_SCHEME = re.compile(r"(\bAuthorization[ \t]*:[ \t]*(?:[A-Za-z]+[ \t]+)?|\bBearer[ \t]+)(\S+)", re.IGNORECASE)

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


def _secret_keys(text: str) -> Iterator[re.Match[str]]:
    """Every run of key characters in text that holds a secret word, left to right."""
    for run in _KEY_RUN.finditer(text):
        if _WORD.search(run.group()):
            yield run


def _assignment_value(text: str, key_end: int) -> int | None:
    """Where the value of `key = value` starts (after the `=`), when the key ends at key_end; else None."""
    blanks = _BLANKS.match(text, key_end)  # zero or more: always matches
    equals = blanks.end() if blanks else key_end
    if text.startswith("=", equals) and equals + 1 < len(text):
        return equals + 1
    return None


def redact_arg(arg: str, known: Iterable[str] = ()) -> str:
    """An argv element with the value of any `secret-like-key=value` replaced (to its end), and known values."""
    for key in _secret_keys(arg):
        value = _assignment_value(arg, key.end())
        if value is not None:
            arg = arg[:value] + REDACTED
            break
    return _replace_known(arg, known)


def redact_argv(argv: Sequence[str], known: Iterable[str] = ()) -> list[str]:
    """argv with redact_arg applied, and the value after a secret-named option given apart (`--password v`)."""
    known = tuple(known)
    shown: list[str] = []
    for index, arg in enumerate(argv):
        previous = argv[index - 1] if index else ""
        if is_secret_option(previous) and not arg.startswith("-"):
            shown.append(REDACTED)
        else:
            shown.append(redact_arg(arg, known))
    return shown


def is_secret_option(arg: str) -> bool:
    """`--password`, `-Dx.token`: an option whose name holds a secret word, with its value apart."""
    return arg.startswith("-") and _KEY_RUN.fullmatch(arg) is not None and _WORD.search(arg) is not None


def redact_text(line: str, known: Iterable[str] = ()) -> str:
    """A line of free text (a child's stderr): `key=value` (to the end of the line), `key: value`,
    `--key value`, `Authorization: … value`, `Bearer value`, then the known values."""
    parts: list[str] = []
    done = 0  # line[:done] is settled
    for key in _secret_keys(line):
        if key.start() < done:
            continue
        value = _assignment_value(line, key.end())
        if value is not None:
            parts.append(line[done:value] + REDACTED)
            done = len(line)
            break
        word = _COLON_VALUE.match(line, key.end())
        if word is None and key.group().startswith("-") and (key.start() == 0 or line[key.start() - 1].isspace()):
            word = _OPTION_VALUE.match(line, key.end())
        if word is not None:
            parts.append(line[done : word.start(1)] + REDACTED)
            done = word.end(1)
    line = "".join(parts) + line[done:]
    line = _AUTH_SCHEME.sub(lambda m: m.group(1) + REDACTED, line)
    return _replace_known(line, known)
