"""The sandbox root is marked a top directory for ext4's inode allocator (``topdir``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pallet.agent import Executor
from pallet.agent.topdir import mark_top_directory


def _flags(path: Path) -> str | None:
    """The inode flags ``lsattr`` shows for ``path``; None where the filesystem has none."""
    lsattr = shutil.which("lsattr")
    if lsattr is None:
        pytest.skip("lsattr (e2fsprogs) is not installed")
    done = subprocess.run([lsattr, "-d", str(path)], capture_output=True, text=True)
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout else None


def test_a_directory_is_marked_where_the_filesystem_keeps_the_flag(tmp_path: Path) -> None:
    d = tmp_path / "root"
    d.mkdir()
    marked = mark_top_directory(d)
    flags = _flags(d)
    assert marked == (flags is not None and "T" in flags), (marked, flags)
    assert mark_top_directory(d) is marked  # again: nothing changes, nothing fails


def test_what_cannot_be_marked_is_left_alone(tmp_path: Path) -> None:
    assert mark_top_directory(tmp_path / "missing") is False
    f = tmp_path / "file"
    f.write_text("x")
    assert mark_top_directory(f) is False
    assert f.read_text() == "x"


def test_the_executor_marks_its_sandbox_root(executor: Executor) -> None:
    flags = _flags(executor.sandbox_root)
    if flags is None or not mark_top_directory(executor.sandbox_root.parent):
        pytest.skip(f"{executor.sandbox_root}: the filesystem keeps no inode flags")
    assert "T" in flags
