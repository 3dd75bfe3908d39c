"""A script's output as lifecycle's log lines (scripts.Runner reads the pipe; this turns bytes into lines): bounded,
cut, redacted, with the last ones kept for the termination message. Stdlib only."""

from __future__ import annotations

import os

from lifecycle.log import Log
from lifecycle.redaction import REDACTED, private_key_open

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lifecycle.scripts import Script

LINE_LIMIT = 4096  # characters of one log line; a longer output line is logged in pieces
OUTPUT_LIMIT = 1 << 20  # bytes of a script's output that become log lines; the rest is read and counted
# Log lines a script's output may become: 1 MiB of newlines alone would be a million log lines (32 MB of text log,
# 200 MB of JSON, tens of seconds of PID 1's time spent formatting them, past LIFECYCLE_POST_EXIT_TIMEOUT).
LINES_LIMIT = 10_000
READ_CHUNKS = 16  # reads of 64 KiB per wake, so a chatty script cannot starve the host's other work
TAIL_LINES = 20  # a failed pre-launch script's last lines, for the termination message


class Lines:
    """A script's output as log lines `NAME> line` (not `NAME: `, which the redactor would take for `key: value`
    whenever the name holds a secret word, as 10-fetch-secret.sh does): at most OUTPUT_LIMIT bytes of it in at
    most LINES_LIMIT log lines, each line at most LINE_LIMIT characters, redacted as every log line is; lines
    inside a private-key block are shown as <redacted>. `live` logs each line as it comes; otherwise they wait for
    `finish` (pre-launch: until the script's exports are known secrets too). The last TAIL_LINES lines shown are
    kept."""

    def __init__(self, log: Log, script: Script, stage: str, live: bool) -> None:
        self.log, self.script, self.stage, self.live = log, script, stage, live
        self.pending = b""
        self.taken = self.dropped = self.shown = 0
        self.in_key = False
        self.tail: list[str] = []

    def feed(self, data: bytes) -> None:
        room = max(0, OUTPUT_LIMIT - self.taken) if self.shown < LINES_LIMIT else 0
        self.taken += min(room, len(data))
        self.dropped += max(0, len(data) - room)
        self.pending += data[:room]
        if self.live:
            self.emit(final=False)

    def pump(self, fd: int, chunks: int = READ_CHUNKS) -> bool:
        """Read what the pipe holds now (at most `chunks` reads); False at end of file."""
        for _ in range(chunks):
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):  # drained for now (ok to proceed)
                return True
            if not data:
                return False
            self.feed(data)
        return True

    def emit(self, final: bool) -> None:
        *lines, rest = self.pending.split(b"\n")
        if final and rest:
            lines.append(rest)
            rest = b""
        self.pending = rest
        for index, raw in enumerate(lines):
            if self.shown >= LINES_LIMIT:  # the rest is counted, never decoded: bounded work whatever it wrote
                self.dropped += sum(len(line) + 1 for line in lines[index:]) + len(self.pending)
                self.pending = b""
                return
            self.show(raw.decode("utf-8", "surrogateescape"))

    def show(self, line: str) -> None:
        if self.in_key:  # inside a private-key block an earlier line opened: nothing of it is shown, its END
            end = line.find("-----END ")  # marker neither (the log's redactor would hide the line's name with it)
            close = line.find("-----", end + 9) if end >= 0 else -1
            rest = line[close + 5 :] if close >= 0 else ""
            line = REDACTED + rest
            self.in_key = close < 0 or private_key_open(rest)
        else:
            self.in_key = private_key_open(line)  # the log's redactor hides the rest of this line itself
        for start in range(0, max(len(line), 1), LINE_LIMIT):
            if self.shown >= LINES_LIMIT:
                self.dropped += len(line[start:].encode("utf-8", "surrogateescape"))
                return
            self.shown += 1
            piece = line[start : start + LINE_LIMIT]
            self.log.info("script-output", f"{self.script.name}> {piece}", script=self.script.name, stage=self.stage)
            self.tail = [*self.tail[-(TAIL_LINES - 1) :], piece]

    def finish(self) -> None:
        self.emit(final=True)
        if self.dropped:
            self.log.warning("script-output", f"{self.script.name}> {self.dropped} more bytes of output were read "
                             f"but not logged (at most {OUTPUT_LIMIT} bytes in {LINES_LIMIT} lines are)",
                             script=self.script.name)  # fmt: skip
