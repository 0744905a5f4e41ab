"""``pallet up`` reports a crash-looping agent to the master (``up_report``): when its
restarts change, again now and then while it backs off, never for a quiet agent; with a
fake master (``httpx.MockTransport``) and fake times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from pallet.master.restarts import RestartPolicy
from pallet.master.up_report import REFRESH, RETRY, SupervisorReports, supervisor_report

WALL = 1_800_000_000.0  # the wall clock when the monotonic one reads 0


class FakeMaster:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        import json

        self.got.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={})

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="http://master", transport=httpx.MockTransport(self.handle))


def _work_dir(tmp_path: Path, node_id: str | None) -> Path:
    if node_id is not None:
        (tmp_path / "node-id").write_text(node_id + "\n")
    return tmp_path


def test_the_report_puts_monotonic_times_on_the_wall_clock() -> None:
    policy = RestartPolicy(started_at=0.0)
    policy.exited(10.0)  # first exit: at once
    policy.started(10.0)
    policy.exited(12.0)  # second within a minute: backs off 1 s
    doc = supervisor_report(policy, "error: the disk is full", 12.5, WALL + 12.5)
    assert doc == {
        "supervisor": "pallet up",
        "restarts": 2,
        "exits_last_minute": 2,
        "backing_off_until": WALL + 13.0,
        "last_exit": WALL + 12.0,
        "last_line": "error: the disk is full",
    }


def test_reports_go_when_something_happens_and_while_it_matters(tmp_path: Path) -> None:
    master = FakeMaster()
    reports = SupervisorReports(master.client)
    policy = RestartPolicy(started_at=0.0)
    quiet = (_work_dir(tmp_path / "a", None), RestartPolicy(0.0), "")
    (tmp_path / "a").mkdir(exist_ok=True)
    agent = (_work_dir(tmp_path, "node-7"), policy, "boom")

    def tick(mono: float) -> int:
        return reports.tick([quiet, agent], mono, WALL + mono)

    assert tick(1.0) == 0  # nobody has exited: nothing to say
    policy.exited(2.0)
    policy.started(2.0)
    policy.exited(3.0)  # backing off until 4
    assert tick(3.0) == 1
    assert master.got[-1][0] == "/v1/nodes/node-7/supervisor"
    assert master.got[-1][1]["backing_off_until"] == WALL + 4.0
    assert tick(3.2) == 0  # unchanged
    policy.started(4.0)  # started again: no longer backing off
    assert tick(4.0) == 1 and master.got[-1][1]["backing_off_until"] is None
    # Exits age out of the last minute: the count is refreshed, at most every REFRESH s,
    # and once it reads 0 the report is left alone.
    assert tick(4.0 + REFRESH - 1) == 0
    assert tick(4.0 + REFRESH) == 1
    assert tick(70.0) == 1 and master.got[-1][1]["exits_last_minute"] == 0
    assert tick(70.0 + 5 * REFRESH) == 0
    assert len(master.got) == 4


def test_a_master_that_does_not_answer_is_tried_again_later(tmp_path: Path) -> None:
    master = FakeMaster()
    master.down = True
    reports = SupervisorReports(master.client)
    policy = RestartPolicy(started_at=0.0)
    policy.exited(1.0)
    agent = (_work_dir(tmp_path, "node-1"), policy, "")
    assert reports.tick([agent], 1.0, WALL) == 0
    master.down = False
    assert reports.tick([agent], 1.0 + RETRY / 2, WALL) == 0  # quiet for a while
    assert reports.tick([agent], 1.0 + RETRY, WALL) == 1
    reports.close()
