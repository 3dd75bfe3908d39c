"""The runtime's own knobs: every LIFECYCLE_* variable defined once, in KNOBS (variable, attribute, default,
parser, documentation), with stdlib-only parsers. The start-up stage validates them through a pydantic-settings
model generated from KNOBS (launch/settings.py), the lean supervisor gets them parsed in the hand-over, and the
preStop command, which must not import pydantic, parses what it needs with `parse_knobs`; `--help` prints KNOBS.
"""

from __future__ import annotations

import math
import os

from lifecycle.errors import ConfigError

# No typing, dataclasses, enum or re at run time (mypy reads the guarded imports): the preStop command imports
# this module, and every millisecond of its start-up counts against the pod's grace period.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    Environ = Mapping[str, str] | None  # None: os.environ

RUN_MODE = "LIFECYCLE_RUN_MODE"
LOG_FORMAT = "LIFECYCLE_LOG_FORMAT"
LOG_LEVEL = "LIFECYCLE_LOG_LEVEL"
DECOMMISSION_SIGNAL = "LIFECYCLE_DECOMMISSION_SIGNAL"
DECOMMISSION_TRIGGER = "LIFECYCLE_DECOMMISSION_TRIGGER"
DECOMMISSION_TIMEOUT = "LIFECYCLE_DECOMMISSION_TIMEOUT"
KILL_GRACE = "LIFECYCLE_KILL_GRACE"
SIGNAL_GROUP = "LIFECYCLE_SIGNAL_GROUP"
EXIT_REMAP = "LIFECYCLE_EXIT_REMAP"
TERMINATION_LOG = "LIFECYCLE_TERMINATION_LOG"
ORPHAN_GRACE = "LIFECYCLE_ORPHAN_GRACE"
HOOK_GRACE = "LIFECYCLE_HOOK_GRACE"
PRE_LAUNCH_DIR = "LIFECYCLE_PRE_LAUNCH_DIR"
PRE_LAUNCH_TIMEOUT = "LIFECYCLE_PRE_LAUNCH_TIMEOUT"
PRE_LAUNCH_FAILURE = "LIFECYCLE_PRE_LAUNCH_FAILURE"
POST_EXIT_DIR = "LIFECYCLE_POST_EXIT_DIR"
POST_EXIT_TIMEOUT = "LIFECYCLE_POST_EXIT_TIMEOUT"
# Read before the pre-launch scripts run (they decide how the scripts run and how a failure is reported), so a
# script cannot set them: an exported line naming one is a configuration error (launch/exports.py).
BEFORE_SCRIPTS = (LOG_FORMAT, LOG_LEVEL, TERMINATION_LOG, DECOMMISSION_TRIGGER, KILL_GRACE, PRE_LAUNCH_DIR,
                  PRE_LAUNCH_TIMEOUT, PRE_LAUNCH_FAILURE)  # fmt: skip


def parse_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:  # any case, blanks around ignored
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


parse_run_mode = parse_choice(("supervise", "exec"))
parse_log_format = parse_choice(("text", "json"))
parse_log_level = parse_choice(("debug", "info", "warning", "error"))
parse_failure_policy = parse_choice(("stop", "warn"))


def parse_signal(raw: str) -> int:
    """A catchable signal by name (PWR, SIGPWR, sigterm) or number (30); KILL and STOP are refused."""
    import signal  # here, not at the top: `signal` imports enum (preStop start-up)

    text = raw.strip().upper()
    if text.isdigit():
        number = int(text)
        if not 1 <= number < signal.NSIG:
            raise ValueError(f"expected a signal name like PWR or a number 1-{signal.NSIG - 1}, got {raw!r}")
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        try:
            number = int(signal.Signals[name])
        except KeyError:
            raise ValueError(f"expected a signal name like PWR, TERM or USR1, or a number, got {raw!r}") from None
    if number in (signal.SIGKILL, signal.SIGSTOP):
        raise ValueError(f"{signal_name(number)} cannot be caught, so it cannot drain anything; got {raw!r}")
    return number


