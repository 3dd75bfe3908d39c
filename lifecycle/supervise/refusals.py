"""Refused preStop channel connections: counted, and logged at a bounded rate whatever a client does."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lifecycle.log import Log

REFUSALS_LOGGED = 5  # refusal lines per window; the rest are counted in one summary line
REFUSAL_WINDOW = 10.0  # seconds


class RefusalLog:
    """Refused connections: counted; the first REFUSALS_LOGGED of each window logged, the rest summed up."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.total = 0
        self.window_started = float("-inf")
        self.in_window = 0
        self.unlogged = 0

    def refused(self, message: str) -> None:
        self.total += 1
        now = time.monotonic()
        if now - self.window_started >= REFUSAL_WINDOW:
            self.flush(now)
            self.window_started, self.in_window = now, 0
        self.in_window += 1
        if self.in_window < REFUSALS_LOGGED:
            self.log.warning("control", message, refused_total=self.total)
        elif self.in_window == REFUSALS_LOGGED:
            self.log.warning(
                "control",
                f"{message} (more refusals in the next {REFUSAL_WINDOW:g}s are counted, not logged)",
                refused_total=self.total,
            )
        else:
            self.unlogged += 1

    def flush(self, now: float | None = None) -> None:
        """The summary line for the window that ended, if anything in it went unlogged."""
        if not self.unlogged:
            return
        seconds = (time.monotonic() if now is None else now) - self.window_started
        self.log.warning(
            "control",
            f"{self.unlogged} more preStop channel connection(s) refused in {seconds:.1f}s, not logged "
            f"({self.total} refused in all)",
            refused=self.unlogged,
            refused_total=self.total,
        )
        self.unlogged = 0
