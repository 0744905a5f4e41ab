"""The etcd backend beyond the shared conformance suite: store URLs, several members (one
killed under reads, writes and a watch), members of other clusters, lost answers, and the
launcher's check that only our own members answer on our ports."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.store import (
    Compare,
    EventType,
    InvalidArgument,
    Put,
    StoreUnavailable,
    WrongCluster,
    check_store_url,
    open_store,
)
from pallet.store.etcd.server import (
    EtcdCluster,
    EtcdMember,
    EtcdStartError,
    etcd_available,
    free_ports,
    start_cluster,
    with_limits,
)
from pallet.store.etcd.url import parse_etcd_url
from pallet.store.txn import ETCD_MAX_REQUEST_BYTES, MAX_TXN_OPS

from .conftest import next_event, take


@pytest.mark.parametrize(
    ("url", "members", "cluster_id", "timeout"),
    [
        ("etcd://127.0.0.1", ("127.0.0.1:2379",), None, 10.0),
        ("etcd://H1:2379,h2:2380,h3", ("h1:2379", "h2:2380", "h3:2379"), None, 10.0),
        ("etcd://[::1]:2379,[::1]:2380/", ("[::1]:2379", "[::1]:2380"), None, 10.0),
        ("etcd://e.example:1?cluster_id=42&timeout=2.5", ("e.example:1",), 42, 2.5),
        ("etcd://e:1?cluster_id=0x2a", ("e:1",), 42, 10.0),
    ],
)
def test_etcd_urls_name_members_and_options(
    url: str, members: tuple[str, ...], cluster_id: int | None, timeout: float
) -> None:
    parsed = parse_etcd_url(url)
    assert (parsed.members, parsed.cluster_id, parsed.timeout) == (members, cluster_id, timeout)
    check_store_url(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("etcd://", "names no etcd member"),
        ("etcd://h1:2379,h1:2379", "lists member h1:2379 twice"),
        ("etcd://h1,H1:2379", "lists member h1:2379 twice"),  # the default port, any case
        ("etcd://h1:2379,", "not a valid host"),
        ("etcd://h1:0", "bad port"),
        ("etcd://h1:http", "bad port"),
        ("etcd://user:pw@h1:2379", "credentials"),
        ("etcd://h1:2379/pallet", "has a path"),
        ("etcd://bad_host:2379", "not a valid host"),
        ("etcd://[zz::1]:2379", "IPv6"),
        ("etcd://h1?cluster_id=0", "cluster_id"),
        ("etcd://h1?cluster_id=x", "cluster_id"),
        ("etcd://h1?timeout=0", "timeout"),
        ("etcd://h1?history=0", "history"),
        ("etcd://h1?members=3", "unknown option 'members'"),
        ("etcd://h1#frag", "fragment"),
    ],
)
def test_bad_etcd_urls_are_refused_before_anything_starts(url: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says) as err:
        check_store_url(url)
    assert err.value.argument == "url"
    with pytest.raises(InvalidArgument, match=says):
        asyncio.run(open_store(url, expiry_interval=None))


def test_no_member_answering_is_store_unavailable_naming_each() -> None:
    a, b = free_ports(2)

    async def main() -> None:
        store = await open_store(f"etcd://127.0.0.1:{a},127.0.0.1:{b}?timeout=0.3")
        try:
            with pytest.raises(StoreUnavailable) as err:
                await store.get("k")
            assert f"127.0.0.1:{a}: connection refused" in str(err.value)
            assert f"127.0.0.1:{b}: connection refused" in str(err.value)
            assert not err.value.outcome_unknown
        finally:
            await store.close()

    asyncio.run(main())


# Real etcd clusters from here on.

needs_etcd = pytest.mark.skipif(etcd_available() is not None, reason=str(etcd_available()))


@pytest.fixture(scope="module")
def etcd_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pallet-etcd-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def three(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = start_cluster(tmp_path / "three", 3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def other(etcd_root: Path) -> Iterator[EtcdCluster]:
    cluster = start_cluster(etcd_root / "other", 1)
    try:
        yield cluster
    finally:
        cluster.stop()


@needs_etcd
def test_a_killed_member_is_passed_over_and_a_watch_goes_on_elsewhere(
    three: EtcdCluster,
) -> None:
    leader = three.leader()
    victim = three.members[(leader + 1) % 3]  # a follower: writes need no new election
    rest = [m for m in three.members if m is not victim]
    url = f"etcd://{','.join(m.endpoint for m in [victim, *rest])}?cluster_id={three.cluster_id}"

    async def main() -> None:
        store = await open_store(url)
        try:
            r1 = await store.put("w/a", b"1")
            watch = await store.watch("w/", r1)
            assert (await next_event(watch)).revision == r1
            victim.kill()  # the member every call went to so far
            r2 = await store.put("w/b", b"2")  # refused by the dead one: sent to the next
            assert (await store.get("w/a")) is not None
            result = await store.txn([Compare.exists("w/b")], [Put("w/c", b"3")])
            assert result.succeeded
            events = await take(watch, 2)  # reopened on a live member from r1 + 1
            assert [(e.type, e.kv.key, e.revision) for e in events] == [
                (EventType.PUT, "w/b", r2),
                (EventType.PUT, "w/c", result.revision),
            ]
        finally:
            await store.close()

    asyncio.run(main())
    victim.start()
    three.wait_ready()  # it rejoins with its data, as one of ours


@needs_etcd
def test_members_of_another_cluster_are_refused(three: EtcdCluster, other: EtcdCluster) -> None:
    stranger = other.members[0].endpoint
    ours = ",".join(m.endpoint for m in three.members)

    async def main() -> None:
        # the stranger listed first: skipped, the call goes to our cluster
        store = await open_store(f"etcd://{stranger},{ours}?cluster_id={three.cluster_id}")
        try:
            await store.put("k", b"v")
            assert (await store.get("k")) is not None
        finally:
            await store.close()
        only_stranger = await open_store(f"etcd://{stranger}?cluster_id={three.cluster_id}")
        try:
            with pytest.raises(WrongCluster) as err:
                await only_stranger.get("k")
            assert err.value.found == str(other.cluster_id)
        finally:
            await only_stranger.close()
        # without a pinned id the first answer pins it: a later stranger is refused
        learning = await open_store(f"etcd://{three.members[0].endpoint}")
        try:
            await learning.get("k")
            assert learning.cluster_id == three.cluster_id  # type: ignore[attr-defined]
        finally:
            await learning.close()

    asyncio.run(main())


@contextlib.contextmanager
def answers_nothing() -> Iterator[str]:
    """A TCP server that reads a request and closes without answering: a member that
    died after a write reached it (a test double: etcd cannot be made to do this)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


