"""``pallet store copy`` and ``compact``, and backing up and restoring a store: a logical copy
between any two stores, and etcd's own snapshot, restored into a new cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pallet.cli.main import main
from pallet.store import Compacted, Store, open_store
from pallet.store.etcd.server import ETCDCTL_BINARY, running_etcd, spawn_cluster

from .conftest import EtcdPool


@dataclass
class Result:
    code: int
    out: str
    err: str


def pallet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Result:
    monkeypatch.setattr(sys, "argv", ["pallet", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return Result(code, out, err)


async def _fill(url: str) -> list[tuple[str, bytes]]:
    """300 keys (three transactions' worth), binary values, one key held by a lease."""
    store = await open_store(url, expiry_interval=None)
    try:
        for i in range(300):
            await store.put(f"/pallet/tasks/{i:04}", bytes([i % 256]) * (i % 7) + b"\x00\xff")
        await store.put("/pallet/cluster-id", "é".encode())
        await store.put("/pallet/leader", b"m1", lease=await store.grant(60))
        kvs, _ = await store.list("")
        return [(kv.key, kv.value) for kv in kvs if not kv.lease]
    finally:
        await store.close()


async def _contents(url: str) -> list[tuple[str, bytes]]:
    store = await open_store(url, expiry_interval=None)
    try:
        kvs, _ = await store.list("")
        return [(kv.key, kv.value) for kv in kvs]
    finally:
        await store.close()


def test_copy_sqlite_to_etcd_and_back(
    tmp_path: Path,
    etcd_pool: EtcdPool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqlite = f"sqlite://{tmp_path / 'state.db'}"
    expected = asyncio.run(_fill(sqlite))
    cluster = etcd_pool.take()
    try:
        done = pallet(monkeypatch, capsys, "store", "copy", sqlite, cluster.url)
        assert done.code == 0, done.err
        assert "copied 301 keys" in done.out and "left out 1 keys held by a lease" in done.out
        assert asyncio.run(_contents(cluster.url)) == expected
        again = pallet(monkeypatch, capsys, "store", "copy", sqlite, cluster.url)
        assert again.code == 2 and "already holds 301 keys" in again.err  # nothing overwritten
        restored = f"sqlite://{tmp_path / 'restored.db'}"
        back = pallet(monkeypatch, capsys, "store", "copy", cluster.url, restored, "--json")
        assert back.code == 0, back.err
        assert '"keys": 301' in back.out
        assert asyncio.run(_contents(restored)) == expected
    finally:
        etcd_pool.release(cluster)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["copy", "sqlite:a.db", "sqlite:a.db"], "DESTINATION: is the source itself"),
        (
            ["copy", "etcd://h:1,h:1", "memory://"],
            "SOURCE: 'etcd://h:1,h:1' lists member h:1 twice",
        ),
        (["copy", "memory://", "etcd:/"], "DESTINATION: 'etcd:/' names no etcd member"),
        (["copy", "sqlite:///no/such/file.db", "memory://"], "SOURCE: no such file"),
        (["compact", "sqlite:///no/such/file.db"], "URL: no such file"),
        (["compact", "memory://", "--keep", "0"], "--keep: keep at least 1 revision"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(
    args: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pallet(monkeypatch, capsys, "store", *args)
    assert done.code == 2
    assert done.err.startswith("error: ") and says in done.err
    assert "Traceback" not in done.err


def test_compact_keeps_the_last_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"

    async def write() -> int:
        store = await open_store(url, expiry_interval=None)
        try:
            for i in range(20):
                await store.put("k", str(i).encode())
            return await store.revision()
        finally:
            await store.close()

    revision = asyncio.run(write())
    done = pallet(monkeypatch, capsys, "store", "compact", url, "--keep", "5", "--json")
    assert done.code == 0, done.err
    assert f'"oldest_kept": {revision - 4}' in done.out

    async def check() -> None:
        store = await open_store(url, expiry_interval=None)
        try:
            with pytest.raises(Compacted):
                await store.watch("k", revision - 5)
            watch = await store.watch("k", revision - 4)
            assert [(await anext(watch)).kv.value for _ in range(5)] == [
                str(i).encode() for i in range(15, 20)
            ]
            await watch.aclose()
        finally:
            await store.close()

    asyncio.run(check())


def test_an_etcd_snapshot_restores_keys_and_revisions_in_a_new_cluster(tmp_path: Path) -> None:
    """The backup documented for etcd: ``etcdctl snapshot save`` while masters run, and
    ``etcdctl snapshot restore`` into a new cluster (here through the launcher)."""
    snapshot = tmp_path / "pallet.snapshot"

    async def write(url: str) -> tuple[list[tuple[str, bytes]], int]:
        expected = await _fill(url)
        store = await open_store(url, expiry_interval=None)
        try:
            return expected, await store.revision()
        finally:
            await store.close()

    with running_etcd(tmp_path / "live") as live:
        expected, revision = asyncio.run(write(live.url))
        saved = subprocess.run(
            [
                ETCDCTL_BINARY,
                f"--endpoints={live.members[0].client_url}",
                "snapshot",
                "save",
                str(snapshot),
            ],
            env={**os.environ, "ETCDCTL_API": "3"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert saved.returncode == 0, saved.stderr
    restored = spawn_cluster(tmp_path / "restored", 3, snapshot=snapshot)
    try:
        restored.wait_ready()

        async def check() -> None:
            store: Store = await open_store(restored.url, expiry_interval=None)
            try:
                assert await store.revision() == revision  # revisions kept, unlike a copy
                kvs, _ = await store.list("")
                assert [(kv.key, kv.value) for kv in kvs if not kv.lease] == expected
            finally:
                await store.close()

        asyncio.run(check())
    finally:
        restored.stop()
