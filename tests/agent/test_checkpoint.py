"""Checkpoints on disk: round trip, atomic replacement, torn and garbage files ignored."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pallet.agent.checkpoint import CheckpointStore
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
        cpus=250,
        mem=64,
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
    store.write(a)  # replaced, not duplicated
    assert store.load() == [a, b]
    assert sorted(p.name for p in store.directory.iterdir()) == ["a.1.json", "b.1.json"]
    store.remove("a.1")
    store.remove("a.1")  # already gone: fine
    assert store.load() == [b]


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
    (tmp_path / "a.1.json.tmp").write_bytes(b'{"half')  # the crash came before the rename
    assert store.load() == [old]
    assert not (tmp_path / "a.1.json.tmp").exists()
