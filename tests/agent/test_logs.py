"""Byte-range reads of task logs and following them (a fake sleep, no waiting)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pallet.agent import LogNotFound, read_log
from pallet.agent.logs import MAX_READ, LogChunk, follow_log
from pallet.agent.safeopen import UnsafePath, open_beneath


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "stdout"
    path.write_bytes(b"0123456789")
    return path


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, LogChunk(b"0123456789", 0, 10)),
        (3, 4, LogChunk(b"3456", 3, 10)),
        (8, 100, LogChunk(b"89", 8, 10)),
        (10, None, LogChunk(b"", 10, 10)),  # at the end: nothing yet
        (50, None, LogChunk(b"", 50, 10)),
        (-4, None, LogChunk(b"6789", 6, 10)),  # the last 4 bytes
        (-100, 2, LogChunk(b"01", 0, 10)),
        (0, 0, LogChunk(b"", 0, 10)),
    ],
)
def test_read_ranges(log: Path, offset: int, length: int | None, expected: LogChunk) -> None:
    assert read_log(log, offset, length) == expected


def test_reads_are_capped_and_errors_are_clear(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_READ + 10))
    assert len(read_log(big).data) == MAX_READ
    with pytest.raises(LogNotFound, match="no log file"):
        read_log(tmp_path / "absent")
    with pytest.raises(ValueError, match="length"):
        read_log(big, 0, -1)


def test_follow_yields_appends_then_stops_when_done_and_drained(log: Path) -> None:
    appends = [b"ab", b"", b"cd"]
    finished = []

    def fake_sleep(_: float) -> None:  # each pause, the "task" writes its next piece
        if appends:
            with open(log, "ab") as f:
                f.write(appends.pop(0))
        else:
            finished.append(True)

    chunks = list(follow_log(log, 10, done=lambda: bool(finished), sleep=fake_sleep))
    assert [c.data for c in chunks] == [b"ab", b"cd"]
    assert [c.offset for c in chunks] == [10, 12]


# ---------------------------------------------------------------- no link out of a sandbox


@pytest.fixture
def sandboxes(tmp_path: Path) -> Path:
    root = tmp_path / "sandboxes"
    (root / "web.1").mkdir(parents=True)
    (root / "web.1" / "stdout").write_bytes(b"mine\n")
    (root / "other.2").mkdir()
    (root / "other.2" / "stdout").write_bytes(b"a neighbour's secret\n")
    (tmp_path / "shadow").write_bytes(b"root:$6$hash\n")
    return root


def test_a_sandbox_log_reads_when_it_is_a_plain_file(sandboxes: Path) -> None:
    path = sandboxes / "web.1" / "stdout"
    assert read_log(path, beneath=sandboxes).data == b"mine\n"


def _symlinked_log(root: Path) -> Path:
    log = root / "web.1" / "stdout"
    log.unlink()
    log.symlink_to(root.parent / "shadow")
    return log


def _hard_linked_log(root: Path) -> Path:
    log = root / "web.1" / "stdout"
    log.unlink()
    os.link(root.parent / "shadow", log)
    return log


def _linked_sandbox(root: Path) -> Path:
    sandbox = root / "web.1"
    (sandbox / "stdout").unlink()
    sandbox.rmdir()
    sandbox.symlink_to(root / "other.2")
    return sandbox / "stdout"


def _fifo_log(root: Path) -> Path:
    log = root / "web.1" / "stdout"
    log.unlink()
    os.mkfifo(log)  # opening a FIFO for reading would block the agent's thread
    return log


def _directory_log(root: Path) -> Path:
    log = root / "web.1" / "stdout"
    log.unlink()
    log.mkdir()
    return log


@pytest.mark.parametrize(
    "attack", [_symlinked_log, _hard_linked_log, _linked_sandbox, _fifo_log, _directory_log]
)
def test_a_task_cannot_make_its_log_serve_another_file(
    sandboxes: Path, attack: Callable[[Path], Path]
) -> None:
    path = attack(sandboxes)
    with pytest.raises(LogNotFound, match="not a plain file of the sandbox"):
        read_log(path, beneath=sandboxes)
    with pytest.raises(LogNotFound):
        list(follow_log(path, done=lambda: True, beneath=sandboxes))


@pytest.mark.parametrize("path", ["../shadow", "web.1/../other.2/stdout", "/etc/passwd", ""])
def test_paths_that_leave_the_root_are_refused(sandboxes: Path, path: str) -> None:
    with pytest.raises(UnsafePath):
        os.close(open_beneath(sandboxes, path))


def test_a_missing_log_is_not_found(sandboxes: Path) -> None:
    with pytest.raises(LogNotFound, match="no log file"):
        read_log(sandboxes / "web.1" / "stderr", beneath=sandboxes)
    with pytest.raises(LogNotFound, match="no log file"):
        read_log(sandboxes / "gone.3" / "stdout", beneath=sandboxes)
