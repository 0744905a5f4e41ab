"""Discovery through the API: bad Marathon-LB and VIP labels, clashing service ports,
load balancers and the DNS server reporting in, an app's names, ``lb_reloaded``."""

from __future__ import annotations

import httpx
import pytest

from pallet.api.routes_info import marathon_event
from pallet.control import Control

from .conftest import register

pytestmark = pytest.mark.anyio

APP = {"id": "/prod/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32}


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"labels": {"HAPROXY_0_VHOST": "web example.com"}}, "/labels/HAPROXY_0_VHOST"),
        (
            {"portDefinitions": [{"port": 0, "labels": {"VIP_0": "/web"}}]},
            "/portDefinitions(0)/labels/VIP_0",
        ),
        ({"labels": {"HAPROXY_0_FRONTEND_HEAD": "bind :1"}}, "/labels/HAPROXY_0_FRONTEND_HEAD"),
    ],
)
async def test_bad_discovery_labels_are_422_with_their_path(
    api: httpx.AsyncClient, extra: dict[str, object], path: str
) -> None:
    r = await api.post("/v2/apps", json={**APP, **extra})
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == [path]
    assert (await api.get("/v2/apps/prod/web")).status_code == 404  # nothing stored


async def test_a_service_port_in_use_by_another_app_is_refused(api: httpx.AsyncClient) -> None:
    first = {**APP, "portDefinitions": [{"port": 10000}]}
    assert (await api.post("/v2/apps", json=first)).status_code == 201
    clash = {**APP, "id": "/other", "portDefinitions": [{"port": 0}, {"port": 10000}]}
    r = await api.post("/v2/apps", json=clash)
    assert r.status_code == 422
    assert r.json()["details"] == [
        {
            "path": "/portDefinitions(1)",
            "errors": [
                "Requested service port 10000 conflicts with a service port in use by app /prod/web"
            ],
        }
    ]
    # Marathon-LB's port label binds the same port: a clash too.
    labelled = {**APP, "id": "/third", "labels": {"HAPROXY_0_PORT": "10000"}}
    assert (await api.post("/v2/apps", json=labelled)).status_code == 422
    # The app itself may keep its port across an update.
    r = await api.put("/v2/apps/prod/web?force=true", json={**first, "instances": 2})
    assert r.status_code == 200, r.text


async def test_an_app_knows_its_names_vips_and_lb_endpoints(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 1)
    labels = {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}
    ports = [{"port": 10000, "labels": {"VIP_0": "/web:80"}}]
    r = await api.post("/v2/apps", json={**APP, "labels": labels, "portDefinitions": ports})
    assert r.status_code == 201, r.text
    report = {
        "id": "edge-127.0.0.5",
        "kind": "edge",
        "address": "127.0.0.5",
        "groups": ["external"],
        "http_port": 80,
        "stats_port": 9090,
        "config_version": 4,
        "reloaded": True,
    }
    sub = control.bus.subscribe()
    assert (await api.post("/v1/discovery/lbs", json=report)).status_code == 200
    assert (
        await api.post("/v1/discovery/dns", json={"address": "127.0.0.1:8053"})
    ).status_code == 200
    bad = await api.post("/v1/discovery/lbs", json={**report, "kind": "nope"})
    assert bad.status_code == 422

    doc = (await api.get("/v1/discovery/apps/prod/web")).json()
    assert (
        doc["dns"]["a"] == "web-prod.marathon.mesos" and doc["dns"]["pallet"] == "web-prod.pallet"
    )
    (vip,) = doc["vips"]
    assert vip["name"] == "web.marathon.l4lb.thisdcos.directory" and vip["port"] == 80
    (edge,) = doc["lb"]
    assert edge["address"] == "127.0.0.5:10000" and edge["urls"] == ["http://web.example.com/"]
    listing = (await api.get("/v1/discovery")).json()
    assert (
        listing["dns"]["address"] == "127.0.0.1:8053"
        and listing["lbs"][0]["id"] == "edge-127.0.0.5"
    )
    assert (await api.get("/v1/discovery/apps/nope")).status_code == 404

    event = marathon_event(api._transport.app.state.pallet, sub._queue.get_nowait())  # type: ignore[attr-defined]
    assert event is not None and event.event_type == "lb_reloaded"
    assert event.to_json()["configVersion"] == 4