def parse_trigger(raw: str) -> int:
    """A signal lifecycle installs a handler for (signals.forwardable). SIGSEGV and the other synchronous signals,
    SIGCHLD, SIGPIPE, SIGTTIN, SIGTTOU and glibc's reserved 32 and 33 never reach its handlers: as a trigger they
    would decommission nothing, and sent to a lifecycle that is not PID 1 their default action would kill it."""
    from lifecycle.signals import NOT_FORWARDED, forwardable

    number = parse_signal(raw)
    if number not in forwardable():
        why = NOT_FORWARDED.get(number, "reserved by the C library")  # type: ignore[call-overload]
        raise ValueError(f"{signal_name(number)} cannot trigger a decommission ({why}); use PWR, USR1, USR2, "
                         f"a real-time signal or another catchable one, got {raw!r}")  # fmt: skip
    return number


def signal_name(number: int) -> str:
    """SIGTERM for 15; SIGRTMIN+3 style for real-time signals."""
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN < number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"SIG{number}"


def parse_duration(raw: str) -> float:
    """Seconds as a number with an optional unit: 30, 2.5, 500ms, 30s, 2m (digits with one optional point)."""
    text, scale = raw.strip(), 1.0
    for unit, unit_scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            text, scale = text[: -len(unit)].rstrip(), unit_scale
            break
    whole, point, fraction = text.partition(".")
    digits = whole + fraction
    if not digits or not digits.isascii() or not digits.isdigit() or (point and not fraction):
        raise ValueError(f"expected a duration like 30, 2.5s, 500ms or 2m, got {raw!r}")
    value = float(text) * scale
    if not math.isfinite(value):
        raise ValueError(f"expected a finite duration, got {raw!r}")
    return value


MAX_WAIT_MS = 2**31 - 1  # poll(2)'s timeout is a C int of milliseconds (~24.8 days)


def wait_ms(seconds: float | None) -> int | None:
    """A poll() timeout for a wait of `seconds` (None: no timeout), clamped to what poll() accepts: a duration
    knob may be any size, and poll() raises OverflowError past a C int; the caller's loop waits again."""
    if seconds is None:
        return None
    return int(min(max(seconds * 1000.0, 0.0), MAX_WAIT_MS))


def parse_optional_timeout(raw: str) -> float | None:
    """A duration > 0; empty means no deadline (wait until the JVM exits, as upstream's decom.sh)."""
    if raw.strip() == "":
        return None
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError(f"expected a duration > 0, got {raw!r}")
    return value


def parse_timeout(raw: str) -> float:
    """A duration > 0 (a script's bound: zero would stop every script before it starts)."""
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError(f"expected a duration > 0, got {raw!r}")
    return value


def parse_directory(raw: str) -> str:
    """A directory of scripts, kept as given; empty means none. Whether it exists is checked when it is listed."""
    return raw.strip()


def parse_bool(raw: str) -> bool:
    """Only the documented values: 1/0, true/false (any case). Presence alone switches nothing on."""
    value = raw.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise ValueError(f"expected 1, 0, true or false, got {raw!r}")


def parse_remap(raw: str) -> dict[int, int]:
    """Exit-code remap like tini -e, generalised: `143:0,130:0` maps 143 and 130 to 0."""
    mapping: dict[int, int] = {}
    for item in raw.replace(" ", "").split(","):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"expected FROM:TO pairs separated by commas, like 143:0, got {raw!r}")
        source, target = int(parts[0]), int(parts[1])
        if source > 255 or target > 255:
            raise ValueError(f"exit codes are 0-255, got {item!r}")
        mapping[source] = target
    return mapping


def parse_path(raw: str) -> str:
    """A path whose directories are resolved now (symlinks followed, made absolute), while no child exists that
    could swap one for a symlink; the last component is kept as it is, so a symlink there is never followed.
    termination.write then refuses a symlink anywhere on it. Empty disables the feature."""
    if not raw:
        return raw
    try:
        directory, name = os.path.split(os.path.abspath(raw))
        return os.path.join(os.path.realpath(directory), name)
    except (OSError, ValueError):  # a NUL in it: kept as given; writing it will fail quietly (ok to proceed)
        return raw


