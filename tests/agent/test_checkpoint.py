"""Checkpoints on disk: round trip, the journal (replacement, removal, compaction, a torn
last line), an earlier agent's files read and moved in, torn and garbage files ignored."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from pallet.agent.checkpoint import JOURNAL, CheckpointStore
from pallet.agent.events import SendStatus
from pallet.agent.recovery import Checkpoint, decode_checkpoint, encode_checkpoint
from pallet.agent.status import Reason, TaskState
from pallet.model import HealthResult

from .conftest import make_spec


def full_checkpoint(task_id: str = "web.1") -> Checkpoint:
    spec = make_spec(
        task_id,
        app_id="/shop/web",
        app_version="2024-01-01T00:00:00Z",
        cmd="sleep 600",
        env={"A": "1"},
        cpu_milli=250,
        mem_mib=64,
        ports=(31000, 31001),
        port_names=("http",),
        kill_grace_seconds=5.0,
        labels={"team": "shop"},
        health_checks=(
            {"protocol": "HTTP", "port": 31000, "path": "/health", "interval": 2.0},
            {"protocol": "COMMAND", "command": "test -f ready", "grace_period": 0.0},
        ),
    )
    assert len(spec.health_checks) == 2  # an adopted task keeps probing its checks
    return Checkpoint(
        spec=spec,
        pid=4242,
        start_time=123456,
        boot_id="d4a96bba-a29d-46dd-b9a3-a35e1ca3ee5c",
        state=TaskState.FAILED,
        seq=4,
        unacked=(
            SendStatus(task_id, TaskState.RUNNING, 2),
            SendStatus(  # a health report not yet acknowledged is resent as it was
                task_id,
                TaskState.RUNNING,
                3,
                healthy=False,
                health=(HealthResult(False, 2, 10.0, 10.0, 14.0, "HTTP 503"),),
            ),
            SendStatus(task_id, TaskState.FAILED, 4, Reason.COMMAND_EXECUTOR_FAILED, "boom", 2),
        ),
        cgroups={"memory": f"/sys/fs/cgroup/memory/pallet/n/{task_id}"},
        launched_at=1700000000.5,
    )


def test_encode_decode_round_trip() -> None:
    cp = full_checkpoint()
    assert decode_checkpoint(json.loads(json.dumps(encode_checkpoint(cp)))) == cp


def test_store_round_trip_and_remove(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    a, b = full_checkpoint("a.1"), full_checkpoint("b.1")
    store.write(a)
    store.write(b)
    store.write(replace(a, seq=5))
    store.write(a)  # replaced, not duplicated
    assert store.load() == [a, b]
    assert [p.name for p in store.directory.iterdir()] == [JOURNAL]  # one file, not one a task
    store.remove("a.1")
    store.remove("a.1")  # already gone: fine
    assert store.load() == [b]
    assert CheckpointStore(store.directory).load() == [b]  # what the next agent finds


def test_a_batch_is_one_append_and_the_journal_keeps_only_what_is_live(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    batch = [full_checkpoint(f"t.{i}") for i in range(50)]
    store.update(batch, ())
    size = store.journal.stat().st_size
    lines = store.journal.read_bytes().splitlines()
    assert len(lines) == 50
    for round_ in range(200):  # tasks ending and new ones coming, for a long time
        ended = [cp.task_id for cp in batch[:10]]
        batch = [*batch[10:], *(full_checkpoint(f"r{round_}.{i}") for i in range(10))]
        store.update(batch[-10:], ended)
    # compacted as it went: a few times the live records at most, not 200 rounds' worth
    assert store.journal.stat().st_size < 4 * size + (256 << 10) + size
    assert [cp.task_id for cp in CheckpointStore(tmp_path).load()] == sorted(
        cp.task_id for cp in batch
    )


def test_a_torn_last_line_is_ignored_and_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path)
    a, b = full_checkpoint("a.1"), full_checkpoint("b.1")
    store.update([a], ())
    store.close()
    with store.journal.open("ab") as f:  # the agent was killed in the middle of a write
        f.write(json.dumps(encode_checkpoint(b)).encode()[:100])
    again = CheckpointStore(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert again.load() == [a]
    assert any("cut short" in r.getMessage() for r in caplog.records)
    again.write(b)  # appended after the rewrite, not glued to the torn line
    assert CheckpointStore(tmp_path).load() == [a, b]


def test_an_earlier_agents_files_are_moved_into_the_journal(tmp_path: Path) -> None:
    a, b = full_checkpoint("a.1"), full_checkpoint("b.1")
    for cp in (a, b):  # how agents before the journal left them
        (tmp_path / f"{cp.task_id}.json").write_text(json.dumps(encode_checkpoint(cp)))
    store = CheckpointStore(tmp_path)
    assert store.load() == [a, b]
    assert [p.name for p in tmp_path.iterdir()] == [JOURNAL]
    store.remove("a.1")
    assert CheckpointStore(tmp_path).load() == [b]  # removed stays removed


@pytest.mark.parametrize(
    "content",
    [
        b"",  # created, never written
        b'{"version": 1, "task_id": "bad.1", "spec": {"task_id": "ba',  # torn mid-write
        b"\xff\xfe garbage",
        b"[1, 2, 3]",
        b'{"version": 99}',
        b'{"version": 1, "task_id": "bad.1", "spec": {"task_id": "bad.1", "cmd": "x"}, '
        b'"pid": "12", "start_time": 1, "boot_id": "b", "state": "TASK_RUNNING", "seq": 1}',
        b'{"version": 1, "task_id": "bad.1", "spec": {"task_id": "bad.1", "cmd": "x"}, '
        b'"pid": 12, "start_time": 1, "boot_id": "b", "state": "TASK_UNREACHABLE", "seq": 1}',
    ],
    ids=["empty", "torn", "binary", "not-an-object", "unknown-version", "pid-string", "state"],
)
def test_unreadable_checkpoint_is_set_aside_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path)
    good = full_checkpoint("good.1")
    store.write(good)
    (tmp_path / "bad.1.json").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert store.load() == [good]
    assert any(
        "ignoring checkpoint" in r.getMessage() and "bad.1" in r.getMessage()
        for r in caplog.records
    )
    assert (tmp_path / "bad.1.json.corrupt").exists()
    assert store.load() == [good]  # warned once, not on every start


def test_a_checkpoint_under_another_tasks_name_is_ignored(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    (tmp_path / "other.1.json").write_text(json.dumps(encode_checkpoint(full_checkpoint("x.1"))))
    assert store.load() == []


def test_an_interrupted_write_leaves_the_old_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    old = full_checkpoint("a.1")
    store.write(old)
    (tmp_path / "a.1.json.tmp").write_bytes(b'{"half')  # an earlier agent's, cut short
    (tmp_path / "journal.tmp").write_bytes(b'{"half')  # a rewrite, before its rename
    assert store.load() == [old]
    assert not (tmp_path / "a.1.json.tmp").exists()
    assert not (tmp_path / "journal.tmp").exists()
