"""``/v2/pods`` through the routes: Marathon's schema with its defaults, one placement per
instance holding every container, status derived from the instance's task, upgrades by
the apps' capacity rule, 422 naming each field Pallet cannot honour, and pods kept out of
the app routes."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from pallet.api import create_api
from pallet.api.routes_info import marathon_event
from pallet.control import Control, ControlConfig, TaskGoal

from .conftest import INFO, register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

POD: dict[str, Any] = {
    "id": "/shop/pod",
    "scaling": {"kind": "fixed", "instances": 2},
    "containers": [
        {
            "name": "web",
            "exec": {"command": {"shell": "python3 -m http.server $ENDPOINT_HTTP"}},
            "resources": {"cpus": 0.25, "mem": 64},
            "endpoints": [{"name": "http", "hostPort": 0}],
            "healthCheck": {"http": {"endpoint": "http", "path": "/"}},
        },
        {
            "name": "sidecar",
            "exec": {"command": {"argv": ["sleep", "600"]}},
            "resources": {"cpus": 0.5, "mem": 32, "disk": 5},
            "environment": {"ROLE": "side"},
        },
    ],
    "environment": {"SHOP": "1"},
}


def pod(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(POD)
    doc.update(changes)
    return doc


async def test_create_show_and_place_as_one_unit(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    r = await api.post("/v2/pods", json=POD)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v2/pods/shop/pod"
    assert r.headers["Marathon-Deployment-Id"]
    shown = r.json()
    assert shown["executorResources"] == {"cpus": 0.1, "mem": 32.0, "disk": 10.0}
    assert shown["scheduling"]["upgrade"] == {
        "minimumHealthCapacity": 1.0,
        "maximumOverCapacity": 1.0,
    }
    assert shown["networks"] == [{"mode": "host"}]
    assert shown["containers"][1]["resources"] == {"cpus": 0.5, "mem": 32.0, "disk": 5.0, "gpus": 0}
    assert (await api.get("/v2/pods/shop/pod")).json() == shown
    assert [p["id"] for p in (await api.get("/v2/pods")).json()] == ["/shop/pod"]
    assert (await api.head("/v2/pods")).status_code == 200
    # not an app: the app routes do not show it, and its id is taken
    assert (await api.get("/v2/apps")).json()["apps"] == []
    assert (await api.get("/v2/apps/shop/pod")).status_code == 404
    assert (await api.delete("/v2/apps/shop/pod")).status_code == 404
    app = {"id": "/shop/pod", "cmd": "sleep 1", "cpus": 0.1, "mem": 16}
    assert (await api.post("/v2/apps", json=app)).status_code == 409
    assert (await api.post("/v2/pods", json=POD)).status_code == 409
    group = (await api.get("/v2/groups/shop")).json()
    assert [p["id"] for p in group["pods"]] == ["/shop/pod"] and group["apps"] == []

    deployments = (await api.get("/v2/deployments")).json()
    assert deployments[0]["affectedPods"] == ["/shop/pod"]
    assert deployments[0]["steps"][0]["actions"] == [{"action": "StartPod", "pod": "/shop/pod"}]

    await converge(control)
    tasks = control.state.app_tasks("/shop/pod")
    assert len(tasks) == 2
    for t in tasks:
        # one ask: the containers' sum plus the executor's (0.25 + 0.5 + 0.1 cpus ...)
        assert t.resources.as_tuple() == (850, 128, 15, 0)
        assert len(t.ports) == 1 and t.launch.port_names == ("http",)
        assert [c.name for c in t.launch.containers] == ["web", "sidecar"]
        assert t.launch.env["ENDPOINT_HTTP"] == str(t.ports[0])
        web, side = t.launch.containers
        assert side.env == {"SHOP": "1", "ROLE": "side"} and web.env == {"SHOP": "1"}
        assert t.launch.health_checks[0].port == t.ports[0]

    status = (await api.get("/v2/pods/shop/pod::status")).json()
    assert status["status"] == "DEGRADED"
    assert {i["status"] for i in status["instances"]} == {"STAGING"}

    await agents_run_everything(api, control)
    status = (await api.get("/v2/pods/shop/pod::status")).json()
    # running, but the web container's health check has no verdict yet
    assert {i["status"] for i in status["instances"]} == {"DEGRADED"}
    await _report_health(api, control, alive=True)
    status = (await api.get("/v2/pods/shop/pod::status")).json()
    assert status["status"] == "STABLE"
    inst = status["instances"][0]
    assert inst["status"] == "STABLE"
    assert inst["resources"] == {"cpus": 0.85, "mem": 128.0, "disk": 15.0, "gpus": 0}
    web, side = inst["containers"]
    assert web["name"] == "web" and web["status"] == "TASK_RUNNING"
    assert web["endpoints"][0]["name"] == "http" and web["endpoints"][0]["healthy"] is True
    assert web["endpoints"][0]["allocatedHostPort"] > 0
    assert side["endpoints"] == [] and side["resources"]["cpus"] == 0.5
    assert inst["specReference"].startswith("/v2/pods/shop/pod::versions/")
    assert [s["id"] for s in (await api.get("/v2/pods/::status")).json()] == ["/shop/pod"]


async def _report_health(api: httpx.AsyncClient, control: Control, alive: bool) -> None:
    for t in control.state.app_tasks("/shop/pod"):
        if t.goal is not TaskGoal.RUN:
            continue
        health = [
            {"alive": alive, "consecutive_failures": 0 if alive else 1, "first_success": None}
        ]
        status = {
            "task_id": t.id,
            "state": "TASK_RUNNING",
            "seq": t.seq + 1,
            "healthy": alive,
            "health": health,
        }
        r = await api.post(f"/v1/agent/nodes/{t.node_id}/status", json={"statuses": [status]})
        assert r.status_code == 200, r.text
    await control.controller.reconcile()


async def test_upgrade_keeps_minimum_health_and_versions(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 3)
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    await _report_health(api, control, alive=True)
    old = {t.id for t in control.state.app_tasks("/shop/pod")}
    changed = pod(scheduling={"upgrade": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0.5}})
    changed["containers"][1]["exec"] = {"command": {"argv": ["sleep", "601"]}}
    r = await api.put("/v2/pods/shop/pod", json=changed)
    assert r.status_code == 200, r.text
    assert r.headers["Marathon-Deployment-Id"]
    assert (await api.put("/v2/pods/shop/pod", json=changed)).status_code == 409  # locked
    for _ in range(6):
        await converge(control)
        live = control.state.app_tasks("/shop/pod")
        ready_old = [t for t in live if t.id in old and t.goal is TaskGoal.RUN and t.ready]
        # new instances are not ready yet: no old one may go (min 2 of 2)
        assert len(ready_old) == 2
        assert len([t for t in live if t.goal is TaskGoal.RUN]) <= 3  # 2 x (1 + 0.5)
    await agents_run_everything(api, control)
    await _report_health(api, control, alive=True)
    for _ in range(4):
        await converge(control)
        await agents_run_everything(api, control)
        await _report_health(api, control, alive=True)
    versions = (await api.get("/v2/pods/shop/pod::versions")).json()
    assert len(versions) == 2
    first = (await api.get(f"/v2/pods/shop/pod::versions/{versions[-1]}")).json()
    assert first["containers"][1]["exec"] == {"command": {"argv": ["sleep", "600"]}}


async def test_kill_one_instance_and_delete(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    sub = control.bus.subscribe()
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    victim = sorted(t.id for t in control.state.app_tasks("/shop/pod"))[0]
    r = await api.delete(f"/v2/pods/shop/pod::instances/{victim}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["instanceId"] == victim and doc["state"]["goal"] == "Decommissioned"
    assert doc["agentInfo"]["attributes"]
    assert control.state.tasks[victim].goal is TaskGoal.KILL
    r = await api.delete("/v2/pods/shop/pod::instances/nope.instance-1")
    assert r.status_code == 404
    assert (await api.delete("/v2/pods/shop/pod")).status_code == 409  # still deploying
    r = await api.delete("/v2/pods/shop/pod?force=true")
    assert r.status_code == 202 and r.headers["Marathon-Deployment-Id"]
    assert (await api.get("/v2/pods/shop/pod")).status_code == 404
    assert (await api.get("/v2/pods")).json() == []
    # deployment events name the pod as Marathon does (a pod, not an app)
    plans = []
    while not sub._queue.empty():  # type: ignore[attr-defined]
        event = marathon_event(api._transport.app.state.pallet, sub._queue.get_nowait())  # type: ignore[attr-defined]
        if event is not None and event.event_type == "deployment_info":
            plans.append(event.model_dump(by_alias=True, mode="json")["plan"])
    start, stop = plans
    assert start["steps"][0]["actions"] == [{"action": "StartPod", "pod": "/shop/pod"}]
    assert [p["id"] for p in start["target"]["pods"]] == ["/shop/pod"]
    assert start["target"]["apps"] == []
    assert stop["steps"][0]["actions"] == [{"action": "StopPod", "pod": "/shop/pod"}]
    assert [p["id"] for p in stop["original"]["pods"]] == ["/shop/pod"]


async def test_a_group_change_leaves_its_pods_alone(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    app = {"id": "/shop/web", "cmd": "sleep 1", "cpus": 0.1, "mem": 16}
    r = await api.put("/v2/groups/shop", json={"apps": [app]})
    assert r.status_code == 200, r.text
    assert (await api.get("/v2/pods/shop/pod")).status_code == 200
    assert (await api.delete("/v2/groups/shop?force=true")).status_code == 200
    assert (await api.get("/v2/pods/shop/pod")).status_code == 404


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"containers": []}, "/containers"),
        ({"user": ""}, "/user"),
        ({"volumes": {"name": "v"}}, "/volumes"),
        ({"volumes": [{"name": "v"}, {"name": "v"}]}, "/volumes(1)/name"),
        ({"volumes": [{"name": "V"}]}, "/volumes(0)/name"),
        ({"volumes": [{"name": "v", "persistent": {"size": 10}}]}, "/volumes(0)/persistent"),
        ({"volumes": [{"name": "v", "secret": "s"}]}, "/volumes(0)/secret"),
        ({"volumes": [{"name": "v", "host": "/etc"}]}, "/volumes(0)/host"),
        ({"volumes": [{"name": "v", "host": "a/../../b"}]}, "/volumes(0)/host"),
        ({"secrets": {"s": {"source": "x"}}}, "/secrets"),
        ({"legacySharedCgroups": False}, "/legacySharedCgroups"),
        ({"networks": [{"mode": "container", "name": "dcos"}]}, "/networks(0)/mode"),
        ({"scaling": {"kind": "fixed", "instances": -1}}, "/scaling/instances"),
        ({"environment": {"A": {"secret": "s"}}}, "/environment/A"),
        ({"role": "other"}, "/role"),
        ({"frobnicate": 1}, "/frobnicate"),
        ({"labels": {"PALLET_PIDS_MAX": "lots"}}, "/labels/PALLET_PIDS_MAX"),
        (
            {"scheduling": {"upgrade": {"canaryInstances": 3}}},
            "/scheduling/upgrade/canaryInstances",
        ),
        (
            {"scheduling": {"upgrade": {"progressDeadlineSeconds": 0}}},
            "/scheduling/upgrade/progressDeadlineSeconds",
        ),
        (
            {"scheduling": {"placement": {"constraints": [["hostname", "NOPE"]]}}},
            "/scheduling/placement/constraints(0)",
        ),
    ],
)
async def test_bad_pods_are_refused_with_the_path(
    api: httpx.AsyncClient, change: dict[str, Any], path: str
) -> None:
    r = await api.post("/v2/pods", json=pod(**change))
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == [path]
    assert (await api.get("/v2/pods")).json() == []


@pytest.mark.parametrize(
    ("container", "path"),
    [
        ({"image": {"kind": "APPC", "id": "nginx"}}, "/containers(0)/image/kind"),
        ({"image": {"kind": "DOCKER", "id": "Not:A:Ref"}}, "/containers(0)/image/id"),
        (
            {"image": {"kind": "DOCKER", "id": "x", "pullConfig": {}}},
            "/containers(0)/image/pullConfig",
        ),
        (
            {
                "image": {"id": "x"},
                "exec": {"command": {"shell": "x"}, "overrideEntrypoint": False},
            },
            "/containers(0)/exec/overrideEntrypoint",
        ),
        (
            {"exec": {"command": {"shell": "x"}, "overrideEntrypoint": True}},
            "/containers(0)/exec/overrideEntrypoint",
        ),
        ({"exec": None}, "/containers(0)/exec"),
        ({"artifacts": [{"uri": ""}]}, "/containers(0)/artifacts(0)/uri"),
        (
            {"artifacts": [{"uri": "http://x/y", "destPath": "../y"}]},
            "/containers(0)/artifacts(0)/destPath",
        ),
        ({"user": "root"}, "/containers(0)/user"),
        (
            {"volumeMounts": [{"name": "nope", "mountPath": "v"}]},
            "/containers(0)/volumeMounts(0)/name",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            "/containers(0)/volumeMounts(0)/mountPath",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "v", "readOnly": True}]},
            "/containers(0)/volumeMounts(0)/readOnly",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "v/../.."}]},
            "/containers(0)/volumeMounts(0)/mountPath",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "containers/x"}]},
            "/containers(0)/volumeMounts(0)/mountPath",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "a"}, {"name": "v", "mountPath": "a"}]},
            "/containers(0)/volumeMounts(1)/mountPath",
        ),
        (
            {"volumeMounts": [{"name": "w", "mountPath": "shared"}]},
            "/containers(1)/volumeMounts(0)/mountPath",
        ),
        ({"resourceLimits": {"cpus": "unlimited"}}, "/containers(0)/resourceLimits"),
        ({"tty": True}, "/containers(0)/tty"),
        ({"name": "Web"}, "/containers(0)/name"),
        ({"resources": {"cpus": 0, "mem": 32}}, "/containers(0)/resources/cpus"),
        ({"exec": {"command": {}}}, "/containers(0)/exec/command"),
        (
            {"endpoints": [{"name": "http", "containerPort": 80}]},
            "/containers(0)/endpoints(0)/containerPort",
        ),
        (
            {"healthCheck": {"http": {"endpoint": "nope"}}},
            "/containers(0)/healthCheck/http/endpoint",
        ),
    ],
)
async def test_bad_containers_are_refused_with_the_path(
    api: httpx.AsyncClient, container: dict[str, Any], path: str
) -> None:
    doc = pod(volumes=[{"name": "v"}, {"name": "w"}])
    doc["containers"][0].update(container)
    doc["containers"][1]["volumeMounts"] = [{"name": "v", "mountPath": "shared"}]
    r = await api.post("/v2/pods", json=doc)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == [path]


async def test_repeated_names_are_refused(api: httpx.AsyncClient) -> None:
    doc = pod()
    doc["containers"][1]["name"] = "web"
    r = await api.post("/v2/pods", json=doc)
    assert [d["path"] for d in r.json()["details"]] == ["/containers(1)/name"]
    doc = pod()
    doc["containers"][1]["endpoints"] = [{"name": "http"}]
    r = await api.post("/v2/pods", json=doc)
    assert [d["path"] for d in r.json()["details"]] == ["/containers(1)/endpoints(0)/name"]


async def test_a_failed_instance_is_in_the_termination_history(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 3)
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    assert "terminationHistory" not in (await api.get("/v2/pods/shop/pod::status")).json()
    t = control.state.app_tasks("/shop/pod")[0]
    message = "Command exited with status 137: pod: container sidecar was killed by signal 9"
    status = {
        "task_id": t.id,
        "state": "TASK_FAILED",
        "seq": t.seq + 1,
        "message": message,
        "exit_code": 137,
    }
    r = await api.post(f"/v1/agent/nodes/{t.node_id}/status", json={"statuses": [status]})
    assert r.status_code == 200, r.text
    (ended,) = (await api.get("/v2/pods/shop/pod::status")).json()["terminationHistory"]
    assert ended["instanceID"] == t.id and ended["message"] == message
    assert [c["containerId"] for c in ended["containers"]] == [f"{t.id}.web", f"{t.id}.sidecar"]
    assert ended["containers"][0]["termination"] == {"message": message, "exitCode": 137}
    assert ended["containers"][0]["lastKnownState"] == "TASK_FAILED"


async def test_user_and_artifacts_reach_the_launch(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 1)
    doc = pod(user="nobody")
    doc["scaling"] = {"kind": "fixed", "instances": 1}
    doc["containers"][0]["artifacts"] = [{"uri": "http://127.0.0.1:1/site.tar.gz"}]
    doc["containers"][1]["artifacts"] = [
        {
            "uri": "http://127.0.0.1:1/tool",
            "extract": False,
            "executable": True,
            "destPath": "bin/tool",
        }
    ]
    doc["containers"][1]["user"] = "nobody"  # the pod's own user may be repeated
    r = await api.post("/v2/pods", json=doc)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert shown["user"] == "nobody"
    assert shown["containers"][0]["artifacts"] == [
        {
            "uri": "http://127.0.0.1:1/site.tar.gz",
            "extract": True,
            "executable": False,
            "cache": False,
        }
    ]
    await converge(control)
    (task,) = control.state.app_tasks("/shop/pod")
    assert task.launch.user == "nobody"
    # every container's artifacts are fetched into the instance's one sandbox
    assert [(f.uri, f.extract, f.executable, f.dest_path) for f in task.launch.fetch] == [
        ("http://127.0.0.1:1/site.tar.gz", True, False, None),
        ("http://127.0.0.1:1/tool", False, True, "bin/tool"),
    ]


async def test_images_and_volumes_are_kept_as_marathon_writes_them(
    api: httpx.AsyncClient, control: Control
) -> None:
    doc = pod(volumes=[{"name": "scratch"}, {"name": "conf", "host": "conf.d"}])
    doc["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "data"}]
    doc["containers"][1] = {
        "name": "sidecar",
        "image": {"kind": "DOCKER", "id": "127.0.0.1:5000/tools:1"},
        "exec": {"command": {"argv": ["tail", "-f"]}},
        "resources": {"cpus": 0.1, "mem": 16},
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/data", "readOnly": True},
            {"name": "conf", "mountPath": "etc/conf"},
        ],
    }
    r = await api.post("/v2/pods", json=doc)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert shown["volumes"] == [{"name": "scratch"}, {"name": "conf", "host": "conf.d"}]
    side = shown["containers"][1]
    assert side["image"] == {"kind": "DOCKER", "id": "127.0.0.1:5000/tools:1", "forcePull": False}
    assert side["exec"] == {"command": {"argv": ["tail", "-f"]}}
    assert side["volumeMounts"][0] == {"name": "scratch", "mountPath": "/data", "readOnly": True}
    assert shown["containers"][0]["volumeMounts"] == [
        {"name": "scratch", "mountPath": "data", "readOnly": False}
    ]
    spec = control.state.apps["/shop/pod"].run
    web, sidecar = spec.containers
    assert sidecar.image == "127.0.0.1:5000/tools:1" and not sidecar.override_entrypoint
    assert [(m.name, m.path, m.read_only, m.host) for m in sidecar.mounts] == [
        ("scratch", "/data", True, None),
        ("conf", "etc/conf", False, "conf.d"),
    ]
    assert web.mounts[0].path == "data"
    # an image with neither exec nor command runs its own entrypoint
    bare = pod(id="/shop/bare")
    bare["containers"] = [
        {
            "name": "only",
            "image": {"kind": "DOCKER", "id": "busybox"},
            "resources": {"cpus": 0.1, "mem": 16},
        }
    ]
    r = await api.post("/v2/pods", json=bare)
    assert r.status_code == 201, r.text
    assert "exec" not in r.json()["containers"][0]


def _events(api: httpx.AsyncClient, sub: Any) -> list[dict[str, Any]]:
    out = []
    while not sub._queue.empty():
        event = marathon_event(api._transport.app.state.pallet, sub._queue.get_nowait())  # type: ignore[attr-defined]
        if event is not None:
            out.append(event.model_dump(by_alias=True, mode="json"))
    return out


async def test_pod_changes_publish_marathons_pod_events(
    api: httpx.AsyncClient, control: Control
) -> None:
    sub = control.bus.subscribe()
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    changed = pod(scaling={"kind": "fixed", "instances": 1})
    assert (await api.put("/v2/pods/shop/pod?force=true", json=changed)).status_code == 200
    assert (await api.delete("/v2/pods/shop/pod?force=true")).status_code == 202
    pod_events = [e for e in _events(api, sub) if e["eventType"].startswith("pod_")]
    assert [e["eventType"] for e in pod_events] == [
        "pod_created_event",
        "pod_updated_event",
        "pod_deleted_event",
    ]
    assert [e["uri"] for e in pod_events] == ["/v2/pods", "/v2/pods/shop/pod", "/v2/pods/shop/pod"]
    assert set(pod_events[0]) == {"eventType", "timestamp", "clientIp", "uri"}
    # a refused change publishes nothing
    assert (await api.post("/v2/pods", json=pod(containers=[]))).status_code == 422
    assert not [e for e in _events(api, sub) if e["eventType"].startswith("pod_")]


async def test_a_dry_run_shows_the_plan_and_changes_nothing(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 3)
    sub = control.bus.subscribe()
    r = await api.post("/v2/pods?dryRun=true", json=POD)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dryRun"] is True
    assert plan["steps"] == [
        {"actions": [{"action": "StartPod", "pod": "/shop/pod"}]},
        {"actions": [{"action": "ScalePod", "pod": "/shop/pod"}]},
    ]  # Marathon's plan for a new run spec
    assert len(plan["launches"]) == 2 and all(len(t["ports"]) == 1 for t in plan["launches"])
    assert {"path": "/scaling", "to": {"kind": "fixed", "instances": 2}} in plan["diff"]
    assert control.state.apps == {} and control.state.deployments == {}
    assert (await api.get("/v2/pods")).json() == []
    assert _events(api, sub) == []
    # a bad body is the same 422 a real change gets; nothing is kept either
    r = await api.post("/v2/pods?dryRun=true", json=pod(volumes=[{"name": "v", "host": "/etc"}]))
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/volumes(0)/host"

    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    before = copy.deepcopy(control.state.apps["/shop/pod"].definition)
    tasks = set(control.state.tasks)
    sub = control.bus.subscribe()
    changed = pod(scaling={"kind": "fixed", "instances": 3})
    r = await api.put("/v2/pods/shop/pod?dryRun=true&force=true", json=changed)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["steps"] == [{"actions": [{"action": "ScalePod", "pod": "/shop/pod"}]}]
    assert plan["diff"] == [{"path": "/scaling/instances", "from": 2, "to": 3}]
    assert len(plan["launches"]) == 1 and plan["kills"] == []
    assert control.state.apps["/shop/pod"].definition == before
    assert set(control.state.tasks) == tasks and _events(api, sub) == []
    r = await api.post("/v2/pods?dryRun=true", json=POD)
    assert r.status_code == 409


async def test_pod_instances_waiting_for_room_are_in_the_queue_as_pods(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 1)
    big = pod(scaling={"kind": "fixed", "instances": 3})
    big["containers"][1]["resources"] = {"cpus": 0.5, "mem": 1000, "disk": 5}
    assert (await api.post("/v2/pods", json=big)).status_code == 201
    await converge(control)
    (item,) = (await api.get("/v2/queue")).json()["queue"]
    assert "app" not in item
    assert item["pod"]["id"] == "/shop/pod" and item["pod"]["containers"][1]["name"] == "sidecar"
    placed = len(control.state.app_tasks("/shop/pod"))
    assert item["count"] == 3 - placed and item["count"] > 0
    assert item["processedOffersSummary"]["processedOffersCount"] >= 1
    assert item["delay"]["overdue"] in (True, False)


async def test_a_pod_renders_the_same_bytes_after_a_restart(
    api: httpx.AsyncClient, control: Control
) -> None:
    """A pod is stored as its definition's text, so a master that loads it renders it
    in the order the one that took it did (before, in the store's sorted key order)."""
    assert (await api.post("/v2/pods", json=POD)).status_code == 201
    before = (await api.get("/v2/pods/shop/pod")).content
    assert next(iter(json.loads(before))) == "id"  # Marathon's order, not sorted
    again = Control(control.store, ControlConfig(heartbeat_grace=5.0, seed=3), clock=control.clock)
    await again.load()
    transport = httpx.ASGITransport(app=create_api(again, INFO, manage_control=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as loaded:
        after = (await loaded.get("/v2/pods/shop/pod")).content
    await again.stop()
    assert after == before
