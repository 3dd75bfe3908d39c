"""Which values are secrets, and how they are shown: never.

One pipeline (`Redactor`), the same for every place lifecycle shows an argv, a value or a child's stderr:

1. known values: what the secret-named variables of this process hold, each whole and each line of a
   multi-line one (a PEM body printed line by line), longest first. First, so no shape below can cut a known
   value in half and leave a piece of it.
2. shapes, each a linear scan: PEM private-key blocks (`-----BEGIN … PRIVATE KEY-----` to `-----END …-----`,
   across lines), URL userinfo (`scheme://user:<password>@host`), `Authorization: <scheme> v` and `Bearer v`,
   then the value after any key whose name says secret: `key=v` (to the end of the line; of the argument in
   an argv), `key: v`, `"key": "v …"` (to the closing quote, escapes included), `--key v`, `-Dkey v`.

Redacting twice changes nothing more: a redacted argv shown inside a log line keeps the words after it.

Names (`is_secret_name`) decide which variables are secret and whose values the dry run hides.
Used by the start-up stage and the lean supervisor only (it imports `re`; the preStop command never does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

from lifecycle.log import printable

REDACTED = "<redacted>"

# _SPARK_AUTH_SECRET, HADOOP_TOKEN_FILE_LOCATION-style names, AWS_SECRET_ACCESS_KEY, DB_PASSWORD, …
_SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|ACCOUNT_KEY", re.IGNORECASE
)
# The same words inside keys of any spelling: spark.ssl.keyStorePassword, fs.s3a.access.key, api-key,
# fs.azure.account.key.<account>.blob.core.windows.net, privateKey. Keys are found as maximal runs of key
# characters, then searched for a word: linear time whatever the input (a single regular expression with
# `[…]*` around the words backtracks quadratically on a long value such as "password" * 10,000).
_WORD = re.compile(
    r"secret|password|passwd|token|credential|(?:private|api|access|account|secret)[._-]?key", re.IGNORECASE
)
_KEY_RUN = re.compile(r"[A-Za-z0-9_.\-]+")
_BLANKS = re.compile(r"[ \t]*")
_COLON = re.compile(r"[\"']?[ \t]*:[ \t]*")  # `key: v`, `"key": v`, `'key': v`
_OPTION_GAP = re.compile(r"[ \t]+")  # `--key v`
_COLON_WORD = re.compile(r"[^\s\"',;)}\]]+")  # an unquoted value in `key: v` ends at JSON/YAML punctuation
_OPTION_WORD = re.compile(r"[^\s\"']\S*")
# A quoted value up to its closing quote, backslash escapes (\" \\ \n) included, never past the line's end:
# the unrolled form has one way to match any input, so it cannot backtrack.
_QUOTED = {q: re.compile(rf"[^{q}\\\n]*(?:\\.[^{q}\\\n]*)*") for q in "\"'"}
# `Authorization: <scheme> v` (HTTP headers in a client's error, quoted or not) and a bare `Bearer v`.
_AUTH = re.compile(
    r"(\bAuthorization[\"']?[ \t]*:[ \t]*[\"']?(?:[A-Za-z]+[ \t]+)?|\bBearer[ \t]+)([^\s\"']+)", re.IGNORECASE
)
# `scheme://user:password@host`: the password is what lies between the first `:` and the last `@` of the
# authority. Every match starts at a `://` and stops at the next blank or `/`: linear.
_USERINFO = re.compile(r"(://[^\s/?#@:]*:)([^\s/?#]+)(@)")
# A value redacted by an earlier pass, followed by a boundary: redacting twice changes nothing more.
_ALREADY = re.compile(re.escape(REDACTED) + r"(?=[\s\"',;)}\]]|\Z)")
_PEM = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_LINE = re.compile(r"-----[A-Z0-9 ]*-----")  # a marker line of a known PEM value is not itself secret

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


def is_secret_option(arg: str) -> bool:
    """`--password`, `-Dx.token`: an option whose name holds a secret word, with its value apart."""
    return arg.startswith("-") and _KEY_RUN.fullmatch(arg) is not None and _WORD.search(arg) is not None


def _pieces(known: Iterable[str]) -> tuple[str, ...]:
    """Each value whole, and each line of a multi-line value (stripped), longest first."""
    pieces = set()
    for value in known:
        if len(value) >= MIN_KNOWN_LENGTH:
            pieces.add(value)
        if "\n" in value or "\r" in value:
            for line in value.splitlines():
                line = line.strip()
                if len(line) >= MIN_KNOWN_LENGTH and not _PEM_LINE.fullmatch(line):
                    pieces.add(line)
    return tuple(sorted(pieces, key=lambda piece: (-len(piece), piece)))


def _pem_blocks(text: str) -> str:
    """Every private-key block's body replaced, markers kept. A BEGIN with no END (the rest was not printed
    yet, or cut) hides everything after it; an END with no BEGIN (scrolled out of a tail) everything before."""
    parts: list[str] = []
    done = 0  # text[:done] is settled
    body: int | None = None  # where the open block's body starts
    for marker in _PEM.finditer(text):
        if marker.group(1) == "BEGIN":
            if body is None:
                parts.append(text[done : marker.end()])
                done = body = marker.end()
        else:
            parts.append(REDACTED + marker.group())
            done, body = marker.end(), None
    if body is not None:
        return "".join(parts) + REDACTED
    return "".join(parts) + text[done:]


def private_key_open(text: str, was_open: bool = False) -> bool:
    """Whether a private-key block is still open at the end of `text` (a line of output), given whether one was
    open before it: a script printing a key line by line has each line redacted on its own, so the lines between
    BEGIN and END are known to be secret only from the lines before them (scripts.py)."""
    for marker in _PEM.finditer(text):
        was_open = marker.group(1) == "BEGIN"
    return was_open


def _value_end(text: str, start: int, word: re.Pattern[str]) -> tuple[int, int] | None:
    """The span of the value starting at `start`: to the closing quote if quoted, else one word."""
    if start < len(text) and text[start] in "\"'":
        body = _QUOTED[text[start]].match(text, start + 1)
        assert body is not None  # `*` always matches
        return (start + 1, body.end()) if body.end() > start + 1 else None
    value = word.match(text, start)
    return (start, value.end()) if value else None


def _value_after(text: str, key: re.Match[str], whole: bool) -> tuple[int, int] | None:
    """The span of the value that follows a secret-named key, in any of the key shapes; None if none does."""
    equals = _BLANKS.match(text, key.end())
    assert equals is not None  # `*` always matches
    if text.startswith("=", equals.end()):  # key=value: to the end of the line (of the argument when whole)
        start = equals.end() + 1
        done = _ALREADY.match(text, start)
        if done is not None:  # redacted before (a shown argv inside a log line): the text after it stays
            return start, done.end()
        end = len(text) if whole else text.find("\n", start)
        end = len(text) if end < 0 else end
        return (start, end) if end > start else None
    colon = _COLON.match(text, key.end())
    if colon is not None:
        return _value_end(text, colon.end(), _COLON_WORD)
    if key.group().startswith("-") and (key.start() == 0 or text[key.start() - 1].isspace()):
        gap = _OPTION_GAP.match(text, key.end())
        if gap is not None:
            return _value_end(text, gap.end(), _OPTION_WORD)
    return None


def _keyed_values(text: str, whole: bool) -> str:
    """The value after every key whose name holds a secret word, left to right, in one pass."""
    parts: list[str] = []
    done = 0  # text[:done] is settled
    for key in _KEY_RUN.finditer(text):
        if key.start() < done or not _WORD.search(key.group()):
            continue
        span = _value_after(text, key, whole)
        if span is not None:
            parts.append(text[done : span[0]] + REDACTED)
            done = span[1]
    return "".join(parts) + text[done:]


class Redactor:
    """The known secret values bound once; `.text` for free text (a child's stderr, a reason), `.arg` for an
    argv element or a value, `.argv` for a whole command line."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known = _pieces(known)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor for the secret-named variables of `environ` (this process's environment by default)."""
        return cls(known_secrets(os.environ if environ is None else environ))

    def _redact(self, text: str, whole: bool) -> str:
        for value in self.known:
            if value in text:
                text = text.replace(value, REDACTED)
        text = _pem_blocks(text)
        text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
        text = _AUTH.sub(lambda m: m.group(1) + REDACTED, text)
        return _keyed_values(text, whole)

    def text(self, text: str) -> str:
        """Free text, one line or many: a `key=value` value ends at the end of its line."""
        return self._redact(text, whole=False)

    def arg(self, arg: str) -> str:
        """One argument: a `key=value` value runs to the end of the argument."""
        return self._redact(arg, whole=True)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Each argument, and the value given apart after a secret-named option (`--password v`)."""
        shown: list[str] = []
        for index, arg in enumerate(argv):
            if index and is_secret_option(argv[index - 1]) and not arg.startswith("-"):
                shown.append(REDACTED)
            else:
                shown.append(self.arg(arg))
        return shown


def redact_arg(arg: str, known: Iterable[str] = ()) -> str:
    """An argv element with every secret shape and known value replaced."""
    return Redactor(known).arg(arg)


def redact_argv(argv: Sequence[str], known: Iterable[str] = ()) -> list[str]:
    """argv with redact_arg applied, and the value after a secret-named option given apart (`--password v`)."""
    return Redactor(known).argv(argv)


def redact_text(text: str, known: Iterable[str] = ()) -> str:
    """Free text (a child's stderr, one line or many) with every secret shape and known value replaced."""
    return Redactor(known).text(text)


def display_arg(arg: str) -> str:
    """A command name or argument as lifecycle's own lines show it: redacted with this process's known secrets,
    and printable (bytes that are not UTF-8 become \\xNN), so showing it can never fail."""
    return printable(Redactor.from_environ().arg(arg))
