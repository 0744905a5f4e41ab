"""``pallet task ...`` and ``pallet node ...`` against a fake master."""

from __future__ import annotations

import json

import pytest

from client.fake_master import FakeMaster
from pallet.model.clock import FakeClock

from .conftest import Run


def two_tasks(fake: FakeMaster) -> list[str]:
    fake.apps["/web"] = {"id": "/web", "cmd": "x", "instances": 2}
    fake.apps["/db"] = {"id": "/db", "cmd": "y", "instances": 1}
    for app_id in ("/web", "/web", "/db"):
        fake._start_task(app_id)
    return sorted(fake.tasks)


def test_task_list_shows_every_task_with_its_app(run: Run, fake: FakeMaster) -> None:
    ids = two_tasks(fake)
    result = run("task", "list")
    assert result.code == 0, result.err
    for task_id in ids:
        row = next(line for line in result.out.splitlines() if task_id in line)
        assert "RUNNING" in row and "node-1" in row
    assert "/db" in result.out and "/web" in result.out


def test_task_list_of_one_app_and_json(run: Run, fake: FakeMaster) -> None:
    two_tasks(fake)
    docs = json.loads(run("task", "list", "web", "--json").out)
    assert {d["appId"] for d in docs} == {"/web"} and len(docs) == 2
    assert fake.requests[-1].url.path == "/v2/apps/web/tasks"
    assert "No tasks of /nope." not in run("task", "list", "/web").out


def test_task_list_when_empty(run: Run) -> None:
    assert run("task", "list").out.strip() == "No tasks."
    assert json.loads(run("task", "list", "--json").out) == []


def test_task_logs_prints_stdout_or_stderr(run: Run, fake: FakeMaster) -> None:
    (task_id, *_) = two_tasks(fake)
    fake.logs[(task_id, "stdout")] = b"hello from the task\n"
    fake.logs[(task_id, "stderr")] = b"a warning\n"
    assert run("task", "logs", task_id).out == "hello from the task\n"
    assert run("task", "logs", task_id, "--stderr").out == "a warning\n"
    assert fake.requests[-2].url.params["stream"] == "stderr"


def test_task_logs_follow_reads_until_the_task_ends(
    run: Run, fake: FakeMaster, clock: FakeClock
) -> None:
    (task_id, *_) = two_tasks(fake)
    fake.logs[(task_id, "stdout")] = b"line 1\n"
    fake.log_growth[task_id] = [b"line 2\n", b"line 3\n"]
    result = run("task", "logs", task_id, "--follow")
    assert result.code == 0, result.err
    assert result.out == "line 1\nline 2\nline 3\n"
    offsets = [r.url.params["offset"] for r in fake.calls("GET", "/v1/tasks/")]
    assert offsets[0] == "0" and offsets[-1] == str(len(result.out))
    assert clock.sleeps  # it waited (on the fake clock) while the task was quiet


def test_task_logs_of_an_unknown_task(run: Run) -> None:
    result = run("task", "logs", "nope.1")
    assert result.code == 2
    assert "404 Task 'nope.1' does not exist" in result.err


def test_task_kill_reports_each_task_and_the_ones_left_alone(run: Run, fake: FakeMaster) -> None:
    (first, second, _) = two_tasks(fake)
    result = run("task", "kill", first, "gone.1")
    assert result.code == 0, result.err
    assert f"Killed {first} (" in result.out
    assert "Not running, left alone: gone.1" in result.out
    (post,) = fake.calls("POST", "/v2/tasks/delete")
    assert json.loads(post.content) == {"ids": [first, "gone.1"]}
    assert post.url.params["scale"] == "false"
    assert second in fake.tasks and first not in fake.tasks


def test_task_kill_with_scale_starts_a_deployment(run: Run, fake: FakeMaster) -> None:
    (first, *_) = two_tasks(fake)
    app_id = fake.tasks[first]["appId"]
    before = fake.apps[app_id]["instances"]
    result = run("task", "kill", first, "--scale")
    assert result.code == 0, result.err
    assert "Killing 1 task and scaling down (deployment dep-1)" in result.out
    assert fake.apps[app_id]["instances"] == before - 1
    assert json.loads(run("task", "kill", "gone.1", "--json").out) == {"tasks": []}


def test_node_list_table_and_json(run: Run, fake: FakeMaster) -> None:
    two_tasks(fake)
    result = run("node", "list")
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "node-1 " in line)
    assert "ACTIVE" in row and "0.5/4" in row and "256/8192" in row and " 3 " in row
    docs = json.loads(run("node", "list", "--json").out)
    assert [d["id"] for d in docs] == ["node-1", "node-2"]
    assert docs[0]["capacity"]["ports"] == ["31000-32000"]


def test_node_show_details_and_tasks(run: Run, fake: FakeMaster) -> None:
    ids = two_tasks(fake)
    result = run("node", "show", "node-1")
    assert result.code == 0, result.err
    assert "rack=r1, zone=a" in result.out and "31000-32000" in result.out
    assert all(task_id in result.out for task_id in ids)
    used = next(line for line in result.out.splitlines() if "used" in line)
    assert "0.02" in used and "40.5" in used
    doc = json.loads(run("node", "show", "node-1", "--json").out)
    assert len(doc["task_details"]) == 3


def test_node_show_unknown(run: Run) -> None:
    result = run("node", "show", "node-9")
    assert result.code == 2
    assert result.err.strip() == "error: GET /v1/nodes/node-9: 404 Node 'node-9' does not exist"


def test_node_list_when_empty(run: Run, fake: FakeMaster) -> None:
    fake.nodes = []
    assert "No nodes. Start agents with `pallet up`" in run("node", "list").out


def test_a_narrow_terminal_keeps_each_row_on_one_line(
    run: Run, fake: FakeMaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pallet.cli import common

    fake.apps["/demo/hello"] = {"id": "/demo/hello", "cmd": "x", "instances": 1}
    fake._start_task("/demo/hello")
    (short_id,) = fake.tasks
    long_id = "demo_hello.110af751-38d2-4e98-b207-2b77afae7994"
    fake.tasks[long_id] = fake.tasks.pop(short_id) | {"id": long_id}
    monkeypatch.setattr(common.console, "width", 80)
    result = run("task", "list")
    row = next(line for line in result.out.splitlines() if long_id in line)
    assert "/demo/hello" in row and "RUNNING" in row and "node-1.local" in row
