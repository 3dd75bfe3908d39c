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
    ) -> None:
        self.fmt = fmt
        self.threshold = LEVELS[level]
        self.started = time.monotonic() if started is None else started
        self.fd = fd
        self.name = name

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def emit(self, level: str, event: str, message: str, **fields: object) -> None:
        """Write one line; never raises (a closed stderr must not break the lifecycle)."""
        if LEVELS[level] < self.threshold:
            return
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
            record.update(fields)
            line = to_json(record)
        else:
            prefix = f"{self.name}: [{elapsed / 1000:8.3f}s] "
            tag = "" if level == "info" else f"{level}: "
            # One event, one line: a value with a newline (an environment variable, a path) must not start
            # a line of its own, which could pass for one of lifecycle's.
            line = prefix + tag + message.replace("\r", "\\r").replace("\n", "\\n")
        try:
            os.write(self.fd, (line + "\n").encode("utf-8", "replace"))
        except OSError:  # stderr closed or full: logging is best effort (tini does the same)
            pass

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


def print_error(message: str, name: str = "lifecycle") -> None:
    """One `name: error: …` line per message line on stderr, before any logger exists."""
    for line in message.splitlines() or [message]:
        sys.stderr.write(f"{name}: error: {line}\n")
    sys.stderr.flush()
