"""The termination message (Kubernetes' /dev/termination-log) and the bounded stderr tail behind it."""

from __future__ import annotations

import collections
import os

from lifecycle.redaction import redact_text

MESSAGE_LIMIT = 4096  # bytes: the kubelet truncates termination messages at 4096
TAIL_BYTES = 16384  # how much of the child's stderr is kept to find its last lines
TAIL_LINES = 20


class StderrTail:
    """Keeps the last TAIL_BYTES of what passes through; the bytes themselves go on unchanged."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = secrets  # values to hunt for in the lines (redaction.known_secrets)
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= TAIL_BYTES:
            self.size -= len(self.chunks.popleft())

    def lines(self, count: int = TAIL_LINES) -> list[str]:
        text = b"".join(self.chunks)[-TAIL_BYTES:].decode("utf-8", "replace")
        return [redact_text(line, self.secrets) for line in text.splitlines()[-count:]]


def usable(path: str) -> bool:
    """Whether a termination message can be written there (the kubelet bind-mounts the file)."""
    return bool(path) and os.path.exists(path) and os.access(path, os.W_OK)


def compose(state: str, exit_code: int, signal_name: str | None, reason: str, tail: list[str]) -> str:
    """Header lines, then the child's last stderr lines, cut from the top to fit MESSAGE_LIMIT bytes."""
    header = [
        f"lifecycle: {reason}",
        f"state: {state}",
        f"exit code: {exit_code}",
        f"signal: {signal_name or '-'}",
    ]
    text = "\n".join(header) + "\n"
    if tail:
        body = list(tail)
        while body:
            candidate = text + "last stderr lines:\n" + "\n".join(body) + "\n"
            if len(candidate.encode()) <= MESSAGE_LIMIT:
                return candidate
            body.pop(0)
    return text.encode()[:MESSAGE_LIMIT].decode("utf-8", "ignore")


def write(path: str, message: str) -> bool:
    """Write the message whole (truncating the file) or not at all; quietly False when unusable."""
    if not usable(path):
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except OSError:
        return False
    try:
        os.write(fd, message.encode("utf-8", "replace"))
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
