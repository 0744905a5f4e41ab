"""``pallet task ...`` and ``pallet node ...`` against the master's real API and control
(task logs against the fake: serving them needs a real agent)."""

from __future__ import annotations

import json

import pytest

from client.fake_master import FakeMaster
from client.real_master import RealMaster
from pallet.cli import client_opts
from pallet.client import Client
from pallet.model.clock import FakeClock

from .conftest import Run


def three_tasks(real: RealMaster) -> list[str]:
    """/web with two tasks, /db with one, all running (the first two nodes' worth)."""
    with Client("http://master", transport=real.transport()) as client:
        client.create_app({"id": "/web", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 64})
        client.create_app({"id": "/db", "cmd": "y", "instances": 1, "cpus": 0.3, "mem": 128})
    real.step()
    return sorted(real.tasks())


def test_task_list_shows_every_task_with_its_app(run: Run, real: RealMaster) -> None:
    ids = three_tasks(real)
    result = run("task", "list")
    assert result.code == 0, result.err
    for task_id in ids:
        row = next(line for line in result.out.splitlines() if task_id in line)
        assert "RUNNING" in row and real.tasks()[task_id].node_id in row
    assert "/db" in result.out and "/web" in result.out


def test_task_list_of_one_app_and_json(run: Run, real: RealMaster) -> None:
    three_tasks(real)
    docs = json.loads(run("task", "list", "web", "--json").out)
    assert {d["appId"] for d in docs} == {"/web"} and len(docs) == 2
    assert real.requests[-1].url.path == "/v2/apps/web/tasks"
    assert "No tasks of /nope." not in run("task", "list", "/web").out


def test_task_list_when_empty(run: Run) -> None:
    assert run("task", "list").out.strip() == "No tasks."
    assert json.loads(run("task", "list", "--json").out) == []


def test_task_logs_prints_stdout_or_stderr(run: Run, fake: FakeMaster) -> None:
    task_id = fake.start_task("/web")
    fake.logs[(task_id, "stdout")] = b"hello from the task\n"
    fake.logs[(task_id, "stderr")] = b"a warning\n"
    assert run("task", "logs", task_id).out == "hello from the task\n"
    assert run("task", "logs", task_id, "--stderr").out == "a warning\n"
    assert fake.requests[-2].url.params["stream"] == "stderr"


def test_task_logs_follow_reads_until_the_task_ends(
    run: Run, fake: FakeMaster, clock: FakeClock
) -> None:
    task_id = fake.start_task("/web")
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


def test_task_kill_reports_each_task_and_the_ones_left_alone(run: Run, real: RealMaster) -> None:
    (first, second, _) = three_tasks(real)
    result = run("task", "kill", first, "gone.1")
    assert result.code == 0, result.err
    assert f"Killed {first} (" in result.out
    assert "Not running, left alone: gone.1" in result.out
    (post,) = real.calls("POST", "/v2/tasks/delete")
    assert json.loads(post.content) == {"ids": [first, "gone.1"]}
    assert post.url.params["scale"] == "false"
    real.agents_act()  # its agent stops it
    assert second in real.tasks() and first not in real.tasks()


def test_task_kill_with_scale_starts_a_deployment(run: Run, real: RealMaster) -> None:
    (first, *_) = three_tasks(real)
    app_id = real.tasks()[first].app_id
    before = real.control.state.apps[app_id].instances
    result = run("task", "kill", first, "--scale")
    assert result.code == 0, result.err
    assert "Killing 1 task and scaling down (deployment " in result.out
    assert real.control.state.apps[app_id].instances == before - 1
    assert json.loads(run("task", "kill", "gone.1", "--json").out) == {"tasks": []}


def node_with_db(real: RealMaster) -> str:
    return next(t.node_id for t in real.tasks().values() if t.app_id == "/db")


def test_node_list_table_and_json(run: Run, real: RealMaster) -> None:
    three_tasks(real)
    node = node_with_db(real)
    result = run("node", "list")
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if f"{node} " in line).split()
    tasks = [t for t in real.tasks().values() if t.node_id == node]
    cpus = round(sum(0.3 if t.app_id == "/db" else 0.1 for t in tasks), 1)
    mem = sum(128 if t.app_id == "/db" else 64 for t in tasks)
    assert row[2:7] == ["ACTIVE", f"{cpus:g}/2", f"{mem}/1024", "—", str(len(tasks))]
    docs = json.loads(run("node", "list", "--json").out)
    assert [d["id"] for d in docs] == ["node-0", "node-1"]
    assert docs[1]["capacity"]["ports"] == ["31100-31199"]


def test_node_show_details_and_tasks(run: Run, real: RealMaster) -> None:
    three_tasks(real)
    node = node_with_db(real)
    ids = sorted(t.id for t in real.tasks().values() if t.node_id == node)
    db = next(t for t in ids if t.startswith("db."))
    usage = {db: {"cpu_seconds": 1.0, "rss_bytes": 0}}
    real.agent_post(f"/v1/agent/nodes/{node}/heartbeat", {"usage": usage})
    real.clock.advance(10)
    usage = {db: {"cpu_seconds": 1.2, "rss_bytes": int(40.5 * 2**20)}}
    real.agent_post(f"/v1/agent/nodes/{node}/heartbeat", {"usage": usage})
    result = run("node", "show", node)
    assert result.code == 0, result.err
    assert f"rack=r{node[-1]}" in result.out and f"31{node[-1]}00-31{node[-1]}99" in result.out
    assert all(task_id in result.out for task_id in ids)
    used = next(line for line in result.out.splitlines() if "used" in line)
    assert "0.02" in used and "40.5" in used
    doc = json.loads(run("node", "show", node, "--json").out)
    assert sorted(t["id"] for t in doc["task_details"]) == ids


def test_node_show_unknown(run: Run) -> None:
    result = run("node", "show", "node-9")
    assert result.code == 2
    assert result.err.strip() == "error: GET /v1/nodes/node-9: 404 Node 'node-9' does not exist"


def test_node_list_when_empty(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = RealMaster(node_mem=())
    try:
        monkeypatch.setattr(client_opts, "transport", empty.transport())
        assert "No nodes. Start agents with `pallet up`" in run("node", "list").out
    finally:
        empty.close()


def test_a_narrow_terminal_keeps_each_row_on_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pallet.cli import common

    long_id = "110af751-38d2-4e98-b207-2b77afae7994"
    real = RealMaster(new_id=lambda: long_id)
    try:
        monkeypatch.setattr(client_opts, "transport", real.transport())
        with Client("http://master", transport=real.transport()) as client:
            client.create_app({"id": "/demo/hello", "cmd": "x", "cpus": 0.1, "mem": 32})
        real.step()
        (task_id,) = real.tasks()
        assert task_id == f"demo_hello.{long_id}"
        monkeypatch.setattr(common.console, "width", 80)
        result = run("task", "list")
        row = next(line for line in result.out.splitlines() if task_id in line)
        assert "/demo/hello" in row and "RUNNING" in row and "127.0.0." in row
    finally:
        real.close()