class Knob:
    """A LIFECYCLE_* variable: name, Knobs attribute, default (as set), parser (ValueError: the problem), docs."""

    __slots__ = ("accepted", "attr", "default", "effect", "name", "parse")

    def __init__(self, name: str, attr: str, default: str, parse: Callable[[str], Any], accepted: str, effect: str):
        self.name, self.attr, self.default, self.parse = name, attr, default, parse
        self.accepted, self.effect = accepted, effect


DURATION = "duration >= 0"
# name, attribute, default, parser, what it accepts, what it does
KNOBS: tuple[Knob, ...] = tuple(Knob(*row) for row in (
    (RUN_MODE, "run_mode", "supervise", parse_run_mode, "supervise, exec",
     "supervise: stay as PID 1, forward signals, reap, decommission; exec: replace lifecycle with the command"),
    (LOG_FORMAT, "log_format", "text", parse_log_format, "text, json",
     "format of lifecycle's own log lines on stderr (json: one object per line)"),
    (LOG_LEVEL, "log_level", "info", parse_log_level, "debug, info, warning, error",
     "lowest level of lifecycle's log lines that is written"),
    (DECOMMISSION_SIGNAL, "decommission_signal", "PWR", parse_signal, "signal name or number",
     "signal sent to the executor (or standalone Worker) JVM to decommission it; must match "
     "spark.executor.decommission.signal (spark.worker.decommission.signal)"),
    (DECOMMISSION_TRIGGER, "decommission_trigger", "PWR", parse_trigger,
     "signal name or number lifecycle can catch (not CHLD, PIPE, TTIN, TTOU, SEGV…)",
     "signal that, sent to lifecycle, starts decommissioning (instead of being forwarded)"),
    (DECOMMISSION_TIMEOUT, "decommission_timeout", "", parse_optional_timeout, "duration (30, 25s, 500ms, 2m) or empty",
     "deadline for the JVM (a worker: every executor it launched) to exit after the decommission signal; then "
     "SIGTERM; empty waits as upstream"),
    (KILL_GRACE, "kill_grace", "10", parse_duration, DURATION,
     "after the decommission deadline's SIGTERM, wait this long, then SIGKILL"),
    (SIGNAL_GROUP, "signal_group", "false", parse_bool, "1, 0, true, false",
     "forward signals to the child's whole process group instead of the child alone (tini -g)"),
    (EXIT_REMAP, "exit_remap", "", parse_remap, "FROM:TO pairs, comma-separated (143:0)",
     "rewrite the child's exit code before lifecycle exits with it (tini -e, generalised)"),
    (TERMINATION_LOG, "termination_log", "/dev/termination-log", parse_path, "path, or empty to disable",
     "where the termination message goes; skipped quietly when absent or unwritable"),
    (ORPHAN_GRACE, "orphan_grace", "5", parse_duration, DURATION,
     "after the main child exits, how long remaining descendants get after SIGTERM before SIGKILL"),
    (HOOK_GRACE, "hook_grace", "5", parse_duration, DURATION,
     "how long lifecycle waits for an attached preStop decommission command to finish before exiting"),
    (PRE_LAUNCH_DIR, "pre_launch_dir", "/opt/lifecycle/pre-launch.d", parse_directory,
     "directory, or empty for none",
     "executables run in lexical order before the settings are validated; a missing directory holds none"),
    (PRE_LAUNCH_TIMEOUT, "pre_launch_timeout", "60", parse_timeout, "duration > 0",
     "how long each pre-launch script may run; then SIGTERM, and SIGKILL after LIFECYCLE_KILL_GRACE"),
    (PRE_LAUNCH_FAILURE, "pre_launch_failure", "stop", parse_failure_policy, "stop, warn",
     "a pre-launch script that fails or times out: stop (exit 69, nothing launched) or warn (go on without "
     "its exports)"),
    (POST_EXIT_DIR, "post_exit_dir", "/opt/lifecycle/post-exit.d", parse_directory, "directory, or empty for none",
     "executables run in lexical order after the main child exited (supervise mode); their failure never "
     "changes the exit code"),
    (POST_EXIT_TIMEOUT, "post_exit_timeout", "10", parse_timeout, "duration > 0",
     "how long the post-exit scripts may run, all together; then SIGTERM, and SIGKILL after LIFECYCLE_KILL_GRACE"),
))  # fmt: skip
BY_NAME = {knob.name: knob for knob in KNOBS}


