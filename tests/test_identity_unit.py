"""The pure half of the anonymous-UID passwd entry: the line upstream writes, and which way to provide it."""

from __future__ import annotations

import itertools

import pytest

from lifecycle.launch import identity


@pytest.mark.parametrize(
    ("user_name", "spark_home", "line"),
    [
        (None, "/opt/spark", "185:x:185:0:anonymous uid:/opt/spark:/bin/false"),
        ("", "/opt/spark", "185:x:185:0:anonymous uid:/opt/spark:/bin/false"),
        ("spark", "/opt/spark", "185:x:185:0:spark:/opt/spark:/bin/false"),
        ("Jane Doe", "/usr/lib/spark", "185:x:185:0:Jane Doe:/usr/lib/spark:/bin/false"),
        (" ", "/opt/spark", "185:x:185:0: :/opt/spark:/bin/false"),
        (None, None, "185:x:185:0:anonymous uid::/bin/false"),
        ("spark", "", "185:x:185:0:spark::/bin/false"),
    ],
)
def test_passwd_entry_is_upstreams_line(user_name: str | None, spark_home: str | None, line: str) -> None:
    """lifecycle should write upstream's entry: GECOS is SPARK_USER_NAME or 'anonymous uid', home is SPARK_HOME."""
    assert identity.passwd_entry(185, 0, user_name, spark_home) == line


def test_passwd_entry_uses_the_numeric_uid_as_login_and_the_gid() -> None:
    """lifecycle should name the user by its numeric uid and give its real gid, as upstream's `id -u`/`id -g` line."""
    assert identity.passwd_entry(1000620000, 1000620000, None, "/opt/spark") == (
        "1000620000:x:1000620000:1000620000:anonymous uid:/opt/spark:/bin/false"
    )


def test_passwd_entry_has_the_seven_passwd_fields() -> None:
    """lifecycle should produce a line with exactly the seven colon-separated passwd fields."""
    fields = identity.passwd_entry(185, 0, "spark", "/opt/spark").split(":")
    assert fields == ["185", "x", "185", "0", "spark", "/opt/spark", "/bin/false"]


ENTRY = "185:x:185:0:anonymous uid:/opt/spark:/bin/false"
LIBRARY = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"


@pytest.mark.parametrize(
    ("library", "writable"),
    list(itertools.product([LIBRARY, None, ""], [True, False])),
)
def test_choose_identity_when_an_entry_exists_does_nothing(library: str | None, writable: bool) -> None:
    """lifecycle should leave a uid that already has a passwd entry alone, whatever else is available."""
    assert identity.choose_identity(185, 0, True, ENTRY, library, writable) == identity.Identity(
        185, 0, identity.PRESENT
    )


@pytest.mark.parametrize("writable", [True, False])
def test_choose_identity_prefers_nss_wrapper(writable: bool) -> None:
    """lifecycle should use nss_wrapper when it is installed, even if /etc/passwd is writable (nothing on disk)."""
    assert identity.choose_identity(185, 0, False, ENTRY, LIBRARY, writable) == identity.Identity(
        185, 0, identity.NSS_WRAPPER, ENTRY, LIBRARY
    )


@pytest.mark.parametrize("library", [None, ""])
def test_choose_identity_without_nss_wrapper_appends_when_writable(library: str | None) -> None:
    """lifecycle should append the entry to /etc/passwd, as upstream, when nss_wrapper is absent and it is writable."""
    assert identity.choose_identity(185, 0, False, ENTRY, library, True) == identity.Identity(
        185, 0, identity.APPEND, ENTRY
    )


@pytest.mark.parametrize("library", [None, ""])
def test_choose_identity_with_no_way_to_add_an_entry_gives_none(library: str | None) -> None:
    """lifecycle should decide on no entry (a warning later) when there is neither nss_wrapper nor a writable passwd."""
    assert identity.choose_identity(185, 0, False, ENTRY, library, False) == identity.Identity(
        185, 0, identity.NONE, ENTRY
    )


def test_identity_actions_are_four_distinct_names() -> None:
    """lifecycle should have exactly four identity decisions, with the documented names."""
    assert [identity.PRESENT, identity.NSS_WRAPPER, identity.APPEND, identity.NONE] == [
        "present",
        "nss_wrapper",
        "append",
        "none",
    ]
