"""The stdlib-only knob parsers and load_knobs (used by the lean supervisor and the preStop command)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle import knobs
from lifecycle.errors import EX_CONFIG, ConfigError
from tests.helpers.inputs import SetEnv

# --- parse_signal --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("PWR", signal.SIGPWR),
        ("SIGPWR", signal.SIGPWR),
        ("sigterm", signal.SIGTERM),
        ("term", signal.SIGTERM),
        (" USR1 ", signal.SIGUSR1),
        ("30", 30),
        ("15", 15),
        ("1", 1),
        (str(signal.NSIG - 1), signal.NSIG - 1),
        ("RTMIN", signal.SIGRTMIN),
    ],
)
def test_parse_signal_accepts_catchable_names_and_numbers(raw: str, number: int) -> None:
    """lifecycle should accept a catchable signal by name, with or without SIG and in any case, or by number."""
    assert knobs.parse_signal(raw) == number


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("KILL", "SIGKILL cannot be caught, so it cannot drain anything; got 'KILL'"),
        ("SIGSTOP", "SIGSTOP cannot be caught, so it cannot drain anything; got 'SIGSTOP'"),
        ("9", "SIGKILL cannot be caught, so it cannot drain anything; got '9'"),
        ("19", "SIGSTOP cannot be caught, so it cannot drain anything; got '19'"),
        ("0", f"expected a signal name like PWR or a number 1-{signal.NSIG - 1}, got '0'"),
        ("99", f"expected a signal name like PWR or a number 1-{signal.NSIG - 1}, got '99'"),
        (str(signal.NSIG), f"expected a signal name like PWR or a number 1-{signal.NSIG - 1}, got '{signal.NSIG}'"),
        ("FOO", "expected a signal name like PWR, TERM or USR1, or a number, got 'FOO'"),
        ("", "expected a signal name like PWR, TERM or USR1, or a number, got ''"),
        ("-15", "expected a signal name like PWR, TERM or USR1, or a number, got '-15'"),
        ("SIG_DFL", "expected a signal name like PWR, TERM or USR1, or a number, got 'SIG_DFL'"),
    ],
)
def test_parse_signal_refuses_uncatchable_unknown_and_out_of_range(raw: str, message: str) -> None:
    """lifecycle should refuse KILL, STOP, unknown names and numbers outside 1..NSIG-1, saying what is accepted."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_signal(raw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("number", "name"),
    [(15, "SIGTERM"), (30, "SIGPWR"), (signal.SIGRTMIN + 3, "SIGRTMIN+3")],
)
def test_signal_name_gives_the_symbolic_name(number: int, name: str) -> None:
    """lifecycle should print signals by name, real-time ones in the documented SIGRTMIN+3 style."""
    assert knobs.signal_name(number) == name


# --- parse_duration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("30", 30.0),
        ("0", 0.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        (" 1.5 s ", 1.5),
        ("007", 7.0),
    ],
)
def test_parse_duration_accepts_numbers_with_an_optional_unit(raw: str, seconds: float) -> None:
    """lifecycle should read a duration as seconds, with ms, s or m as an optional unit."""
    assert knobs.parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "abc", "-1", "+1", "1h", "1e3", "1.", "1 2", "inf", "nan", "5 ms s", "1_000"])
def test_parse_duration_refuses_anything_else(raw: str) -> None:
    """lifecycle should refuse a duration that is not a plain non-negative number with an optional unit."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_duration(raw)
    assert str(caught.value) == f"expected a duration like 30, 2.5s, 500ms or 2m, got {raw!r}"


def test_parse_duration_refuses_a_number_too_large_to_be_finite() -> None:
    """lifecycle should refuse a duration that overflows to infinity."""
    raw = "9" * 400
    assert math.isinf(float(raw))
    with pytest.raises(ValueError) as caught:
        knobs.parse_duration(raw)
    assert str(caught.value) == f"expected a finite duration, got {raw!r}"


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("  ", None), ("25s", 25.0), ("0.1", 0.1)])
def test_parse_optional_timeout_reads_empty_as_no_deadline(raw: str, expected: float | None) -> None:
    """lifecycle should read an empty decommission timeout as 'wait until the JVM exits', as upstream's decom.sh."""
    assert knobs.parse_optional_timeout(raw) == expected