class Knobs:
    """Validated runtime knobs; plain data, serialisable for the hand-over to the lean supervisor. Keyword arguments
    set attributes by Knob.attr, the others are their knob's parsed default. Not a dataclass (see the imports)."""

    __slots__ = tuple(knob.attr for knob in KNOBS)
    run_mode: str
    log_format: str
    log_level: str
    decommission_signal: int
    decommission_trigger: int
    decommission_timeout: float | None
    kill_grace: float
    signal_group: bool
    exit_remap: dict[int, int]
    termination_log: str
    orphan_grace: float
    hook_grace: float
    pre_launch_dir: str
    pre_launch_timeout: float
    pre_launch_failure: str
    post_exit_dir: str
    post_exit_timeout: float

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.__slots__)
        if unknown:
            raise TypeError(f"Knobs got unknown fields: {', '.join(sorted(unknown))}")
        for knob in KNOBS:
            value = values[knob.attr] if knob.attr in values else knob.parse(knob.default)
            object.__setattr__(self, knob.attr, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Knobs are read-only (tried to set {name})")

    def as_dict(self) -> dict[str, Any]:
        return {attr: getattr(self, attr) for attr in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Knobs) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable exit_remap inside: not hashable, as a dataclass

    def __repr__(self) -> str:
        return "Knobs(" + ", ".join(f"{attr}={value!r}" for attr, value in self.as_dict().items()) + ")"

    def to_json_dict(self) -> dict[str, Any]:
        data = self.as_dict()
        data["exit_remap"] = {str(k): v for k, v in self.exit_remap.items()}
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Knobs:
        values = dict(data)
        values["exit_remap"] = {int(k): int(v) for k, v in values.get("exit_remap", {}).items()}
        return cls(**values)


def problem(name: str, why: object) -> str:  # the line a bad value gives wherever it is validated
    return f"{name}: {why}"


def parse_knobs(environ: Environ = None, names: tuple[str, ...] | None = None, lenient: bool = False) -> dict[str, Any]:
    """The LIFECYCLE_* knobs that are set (all, or only `names`), parsed into {attr: value}; every problem is
    one line of a ConfigError, or, `lenient`, skipped (the default stands). Defaults are not filled in."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for knob in KNOBS:
        raw = env.get(knob.name) if names is None or knob.name in names else None
        if raw is None:
            continue
        try:
            values[knob.attr] = knob.parse(raw)
        except ValueError as exc:
            if not lenient:
                problems.append(problem(knob.name, exc))
    if problems:
        raise ConfigError(problems)
    return values


def load_knobs(environ: Environ = None, names: tuple[str, ...] | None = None, lenient: bool = False) -> Knobs:
    """Parse the LIFECYCLE_* knobs (all, or only `names`), with defaults for the rest."""
    return Knobs(**parse_knobs(environ, names, lenient))


def log_knobs(environ: Environ = None, lenient: bool = False) -> tuple[str, str]:
    """(log format, log level) alone, without building Knobs: the preStop command's first need (`lenient`: a bad
    value gives the default, which for these two is already its parsed value)."""
    values = parse_knobs(environ, (LOG_FORMAT, LOG_LEVEL), lenient)
    fmt, level = (str(values.get(BY_NAME[name].attr, BY_NAME[name].default)) for name in (LOG_FORMAT, LOG_LEVEL))
    return fmt, level
