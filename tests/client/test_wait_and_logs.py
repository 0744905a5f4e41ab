"""``watch_deployment`` against the master's real API and control, and log reading
against the fake (serving logs needs a real agent), on fake clocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from client.fake_master import FakeMaster
from client.real_master import RealMaster
from pallet.client import (
    Client,
    LogChunk,
    NotFound,
    ProtocolError,
    QueueItem,
    RejectCount,
    WaitTimeout,
    describe_waiting,
    watch_deployment,
)
from pallet.model.clock import FakeClock

STARTED = "2023-11-14T22:13:20.000Z"  # the real master's fake clock when it starts
LATER = "2023-11-14T22:14:00.000Z"


@pytest.fixture
def fake() -> FakeMaster:
    return FakeMaster()


@pytest.fixture
def client(fake: FakeMaster) -> Client:
    return Client(transport=fake.transport())


@pytest.fixture
def real() -> Iterator[RealMaster]:
    master = RealMaster()
    yield master
    master.close()


@pytest.fixture
def pallet(real: RealMaster) -> Iterator[Client]:
    with Client("http://master", transport=real.transport()) as client:
        yield client


def stepping(real: RealMaster) -> tuple[FakeClock, Callable[[float], None]]:
    """The watcher's clock, and a sleep that lets the cluster take a step."""
    clock = FakeClock(0.0)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        real.step(seconds)

    return clock, sleep


def test_progress_counts_up_until_the_deployment_is_done(real: RealMaster, pallet: Client) -> None:
    app = pallet.create_app({"id": "/web", "cmd": "x", "instances": 3, "cpus": 0.1, "mem": 32})
    clock, sleep = stepping(real)
    seen = list(watch_deployment(pallet, app.id, "0001", clock=clock, sleep=sleep, interval=0.5))
    assert [(p.running, p.target, p.active) for p in seen] == [(0, 3, True), (3, 3, False)]
    assert seen[-1].finished and not seen[0].finished
    assert [p.elapsed for p in seen] == [0.0, 0.5]


def test_without_a_deployment_id_the_apps_own_deployments_count(
    real: RealMaster, pallet: Client
) -> None:
    pallet.create_app({"id": "/web", "cmd": "x", "instances": 1, "cpus": 0.1, "mem": 32})
    clock, sleep = stepping(real)
    seen = list(watch_deployment(pallet, "/web", None, clock=clock, sleep=sleep))
    assert seen[-1].finished and seen[-1].running == 1


def test_timeout_names_what_holds_the_deployment_up(real: RealMaster, pallet: Client) -> None:
    # Two of these fit the two 1 GiB nodes; two wait.
    pallet.create_app({"id": "/web", "cmd": "x", "instances": 4, "cpus": 0.1, "mem": 600})
    real.step()
    task = next(iter(real.tasks().values()))
    real.clock.advance(1)
    real.report(task.node_id, task.id, "TASK_FAILED", message="Command exited with status 127")
    clock, sleep = stepping(real)
    with pytest.raises(WaitTimeout) as caught:
        for progress in watch_deployment(
            pallet, "/web", "0001", since=STARTED, timeout=10, clock=clock, sleep=sleep
        ):
            assert progress.waiting is not None and progress.waiting.count in (2, 3)
    assert str(caught.value) == (
        "deployment 0001 of /web did not finish within 10 s: 2 of 4 instances running; "
        "2 instances not placed: InsufficientMemory on 2 of 2 nodes; "
        "last task failure: TASK_FAILED Command exited with status 127; "
        "it goes on in the background; see `pallet app show /web`"
    )
    assert clock.now == 10.0


def test_failures_older_than_the_deployment_are_not_reported(
    real: RealMaster, pallet: Client
) -> None:
    pallet.create_app({"id": "/web", "cmd": "x", "instances": 1, "cpus": 0.1, "mem": 32})
    real.step()
    (task,) = real.tasks().values()
    real.clock.advance(10)
    real.report(task.node_id, task.id, "TASK_FAILED")
    clock = FakeClock(0.0)
    first = next(watch_deployment(pallet, "/web", "0001", since=LATER, clock=clock))
    assert first.failure is None
    first = next(watch_deployment(pallet, "/web", "0001", since=STARTED, clock=clock))
    assert first.failure is not None and first.failure.task_id == task.id


def test_removal_counts_tasks_down(real: RealMaster, pallet: Client) -> None:
    pallet.create_app({"id": "/web", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 32})
    real.step()
    ref = pallet.delete_app("/web")
    clock, sleep = stepping(real)
    seen = list(
        watch_deployment(pallet, "/web", ref.deployment_id, removing=True, clock=clock, sleep=sleep)
    )
    assert [p.running for p in seen] == [2, 0]
    assert seen[-1].finished and not real.tasks()