@pytest.mark.parametrize("raw", ["0", "0s", "0ms"])
def test_parse_optional_timeout_refuses_zero(raw: str) -> None:
    """lifecycle should refuse a zero decommission timeout, which would skip decommissioning altogether."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_optional_timeout(raw)
    assert str(caught.value) == f"expected a duration > 0, got {raw!r}"


# --- parse_bool ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("TRUE", True), (" True ", True), ("0", False), ("false", False), ("False", False)],
)
def test_parse_bool_accepts_only_documented_values(raw: str, value: bool) -> None:
    """lifecycle should read 1/true as on and 0/false as off, in any case."""
    assert knobs.parse_bool(raw) is value


@pytest.mark.parametrize("raw", ["", " ", "yes", "no", "on", "off", "y", "2", "enabled", "-1"])
def test_parse_bool_never_switches_on_by_presence_alone(raw: str) -> None:
    """lifecycle should refuse '', 'yes' and every other undocumented value, so presence alone switches nothing on."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_bool(raw)
    assert str(caught.value) == f"expected 1, 0, true or false, got {raw!r}"


# --- parse_remap ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mapping"),
    [
        ("", {}),
        ("143:0", {143: 0}),
        ("143:0,130:0", {143: 0, 130: 0}),
        (" 143 : 0 , 1:2 ", {143: 0, 1: 2}),
        ("143:0,,", {143: 0}),
        ("1:2,1:3", {1: 3}),
        ("255:255", {255: 255}),
    ],
)
def test_parse_remap_reads_from_to_pairs(raw: str, mapping: dict[int, int]) -> None:
    """lifecycle should read an exit-code remap as comma-separated FROM:TO pairs, the last pair for a code winning."""
    assert knobs.parse_remap(raw) == mapping


@pytest.mark.parametrize("raw", ["143", "143=0", "143:0:1", "a:b", "-1:0", "143:", ":0", "{143: 0}"])
def test_parse_remap_refuses_malformed_pairs(raw: str) -> None:
    """lifecycle should refuse a remap that is not FROM:TO pairs, quoting the whole value."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_remap(raw)
    assert str(caught.value) == f"expected FROM:TO pairs separated by commas, like 143:0, got {raw!r}"


@pytest.mark.parametrize(("raw", "item"), [("256:0", "256:0"), ("143:0,1:999", "1:999")])
def test_parse_remap_refuses_codes_outside_0_to_255(raw: str, item: str) -> None:
    """lifecycle should refuse exit codes a process cannot have, quoting the offending pair."""
    with pytest.raises(ValueError) as caught:
        knobs.parse_remap(raw)
    assert str(caught.value) == f"exit codes are 0-255, got {item!r}"


# --- load_knobs ----------------------------------------------------------------------------------------------


def test_load_knobs_when_nothing_is_set_gives_the_defaults() -> None:
    """lifecycle should use every knob's documented default when no LIFECYCLE_* variable is set."""
    assert knobs.load_knobs() == knobs.Knobs()
    assert knobs.load_knobs({}) == knobs.Knobs(
        run_mode="supervise",
        log_format="text",
        log_level="info",
        decommission_signal=int(signal.SIGPWR),
        decommission_trigger=int(signal.SIGPWR),
        decommission_timeout=None,
        kill_grace=10.0,
        signal_group=False,
        exit_remap={},
        termination_log="/dev/termination-log",
        orphan_grace=5.0,
        hook_grace=5.0,
    )


def test_load_knobs_reads_os_environ_by_default(set_env: SetEnv) -> None:
    """lifecycle should read the process environment when no mapping is given."""
    set_env(LIFECYCLE_DECOMMISSION_SIGNAL="USR2", LIFECYCLE_EXIT_REMAP="143:0", LIFECYCLE_SIGNAL_GROUP="1")
    loaded = knobs.load_knobs()
    assert (loaded.decommission_signal, loaded.exit_remap, loaded.signal_group) == (signal.SIGUSR2, {143: 0}, True)


