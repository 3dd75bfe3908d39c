"""What the container tests measure and observe, printed in pytest's terminal summary (tests/container/conftest.py)."""

from __future__ import annotations

import statistics


class Figures:
    """Named durations in seconds (several per name when a test runs more than once), and what lifecycle did."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.notes: dict[str, str] = {}

    def note(self, name: str, text: str) -> None:
        """What lifecycle did in one scenario (exit code, its error or warning line); the last one per name."""
        self.notes[name] = text

    def record(self, name: str, seconds: float) -> None:
        self.values.setdefault(name, []).append(seconds)

    def lines(self) -> list[str]:
        """One line per name: the median and the range, in milliseconds."""
        found = []
        for name, values in self.values.items():
            median = statistics.median(values) * 1000
            low, high = min(values) * 1000, max(values) * 1000
            found.append(f"{name}: {median:.0f} ms (n={len(values)}, {low:.0f}-{high:.0f})")
        found.extend(f"{name}: {text}" for name, text in self.notes.items())
        return found


FIGURES = Figures()
