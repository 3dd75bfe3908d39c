"""Structured log lines on stderr: one line per event, text or JSON (LIFECYCLE_LOG_FORMAT).

Stdlib only: the lean supervisor and the preStop command use it too. JSON lines are built here with the C
string escaper behind the json module (`_json`), the same bytes json.dumps writes, without importing json
(and with it re): the preStop command's start-up counts against the pod's grace period.
"""

from __future__ import annotations

import os
import sys
import time
from _json import encode_basestring_ascii

from lifecycle.output import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Log:
    """Writes events to a file descriptor (stderr) with the elapsed time since the run started."""

    def __init__(
        self,
        fmt: str = "text",
        level: str = "info",
        started: float | None = None,
        fd: int = 2,
        name: str = "lifecycle",
        out: Output | None = None,
    ) -> None:
        self.fmt = fmt
        self.threshold = LEVELS[level]
        self.started = time.monotonic() if started is None else started
        self.fd = fd
        self.name = name
        self.out = Output.open(fd) if out is None else out  # never blocks: a stalled reader costs lines, not PID 1
        self.out.notice = self.dropped_notice
        self.redact: Callable[[str], str] | None = None  # set where secrets may reach a message (redaction.py)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def emit(self, level: str, event: str, message: str, **fields: object) -> None:
        """Write one line; never raises (a closed stderr must not break the lifecycle)."""
        if LEVELS[level] < self.threshold:
            return
        try:
            data = self.format(level, event, message, fields)
        except Exception as exc:  # a value that cannot be shown must not cost the event (ok to proceed)
            text = f"{self.name}: error: a {level} line for {event!r} could not be formatted ({type(exc).__name__})\n"
            data = text.encode("ascii", "backslashreplace")
        if self.out.mid_line:  # a relayed child line without its newline yet: ours starts a line of its own
            data = b"\n" + data
        self.out.write(data)

    def format(self, level: str, event: str, message: str, fields: dict[str, object]) -> bytes:
        """The line's bytes: every string escaped where it is not UTF-8, and redacted when a redactor is set."""
        if self.redact is not None:
            message = self.redact(message)
        message = printable(message)
        elapsed = round(self.elapsed_ms(), 3)
        if self.fmt == "json":
            record: dict[str, object] = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "logger": self.name,
                "level": level,
                "event": event,
                "elapsed_ms": elapsed,
                "pid": os.getpid(),
                "message": message,
            }
            for key, value in fields.items():
                record[key] = self.shown(value)
            line = to_json(record)
        else:
            prefix = f"{self.name}: [{elapsed / 1000:8.3f}s] "
            tag = "" if level == "info" else f"{level}: "
            # One event, one line: a value with a newline (an environment variable, a path) must not start
            # a line of its own, which could pass for one of lifecycle's.
            line = prefix + tag + message.replace("\r", "\\r").replace("\n", "\\n")
        return (line + "\n").encode("utf-8", "replace")

    def shown(self, value: object) -> object:
        """A field's value as the JSON line holds it: every string in it, inside lists and dicts too (the scripts
        found, each script's result), redacted and escaped as the message is."""
        if isinstance(value, str):
            return printable(value if self.redact is None else self.redact(value))
        if isinstance(value, (list, tuple)):
            return [self.shown(item) for item in value]
        if isinstance(value, dict):
            return {key: self.shown(item) for key, item in value.items()}
        return value

    def dropped_notice(self, dropped: int, writes: int) -> bytes:
        """The line written once stderr takes output again after some was dropped."""
        return self.format(
            "warning",
            "output-dropped",
            f"dropped {dropped} bytes of output ({writes} writes) while stderr was not being read",
            {"dropped_bytes": dropped},
        )

    def debug(self, event: str, message: str, **fields: object) -> None:
        self.emit("debug", event, message, **fields)

    def info(self, event: str, message: str, **fields: object) -> None:
        self.emit("info", event, message, **fields)

    def warning(self, event: str, message: str, **fields: object) -> None:
        self.emit("warning", event, message, **fields)

    def error(self, event: str, message: str, **fields: object) -> None:
        self.emit("error", event, message, **fields)


def to_json(value: object) -> str:
    """json.dumps(value, default=str) for the values log records hold."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{encode_basestring_ascii(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
    return encode_basestring_ascii(str(value))


def printable(text: str) -> str:
    """Text safe to write anywhere: bytes that were not UTF-8 (surrogate escapes from argv, the environment or
    a file name) and lone surrogates become \\xNN / \\udcNN escapes, so encoding it never fails."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte became
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


DRAIN = 1.0  # seconds a process that is about to exit waits for a stalled stderr to take its last lines


def print_error(message: str, name: str = "lifecycle") -> None:
    """One `name: error: …` line per message line on stderr, before any logger exists; bounded by DRAIN."""
    write_stderr("".join(f"{name}: error: {printable(line)}\n" for line in message.splitlines() or [message]))


def write_stderr(text: str) -> None:
    """Text on stderr for a process about to exit: never blocks longer than DRAIN (a stalled reader)."""
    if sys.stderr is not None:
        sys.stderr.flush()
    out = Output.open(2)
    out.write(text.encode("utf-8", "backslashreplace"))
    out.drain(DRAIN)
