"""Scratch files for scripts (lifecycle/scratch.py) and finding scripts in their directory (lifecycle/scripts.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifecycle import scratch, scripts
from lifecycle.errors import EX_CONFIG, LifecycleError


def test_a_scratch_file_is_a_memfd_reached_through_proc() -> None:
    """The first choice should be an inheritable memfd named by /proc/self/fd/N: nothing on any filesystem."""
    made = scratch.ScratchFile.create("test")
    try:
        assert made.inherit and made.path == f"/proc/self/fd/{made.fd}"
        assert os.get_inheritable(made.fd)
        assert os.readlink(made.path).startswith("/memfd:lifecycle-test")
        with open(made.path, "a") as handle:  # what a script's `>>` does
            handle.write("A=1\n")
        assert made.read(100) == (b"A=1\n", True)
        assert made.read(2) == (b"A=", False)  # more than the limit: its first bytes, and that there is more
    finally:
        made.close()


def test_without_a_memfd_the_scratch_file_is_a_private_file_in_a_tmpfs_removed_on_close(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without memfd_create, the file should be a 0600 file of the first writable directory, gone after close."""
    monkeypatch.setattr(scratch, "FALLBACK_DIRS", (str(tmp_path / "missing"), str(tmp_path)))
    made = scratch.ScratchFile.create("test", memfd=False)
    path = Path(made.path)
    try:
        assert not made.inherit and path.parent == tmp_path
        assert (path.stat().st_mode & 0o777) == 0o600
        path.write_text("B=2\n")
        assert made.read(100) == (b"B=2\n", True)
    finally:
        made.close()
    assert not path.exists()


def test_finding_scripts_orders_by_name_and_skips_hidden_directories_and_non_executables(tmp_path: Path) -> None:
    """Executables should come in byte order of their names; dotfiles and directories are left out, files that
    are not executable (and dangling links) are named as skipped."""
    for name, mode in (("20-b", 0o755), ("10-a", 0o755), ("9-c", 0o700), (".hidden", 0o755), ("notes", 0o644)):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(mode)
    (tmp_path / "sub.d").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    found, skipped = scripts.find(str(tmp_path), "LIFECYCLE_PRE_LAUNCH_DIR")
    assert [script.name for script in found] == ["10-a", "20-b", "9-c"]
    assert skipped == ["dangling", "notes"]


def test_a_missing_directory_holds_no_scripts_and_empty_means_none(tmp_path: Path) -> None:
    """A directory that does not exist, or an empty setting, should give no scripts and no error."""
    assert scripts.find(str(tmp_path / "absent"), "LIFECYCLE_POST_EXIT_DIR") == ([], [])
    assert scripts.find("", "LIFECYCLE_POST_EXIT_DIR") == ([], [])


def test_a_file_instead_of_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    """A path that is not a directory should be exit 78 with one line naming the variable and what is accepted."""
    (tmp_path / "file").write_text("")
    with pytest.raises(LifecycleError) as caught:
        scripts.find(str(tmp_path / "file"), "LIFECYCLE_PRE_LAUNCH_DIR")
    assert caught.value.exit_code == EX_CONFIG
    assert caught.value.message == (f"LIFECYCLE_PRE_LAUNCH_DIR: {str(tmp_path / 'file')!r} is not a directory "
                                    "(expected a directory of executables, or empty for none)")  # fmt: skip


def test_no_place_for_the_env_file_stops_the_start_up_with_71(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without memfd_create and without a writable directory, a pre-launch script cannot be given LIFECYCLE_ENV_FILE:
    the start-up should stop with 71 (EX_OSERR), one line naming the script, before the script runs."""
    from lifecycle.errors import EX_OSERR
    from lifecycle.knobs import Knobs
    from lifecycle.launch import prelaunch
    from lifecycle.log import Log

    monkeypatch.delattr(os, "memfd_create")  # a kernel or seccomp profile without it
    monkeypatch.setattr(scratch, "FALLBACK_DIRS", (str(tmp_path / "none"),))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "none-either"))
    script = scripts.Script("10-x", str(tmp_path / "never-run"))
    with open(os.devnull, "w") as sink, pytest.raises(LifecycleError) as caught:
        log = Log(fd=sink.fileno())
        runner = scripts.Runner(log, scripts.PRE_LAUNCH, None, 1.0, set(), live=False)  # type: ignore[arg-type]
        prelaunch.run_one(log, runner, script, Knobs(), "executor")
    assert caught.value.exit_code == EX_OSERR
    assert caught.value.message.startswith("cannot create LIFECYCLE_ENV_FILE for pre-launch script 10-x: no "
                                           "memfd_create and no writable directory for it")  # fmt: skip
