"""Byte-range reads of task logs and following them (a fake sleep, no waiting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.agent import LogNotFound, read_log
from pallet.agent.logs import MAX_READ, LogChunk, follow_log


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