def test_load_knobs_when_several_are_bad_gives_one_line_each() -> None:
    """lifecycle should report every bad knob at once, one line each naming the variable, in the documented order."""
    environ = {
        knobs.HOOK_GRACE: "forever",
        knobs.SIGNAL_GROUP: "",
        knobs.DECOMMISSION_SIGNAL: "STOP",
        knobs.RUN_MODE: "daemon",
        knobs.EXIT_REMAP: "143",
        knobs.KILL_GRACE: "10",
    }
    with pytest.raises(ConfigError) as caught:
        knobs.load_knobs(environ)
    lines = [
        "LIFECYCLE_RUN_MODE: expected one of supervise, exec, got 'daemon'",
        "LIFECYCLE_DECOMMISSION_SIGNAL: SIGSTOP cannot be caught, so it cannot drain anything; got 'STOP'",
        "LIFECYCLE_SIGNAL_GROUP: expected 1, 0, true or false, got ''",
        "LIFECYCLE_EXIT_REMAP: expected FROM:TO pairs separated by commas, like 143:0, got '143'",
        "LIFECYCLE_HOOK_GRACE: expected a duration like 30, 2.5s, 500ms or 2m, got 'forever'",
    ]
    assert caught.value.problems == lines
    assert str(caught.value).splitlines() == lines
    assert caught.value.exit_code == EX_CONFIG


def test_lenient_knobs_take_the_default_for_a_bad_value() -> None:
    """lifecycle should read knobs leniently before its settings are validated: a bad value is the default then."""
    environ = {knobs.LOG_FORMAT: " JSON ", knobs.LOG_LEVEL: "loud", knobs.KILL_GRACE: "soon", knobs.HOOK_GRACE: "2s"}
    assert knobs.log_knobs(environ, lenient=True) == ("json", "info")
    assert knobs.load_knobs(environ, lenient=True) == knobs.Knobs(log_format="json", hook_grace=2.0)
    with pytest.raises(ConfigError) as caught:
        knobs.log_knobs(environ)
    assert caught.value.problems == ["LIFECYCLE_LOG_LEVEL: expected one of debug, info, warning, error, got 'loud'"]


def test_log_knobs_when_unset_are_the_documented_defaults() -> None:
    """lifecycle should log text at info level when neither log knob is set, as the table says."""
    assert knobs.log_knobs({}) == (knobs.BY_NAME[knobs.LOG_FORMAT].default, knobs.BY_NAME[knobs.LOG_LEVEL].default)
    assert knobs.log_knobs({}) == ("text", "info")


def test_knobs_module_imports_nothing_heavy() -> None:
    """lifecycle's knob module should load without pydantic, typing, dataclasses, enum or re: the preStop command
    imports it, and its start-up counts against the pod's grace period."""
    probe = "import sys; before = set(sys.modules); import lifecycle.knobs; print(*sorted(set(sys.modules) - before))"
    root = str(Path(knobs.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-S", "-c", probe], env={"PYTHONPATH": root, **os.environ},
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    loaded = set(done.stdout.split())
    assert "lifecycle.knobs" in loaded
    assert not loaded & {"pydantic", "pydantic_settings", "typing", "dataclasses", "enum", "re", "signal"}


def test_load_knobs_with_names_reads_only_those() -> None:
    """lifecycle should parse only the named knobs when asked, ignoring bad values of the others."""
    environ = {knobs.RUN_MODE: "daemon", knobs.DECOMMISSION_TIMEOUT: "45s"}
    assert knobs.load_knobs(environ, names=(knobs.DECOMMISSION_TIMEOUT,)) == knobs.Knobs(decommission_timeout=45.0)


def test_knobs_survive_the_json_hand_over() -> None:
    """lifecycle should hand knobs to the lean supervisor through JSON without changing them."""
    import json

    original = knobs.Knobs(exit_remap={143: 0, 1: 2}, decommission_timeout=30.0, signal_group=True)
    assert knobs.Knobs.from_json_dict(json.loads(json.dumps(original.to_json_dict()))) == original


def test_every_knob_is_named_once_with_the_lifecycle_prefix() -> None:
    """lifecycle should define each knob's variable once, prefixed LIFECYCLE_, with a distinct attribute."""
    names = [knob.name for knob in knobs.KNOBS]
    attrs = [knob.attr for knob in knobs.KNOBS]
    assert len(set(names)) == len(names) == len(set(attrs)) == 17
    assert all(name.startswith("LIFECYCLE_") for name in names)
    assert set(attrs) == set(knobs.Knobs.__slots__)
