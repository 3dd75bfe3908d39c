"""What argv asked for: options before the mode, then the mode and its arguments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Invocation:
    """The parsed command line (cli.parse_args)."""

    mode: str
    args: tuple[str, ...]
    dry_run: bool = False
    json: bool = False
