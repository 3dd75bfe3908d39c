"""Processes started for a scenario, and what they write: lines with their arrival time, waited for.

`Processes` starts each one with its output read by two threads (a chatty JVM never stalls on a full pipe) and
kills it with all its descendants, by pidfd, in `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from examples.proc import descendants, kill_by_pidfd


@dataclass(frozen=True)
class Line:
    at: float  # time.monotonic() when the line arrived
    stream: str  # "out" or "err"
    text: str


EchoFn = Callable[[str, Line], None]  # (label, line): called for every line as it arrives


class Output:
    """What a process writes on stdout and stderr, as lines with their arrival time.

    Two reader threads block on the pipes (so a chatty JVM never stalls on a full pipe) and wake waiters
    through a condition variable: `wait_for` blocks, bounded, until a matching line has arrived.
    """

    def __init__(self, process: subprocess.Popen[bytes], label: str, echo: EchoFn | None = None) -> None:
        self.label = label
        self.lines: list[Line] = []
        self.cond = threading.Condition()
        self.echo = echo
        self.open = 0
        for name, pipe in (("out", process.stdout), ("err", process.stderr)):
            if pipe is not None:
                self.open += 1
                threading.Thread(target=self._read, args=(name, pipe), daemon=True, name=f"{label}-{name}").start()

    def _read(self, name: str, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                line = Line(time.monotonic(), name, raw.decode("utf-8", "replace").rstrip("\r\n"))
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
                if self.echo is not None:
                    self.echo(self.label, line)
        finally:
            with self.cond:
                self.open -= 1
                self.cond.notify_all()

    def find(self, text: str | re.Pattern[str], stream: str | None = None, start: int = 0) -> Line | None:
        with self.cond:
            for line in self.lines[start:]:
                if (stream is None or line.stream == stream) and _matches(text, line.text):
                    return line
        return None

    def wait_for(self, text: str | re.Pattern[str], stream: str | None = None, timeout: float = 60.0,
                 start: int = 0) -> Line:
        """The first line (from index `start`) containing `text` (or matching the pattern); bounded wait."""
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    index += 1
                    if (stream is None or line.stream == stream) and _matches(text, line.text):
                        return line
                if self.open == 0:
                    raise AssertionError(f"{self.label} closed its output without a line matching {text!r}:\n"
                                         f"{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line matching {text!r} from {self.label} within {timeout:g}s:\n"
                                       f"{self.tail()}")
                self.cond.wait(left)

    def wait_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.open:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.label} kept its output open for more than {timeout:g}s")
                self.cond.wait(left)

    def count(self) -> int:
        with self.cond:
            return len(self.lines)

    def text(self, stream: str | None = None) -> str:
        with self.cond:
            return "\n".join(line.text for line in self.lines if stream is None or line.stream == stream)

    def json_records(self, stream: str = "err") -> list[dict[str, object]]:
        """The lines that are JSON objects (lifecycle's log with LIFECYCLE_LOG_FORMAT=json)."""
        records = []
        for line in self.text(stream).splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    def tail(self, count: int = 60) -> str:
        with self.cond:
            lines = self.lines[-count:]
        return "\n".join(f"  [{line.stream}] {line.text[:400]}" for line in lines)


def _matches(text: str | re.Pattern[str], line: str) -> bool:
    return bool(text.search(line)) if isinstance(text, re.Pattern) else text in line


@dataclass
class Started:
    """A process started through `Processes`, with its output."""

    label: str
    process: subprocess.Popen[bytes]
    output: Output
    started_at: float

    @property
    def pid(self) -> int:
        return self.process.pid


class Processes:
    """Starts processes and kills each one with all its descendants, by pidfd, in `stop()`."""

    def __init__(self, echo: EchoFn | None = None) -> None:
        self.started: list[Started] = []
        self.echo = echo

    def start(self, label: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | str | None = None,
              stdout: int | None = subprocess.PIPE) -> Started:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.PIPE)
        started = Started(label, process, Output(process, label, self.echo), time.monotonic())
        self.started.append(started)
        return started

    def kill(self, started: Started, timeout: float = 30.0) -> None:
        """SIGKILL the process and every descendant (JVMs, Python workers) through pidfds, then reap it."""
        kill_by_pidfd([started.pid, *descendants(started.pid)])
        try:
            started.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(TimeoutError):
            started.output.wait_closed(timeout)

    def stop(self) -> None:
        for started in reversed(self.started):
            self.kill(started)
        self.started.clear()