@needs_etcd
def test_a_lost_answer_to_a_write_is_not_sent_again(other: EtcdCluster) -> None:
    real = other.members[0].endpoint

    async def main() -> None:
        url = f"etcd://{{}},{real}?cluster_id={other.cluster_id}"
        with answers_nothing() as mute:
            reader = await open_store(url.format(mute))
            writer = await open_store(url.format(mute))
            try:
                before = await reader.revision()  # a read is sent again, to the real member
                with pytest.raises(StoreUnavailable) as err:
                    await writer.put("lost", b"?")  # a write is not: it may have been applied
                assert err.value.outcome_unknown
                assert "may have been applied" in str(err.value)
                assert await reader.get("lost") is None
                assert await reader.revision() == before
            finally:
                await reader.close()
                await writer.close()

    asyncio.run(main())


@needs_etcd
def test_the_launcher_refuses_a_stranger_on_its_port(other: EtcdCluster, tmp_path: Path) -> None:
    real = other.members[0]
    impostor = EtcdMember("pallet-not-this-one-0", real.client_url, real.peer_url, tmp_path, [])
    impostor.process = real.process  # alive, but answering as another cluster's member
    with pytest.raises(EtcdStartError, match="not ours"):
        EtcdCluster("pallet-not-this-one", [impostor]).wait_ready(timeout=5)


def test_a_kept_member_is_started_with_the_limits_of_now() -> None:
    # pallet up keeps each member's command line; one kept by an older Pallet (etcd's
    # 128 operations) would refuse the master's larger decisions.
    old = ["etcd", "--name=m0", "--max-txn-ops=128", "--data-dir=/d"]
    new = with_limits(old)
    assert new[0] == "etcd" and "--name=m0" in new and "--data-dir=/d" in new
    assert f"--max-txn-ops={MAX_TXN_OPS}" in new and "--max-txn-ops=128" not in new
    assert f"--max-request-bytes={ETCD_MAX_REQUEST_BYTES}" in new
    assert with_limits(new) == new
