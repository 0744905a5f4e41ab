"""Writes ``data/store_format1.json`` (or the file named as its argument): every key of
a store written by an older Pallet, and what the API answered then. Run by hand
against such a checkout: ``PYTHONPATH=<old checkout>/src python3
tests/api/store_capture.py [data/store_formatN.json]``. Captured: format 1
(before app records had a ``format``: the count inside the Marathon definition,
dependencies read from it) and format 2 (the Marathon definition, less its count,
beside the ``RunSpec``; written by main at bcef78a)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from pallet.api import create_api
from pallet.api.marathon import InfoSettings
from pallet.control import Control, ControlConfig
from pallet.model.clock import FakeClock
from pallet.store import open_store

HERE = Path(__file__).parent
OUT = HERE / (sys.argv[1] if len(sys.argv) > 1 else "data/store_format1.json")
INFO = InfoSettings(
    version="0.1.0",
    leader="127.0.0.1:8080",
    elected=True,
    cluster_id="test-cluster",
    hostname="127.0.0.1",
    http_port=8080,
    store_url="memory://",
)
START = 1_700_000_000.0

APPS: list[dict[str, Any]] = [
    {"id": "/web", "cmd": "sleep 100", "instances": 2},
    {"id": "/prod/db", "cmd": "sleep 600", "cpus": 0.5, "mem": 64},
    {
        "id": "/prod/api",
        "args": ["/bin/api", "--port", "$PORT0"],
        "cpus": 0.25,
        "mem": 64.5,
        "instances": 3,
        "constraints": [["hostname", "UNIQUE"]],
        "portDefinitions": [{"port": 8080, "name": "http", "labels": {"VIP_0": "/api:80"}}],
        "requirePorts": True,
        "labels": {"team": "core"},
        "healthChecks": [{"protocol": "HTTP", "path": "/health"}],
        "dependencies": ["/prod/db"],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
    },
]
GROUP = {
    "id": "/shop",
    "apps": [
        {"id": "db", "cmd": "sleep 600", "instances": 1},
        {"id": "web", "cmd": "sleep 600", "instances": 2, "dependencies": ["/shop/db"]},
    ],
}
POD = {
    "id": "/pods/p1",
    "scaling": {"kind": "fixed", "instances": 2},
    "containers": [
        {
            "name": "web",
            "exec": {"command": {"shell": "sleep 600"}},
            "resources": {"cpus": 0.25, "mem": 64},
            "endpoints": [{"name": "http", "hostPort": 0}],
        }
    ],
}
READS = (
    "/v2/apps",
    "/v2/apps/web",
    "/v2/apps/prod/api/versions",
    "/v2/pods",
    "/v2/groups/shop",
    "/v2/groups/shop/versions",
    "/v2/deployments",
)


async def main() -> None:
    clock = FakeClock(START)
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    counter = itertools.count()
    control = Control(
        store,
        ControlConfig(heartbeat_grace=5.0, seed=3),
        clock=clock,
        new_id=lambda: f"id{next(counter)}",
    )
    await control.load()
    api = create_api(control, INFO, manage_control=False)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        for body in APPS:
            clock.advance(1.0)
            (await client.post("/v2/apps", json=body)).raise_for_status()
        clock.advance(1.0)
        (await client.post("/v2/groups", json=GROUP)).raise_for_status()
        clock.advance(1.0)
        (await client.post("/v2/pods", json=POD)).raise_for_status()
        clock.advance(1.0)
        (await client.put("/v2/apps/web?force=true", json={"instances": 3})).raise_for_status()
        answers = {path: (await client.get(path)).json() for path in READS}
    kvs, _ = await store.list("")
    doc = {
        "clock": clock(),
        "kvs": {kv.key: kv.value.decode() for kv in kvs},
        "answers": answers,
    }
    await control.stop()
    await store.close()
    OUT.write_text(json.dumps(doc, indent=1) + "\n")  # answers in their byte order


if __name__ == "__main__":
    asyncio.run(main())
