"""``pallet app ...`` against the master's real API and control: what is sent, what is
printed, and how bad input and a failing master are reported (one clear message, exit 2,
no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from client.real_master import RealMaster
from pallet.cli import client_opts
from pallet.model.clock import FakeClock

from .conftest import Run

WEB = {"id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.1, "mem": 32, "instances": 2}
# Three of these do not fit the two 1 GiB nodes: one instance always waits.
BIG = WEB | {"mem": 600, "instances": 3}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_add_posts_the_json_file_and_names_the_deployment(
    run: Run, real: RealMaster, tmp_path: Path
) -> None:
    result = run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)))
    assert result.code == 0, result.err
    assert "Created /web: 2 instances (deployment 0001)" in result.out
    (post,) = real.calls("POST", "/v2/apps")
    assert json.loads(post.content) == WEB


def test_add_yaml_with_wait_follows_the_deployment_to_the_end(
    run: Run, real: RealMaster, clock: FakeClock, tmp_path: Path
) -> None:
    text = "id: /web\ncmd: sleep 600\ninstances: 3\ncpus: 0.01\nmem: 8\nlabels:\n  tier: front\n"
    result = run("app", "add", write(tmp_path, "web.yaml", text), "--wait")
    assert result.code == 0, result.err
    assert "✓ /web: 3 of 3 instances running (deployment 0001" in result.out
    # The cluster takes a step per poll: three tasks started, then the deployment done,
    # on the fake clock (no real sleep).
    assert len(real.tasks()) == 3 and not real.control.state.deployments
    assert clock.sleeps and all(s == 0.5 for s in clock.sleeps)
    assert json.loads(real.calls("POST", "/v2/apps")[0].content)["labels"] == {"tier": "front"}


def test_add_json_prints_the_created_app_only(run: Run, tmp_path: Path) -> None:
    result = run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--json", "--wait")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["id"] == "/web" and doc["deployments"] == [{"id": "0001"}]
    assert "✓ /web" in result.err


def test_add_from_stdin(run: Run, real: RealMaster, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(WEB)))
    result = run("app", "add", "-")
    assert result.code == 0, result.err
    assert real.apps() == ["/web"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "web.json",
            '{"id": "/web",\n  "cmd": "x"\n  "cpus": 1}',
            "line 3 column 3: Expecting ','",
        ),
        ("web.json", "", "is empty; write one Marathon app"),
        ("web.json", '[{"id": "/a"}, {"id": "/b"}]', "holds a list of 2 items"),
        ("web.json", '{"id": "/web", "cpus": NaN}', "NaN is not a JSON number"),
        ("web.json", '"web"', "holds str 'web'"),
        (
            "web.yaml",
            "id: /web\ncmd: x\n  cpus: 1\n",
            "line 3 column 7: mapping values are not allowed",
        ),
        ("web.yaml", "id: /web\ncpus: .nan\n", "cpus: nan is not a number JSON allows"),
        ("web", "id: [/web\n", "fix the YAML syntax"),
    ],
)
def test_a_bad_app_file_names_the_file_and_what_to_fix(
    run: Run, real: RealMaster, tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    result = run("app", "add", path)
    assert result.code == 2
    assert f"app file {path}: " in result.err and expected in result.err
    assert "Traceback" not in result.err and not real.calls("POST")


def test_a_missing_app_file(run: Run, tmp_path: Path) -> None:
    result = run("app", "add", str(tmp_path / "web.json"))
    assert result.code == 2
    assert f"app file {tmp_path / 'web.json'}: no such file" in result.err


def test_a_directory_is_not_an_app_file(run: Run, tmp_path: Path) -> None:
    result = run("app", "add", str(tmp_path))
    assert result.code == 2 and "is a directory" in result.err


def test_yaml_dates_are_sent_as_text(run: Run, real: RealMaster, tmp_path: Path) -> None:
    text = "id: /web\ncmd: x\nlabels:\n  since: 2024-01-02\n"
    assert run("app", "add", write(tmp_path, "web.yml", text)).code == 0
    assert json.loads(real.calls("POST")[0].content)["labels"] == {"since": "2024-01-02"}


def test_a_422_lists_each_field_with_its_error(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "web.json", json.dumps({"cpus": -1, "cmd": "x"}))
    result = run("app", "add", path)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0] == (
        f"error: app file {path}: the master rejected it (Invalid JSON); fix these fields:"
    )
    assert sorted(lines[1:]) == ["  cpus: is below its minimum", "  id: is required"]


def test_a_rule_broken_by_the_whole_app_is_named_app(run: Run, tmp_path: Path) -> None:
    result = run("app", "add", write(tmp_path, "web.json", '{"id": "/web"}'))
    assert result.code == 2
    assert "  app: AppDefinition must either contain one of 'cmd' or 'args'" in result.err


def test_a_duplicate_id_says_so(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "web.json", json.dumps(WEB))
    assert run("app", "add", path).code == 0
    result = run("app", "add", path)
    assert result.code == 2
    assert "the master rejected it: An app with id [/web] already exists." in result.err


def test_list_shows_running_of_instances(run: Run, real: RealMaster, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    result = run("app", "list")
    assert result.code == 0
    row = next(line for line in result.out.splitlines() if "/web" in line)
    assert "2/2" in row and "0.1" in row and "python3 -m http.server" in row
    embeds = real.calls("GET", "/v2/apps")[-1].url.params.get_list("embed")
    assert "apps.counts" in embeds and "apps.deployments" in embeds


def test_list_json_and_empty(run: Run, tmp_path: Path) -> None:
    assert json.loads(run("app", "list", "--json").out) == []
    assert "No apps" in run("app", "list").out
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)))
    (doc,) = json.loads(run("app", "list", "--json").out)
    assert doc["id"] == "/web" and doc["deployments"] == [{"id": "0001"}]


def test_show_explains_why_instances_wait(run: Run, real: RealMaster, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(BIG)))
    real.step()
    result = run("app", "show", "web")
    assert result.code == 0, result.err
    assert "2 running of 3" in result.out
    assert "1 instance not placed: InsufficientMemory on 2 of 2 nodes" in result.out
    assert "0001" in result.out and "web.0002" in result.out


def test_show_json_and_unknown_app(run: Run, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)))
    assert json.loads(run("app", "show", "/web", "--json").out)["cmd"] == WEB["cmd"]
    result = run("app", "show", "/nope")
    assert result.code == 2
    assert result.err.strip() == "error: GET /v2/apps/nope: 404 App '/nope' does not exist"


def test_scale_with_wait(run: Run, real: RealMaster, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    result = run("app", "scale", "/web", "4", "--wait")
    assert result.code == 0, result.err
    assert "Scaling /web to 4 (deployment " in result.out
    assert "✓ /web: 4 of 4 instances running" in result.out
    assert len(real.tasks()) == 4
    (put,) = real.calls("PUT")
    assert json.loads(put.content) == {"instances": 4} and put.url.params["force"] == "false"


def test_scale_locked_by_a_deployment_says_to_force(run: Run, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)))
    result = run("app", "scale", "/web", "1")
    assert result.code == 2
    assert "app /web is being changed by deployment 0001" in result.err
    assert "add --force" in result.err
    assert run("app", "scale", "/web", "1", "--force", "--json").code == 0


def test_scale_refuses_a_negative_count(run: Run, real: RealMaster) -> None:
    result = run("app", "scale", "/web", "-1")
    assert result.code == 2 and not real.calls("PUT")


def test_restart_with_wait_replaces_every_task(run: Run, real: RealMaster, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    before = set(real.tasks())
    result = run("app", "restart", "web", "--wait")
    assert result.code == 0, result.err
    assert "Restarting /web (deployment " in result.out
    assert len(real.tasks()) == 2 and not before & set(real.tasks())


def test_remove_with_wait_counts_tasks_down(run: Run, real: RealMaster, tmp_path: Path) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    result = run("app", "remove", "/web", "--wait", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert sorted(doc) == ["deploymentId", "version"]
    assert f"✓ /web removed (deployment {doc['deploymentId']}" in result.err
    assert not real.tasks() and not real.apps()


def test_wait_gives_up_after_the_timeout_and_says_why(
    run: Run, real: RealMaster, clock: FakeClock, tmp_path: Path
) -> None:
    result = run(
        "app", "add", write(tmp_path, "web.json", json.dumps(BIG)), "--wait", "--timeout", "5"
    )
    assert result.code == 2
    assert (
        "deployment 0001 of /web did not finish within 5 s: 2 of 3 instances running" in result.err
    )
    assert "1 instance not placed: InsufficientMemory on 2 of 2 nodes" in result.err
    assert "goes on in the background" in result.err
    assert 5 <= sum(clock.sleeps) <= 5.5


def test_master_from_the_environment(
    run: Run, real: RealMaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PALLET_MASTER", "10.1.2.3:9090")
    assert run("app", "list").code == 0
    assert str(real.requests[-1].url).startswith("http://10.1.2.3:9090/v2/apps")
    assert run("app", "list", "--master", "http://other:1/").code == 0
    assert str(real.requests[-1].url).startswith("http://other:1/v2/apps")


def test_several_masters_in_the_environment(
    run: Run, real: RealMaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the README says for `pallet up --masters 3`: the first is asked first
    monkeypatch.setenv("PALLET_MASTER", "http://127.0.0.1:8080,http://127.0.0.1:8081")
    assert run("app", "list").code == 0
    assert str(real.requests[-1].url).startswith("http://127.0.0.1:8080/v2/apps")


def test_a_bad_master_url(run: Run) -> None:
    result = run("app", "list", "--master", "http://exa mple")
    assert result.code == 2
    assert "--master: 'http://exa mple' is not a master URL" in result.err


def test_an_unreachable_master(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    monkeypatch.setattr(client_opts, "transport", httpx.MockTransport(refuse))
    result = run("app", "list")
    assert result.code == 2
    assert result.err.strip() == (
        "error: cannot reach the master at http://127.0.0.1:8080 (GET /v2/apps: connection "
        "refused); is `pallet up` running? (--master or PALLET_MASTER picks another)"
    )


def test_a_failing_master_is_one_line_not_a_traceback(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))
    monkeypatch.setattr(client_opts, "transport", broken)
    result = run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)))
    assert result.code == 2
    assert result.err.strip() == "error: POST /v2/apps: 500 boom"


def test_ctrl_c_while_waiting_leaves_the_deployment_running(
    run: Run, real: RealMaster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(client_opts, "sleep", interrupted)
    result = run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    assert result.code == 2
    assert "stopped waiting; deployment 0001 of /web goes on (`pallet app show /web`)" in result.err
    assert "0001" in real.control.state.deployments


def test_brackets_from_the_master_are_shown_not_read_as_markup(
    run: Run, real: RealMaster, tmp_path: Path
) -> None:
    weird = WEB | {"cmd": "echo '[/x] [bold]a[1]'", "labels": {"k": "[/v]"}}
    assert run("app", "add", write(tmp_path, "web.json", json.dumps(weird)), "--wait").code == 0
    task = next(iter(real.tasks().values()))
    real.report(task.node_id, task.id, "TASK_FAILED", message="exit [/1]")
    listed = run("app", "list")
    assert listed.code == 0 and "echo '[/x] [bold]a[1]'" in listed.out
    shown = run("app", "show", "/web")
    assert shown.code == 0, shown.err
    assert "k=[/v]" in shown.out and "exit [/1]" in shown.out
    waited = run("app", "scale", "/web", "3", "--force", "--wait")
    assert waited.code == 0, waited.err


def test_list_shows_health_only_when_an_app_has_checks(
    run: Run, real: RealMaster, tmp_path: Path
) -> None:
    run("app", "add", write(tmp_path, "web.json", json.dumps(WEB)), "--wait")
    assert "HEALTHY" not in run("app", "list").out
    checked = {**WEB, "id": "/api", "healthChecks": [{"protocol": "HTTP", "path": "/"}]}
    run("app", "add", write(tmp_path, "api.json", json.dumps(checked)), "--wait")
    result = run("app", "list")
    assert "HEALTHY" in result.out
    api = next(line for line in result.out.splitlines() if "/api" in line).split()
    web = next(line for line in result.out.splitlines() if "/web" in line).split()
    assert api[1:3] == ["2/2", "2/2"] and web[1:3] == ["2/2", "—"]
    shown = run("app", "show", "/api")
    assert "2 healthy, 0 unhealthy" in shown.out