def test_an_app_removed_while_waiting(real: RealMaster, pallet: Client) -> None:
    pallet.create_app({"id": "/web", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 32})
    pallet.delete_app("/web", force=True)
    real.step()
    with pytest.raises(NotFound, match="app /web was removed while waiting"):
        next(watch_deployment(pallet, "/web", "0001", clock=FakeClock(0.0)))


@pytest.mark.parametrize(
    ("count", "delay", "overdue", "reasons", "text"),
    [
        (1, 0, True, (), "1 instance not placed"),
        (2, 30, False, (), "2 instances not placed: backing off for 30 s after failures"),
        (
            3,
            0,
            True,
            (RejectCount("UnfulfilledConstraint", 2, 4), RejectCount("InsufficientGpus", 2, 2)),
            "3 instances not placed: UnfulfilledConstraint on 2 of 4 nodes, "
            "InsufficientGpus on 2 of 2 nodes",
        ),
    ],
)
def test_describe_waiting(
    count: int, delay: int, overdue: bool, reasons: tuple[RejectCount, ...], text: str
) -> None:
    item = QueueItem("/web", count, delay, overdue, None, 4, reasons)
    assert describe_waiting(item) == text


def test_read_log_reads_to_the_end_in_chunks(fake: FakeMaster, client: Client) -> None:
    fake.logs[("t.1", "stdout")] = b"x" * 150_000
    chunks = list(client.read_log("t.1"))
    assert [len(c) for c in chunks] == [65536, 65536, 150_000 - 2 * 65536]
    assert list(client.read_log("t.1", offset=149_999)) == [b"x"]


def test_log_answers_in_json_say_where_they_begin(fake: FakeMaster, client: Client) -> None:
    fake.log_json = True
    fake.logs[("t.1", "stdout")] = "héllo\nwörld\n".encode()
    chunk = client.task_log("t.1", offset=-7)
    assert (chunk.data, chunk.offset, chunk.next_offset, chunk.size) == (
        b"w\xc3\xb6rld\n",
        7,
        14,
        14,
    )
    assert b"".join(client.read_log("t.1")) == "héllo\nwörld\n".encode()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"data": "aGk=", "encoding": "base64", "offset": 3}, LogChunk(b"hi", 3, 5)),
        ({"data": "hi"}, LogChunk(b"hi", 8, 10)),  # no offsets: the requested one
        ({"data": "", "offset": 8, "next_offset": 8, "size": 8}, LogChunk(b"", 8, 8, 8)),
    ],
)
def test_log_chunk_json_forms(doc: dict[str, object], expected: LogChunk) -> None:
    assert LogChunk.from_json(doc, requested=8) == expected


def test_a_log_chunk_with_bad_base64_is_named() -> None:
    with pytest.raises(ProtocolError, match=r"log\.data: expected base64 text"):
        LogChunk.from_json({"data": "%%%", "encoding": "base64"}, requested=0)


@pytest.mark.parametrize("log_json", [False, True])
def test_follow_log_waits_while_the_task_lives_and_stops_after_it_ends(
    fake: FakeMaster, client: Client, log_json: bool
) -> None:
    fake.log_json = log_json
    task_id = fake.start_task("/web")
    fake.logs[(task_id, "stdout")] = b""
    fake.log_growth[task_id] = [b"a\n", b"b\n", b"c\n"]
    sleeps: list[float] = []
    assert b"".join(client.follow_log(task_id, sleep=sleeps.append)) == b"a\nb\nc\n"
    assert sleeps and all(s == 0.5 for s in sleeps)
    # The last line, written as the task ended, was still read.
    assert fake.tasks[task_id]["state"] == "TASK_FINISHED"


def test_follow_log_of_a_task_that_does_not_exist(client: Client) -> None:
    with pytest.raises(NotFound):
        list(client.follow_log("nope.1", sleep=lambda s: None))


def test_follow_log_treats_a_missing_log_of_a_live_task_as_empty(
    fake: FakeMaster, client: Client
) -> None:
    task_id = fake.start_task("/web")
    reads = iter([False, False, True])

    def sleep(_seconds: float) -> None:
        # The agent starts serving the log after two polls; the task has already ended.
        if next(reads):
            fake.logs[(task_id, "stdout")] = b"done\n"
            fake.tasks[task_id]["state"] = "TASK_FINISHED"

    assert b"".join(client.follow_log(task_id, sleep=sleep)) == b"done\n"
