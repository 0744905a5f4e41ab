"""An app write's answer and checks take shortcuts that must not change what is answered:
the create answer made from the listing's JSON of the app is the full rendering, field for
field and in order; an app whose definition claims no service port skips the clash check
only when rendering it would have found no port to check."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.api.convert import app_document
from pallet.api.marathon import normalize_app, read_app
from pallet.api.marathon.params import AppEmbed
from pallet.api.serviceports import bound_ports, may_claim_service_ports
from pallet.control import Control

from .conftest import register

BODIES: list[dict[str, Any]] = [
    {"id": "/plain", "cmd": "sleep 60", "instances": 0},
    {"id": "/ports", "cmd": "sleep 60", "portDefinitions": [{"port": 0}, {"port": 0}]},
    {"id": "/svc", "cmd": "sleep 60", "portDefinitions": [{"port": 10123, "name": "http"}]},
    {"id": "/lb", "cmd": "sleep 60", "labels": {"HAPROXY_0_PORT": "10200", "team": "a"}},
    {
        "id": "/docker",
        "cmd": "sleep 60",
        "container": {
            "type": "DOCKER",
            "docker": {"image": "busybox"},
            "portMappings": [{"containerPort": 80, "servicePort": 10300}],
        },
        "networks": [{"mode": "container/bridge"}],
    },
    {
        "id": "/healthy",
        "cmd": "sleep 60",
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
        "env": {"A": "1"},
        "instances": 2,
    },
]


def _renderer(api: httpx.AsyncClient) -> Any:
    return api._transport.app.state.pallet.renderer  # type: ignore[attr-defined]


@pytest.mark.anyio
@pytest.mark.parametrize("with_agents", [False, True])
async def test_create_answer_is_the_full_rendering(
    api: httpx.AsyncClient, control: Control, with_agents: bool
) -> None:
    if with_agents:
        await register(api)
    renderer = _renderer(api)
    embeds = frozenset({AppEmbed.COUNTS, AppEmbed.DEPLOYMENTS, AppEmbed.TASKS})
    for body in BODIES:
        r = await api.post("/v2/apps", json=body)
        assert r.status_code == 201, r.text
        app = control.state.apps[body["id"]]
        full = renderer.app(app, embeds, version_info=False)
        assert list(r.json().items()) == list(full.items())


@pytest.mark.parametrize("body", BODIES, ids=[b["id"] for b in BODIES])
def test_no_claim_is_skipped_only_when_there_is_none(body: dict[str, Any]) -> None:
    spec = normalize_app(read_app(body))
    if not may_claim_service_ports(spec):
        assert bound_ports(app_document(spec)) == {}
    assert may_claim_service_ports(spec) == bool(bound_ports(app_document(spec)))
