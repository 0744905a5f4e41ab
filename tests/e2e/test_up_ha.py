"""``pallet up --secure --masters 3``: three masters on a three-member etcd that ``pallet
up`` keeps running; a killed leader is replaced by another master at once and started again
as a follower, a killed etcd member is started again on its data, and no task is restarted
nor secret lost.
Secured, so a caller's token must reach the leader through a follower's redirect (to
another port: httpx drops it there unless told otherwise), and agents join through
whichever master they reach."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import httpx
import pytest

from .conftest import LiveCluster, wait_for

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def up_args() -> tuple[str, ...]:
    return ("--masters", "3", "--secure")


def _up(cluster: LiveCluster) -> dict[str, Any]:
    return dict(json.loads((cluster.state_dir / "up.json").read_text()))


def _leader(http: httpx.Client, urls: list[str]) -> str | None:
    """The ``host:port`` the masters agree leads, from the first that answers."""
    for url in urls:
        try:
            leader = http.get(f"{url}/v2/leader", timeout=2.0).json().get("leader")
        except (httpx.HTTPError, ValueError):
            continue
        if leader:
            return str(leader)
    return None


def _elected(http: httpx.Client, urls: list[str]) -> str | None:
    """The url of the master that says it was elected (only a live process answers)."""
    for url in urls:
        try:
            if http.get(f"{url}/v2/info", timeout=2.0).json().get("elected"):
                return url
        except (httpx.HTTPError, ValueError):
            continue
    return None


def test_up_keeps_three_masters_and_their_etcd_running(cluster: LiveCluster) -> None:
    doc = _up(cluster)
    urls = [m["url"] for m in doc["masters"]]
    assert len(urls) == 3 and len(doc["etcd"]) == 3
    app = {"id": "/ha-up", "cmd": "sleep 600", "instances": 2, "cpus": 0.05, "mem": 32}
    assert cluster.http.post("/v2/apps", json=app).status_code == 201  # followed to the leader
    before = wait_for(lambda: cluster.running("/ha-up", 2), 60, "2 running")
    secret = {"value": "ha-secret-value"}  # sealed in etcd with the key the masters share
    assert cluster.http.put("/v1/secrets/db/password", json=secret).status_code == 201

    # The leader dies: another master process leads (up starts the dead one again at
    # once, so it may be the one that wins the next election), and up starts it again.
    old = wait_for(lambda: _leader(cluster.http, urls), 30, "a leader")
    (dead,) = [m for m in doc["masters"] if m["url"].endswith(old)]
    os.kill(dead["pid"], signal.SIGKILL)
    wait_for(lambda: _elected(cluster.http, urls), 30, "new leader")
    wait_for(
        lambda: (
            next(m for m in _up(cluster)["masters"] if m["url"] == dead["url"])["pid"]
            != dead["pid"]
        ),
        30,
        "the dead master started again",
    )

    # An etcd member dies: up starts it again on its data; writes go on.
    member = doc["etcd"][0]
    os.kill(member["pid"], signal.SIGKILL)
    wait_for(lambda: _up(cluster)["etcd"][0]["pid"] != member["pid"], 30, "etcd member back")
    wait_for(
        lambda: all(cluster.http.get(f"{u}/ping", timeout=2.0).status_code == 200 for u in urls),
        60,
        "every master answering",
    )
    # (a write may meet a master that is still finding the new leader: 503, then retried)
    scale = {"instances": 3}
    answers: list[str] = []

    def scaled() -> bool:
        r = cluster.http.put("/v2/apps/ha-up", json=scale)
        answers.append(f"{r.status_code} {r.text[:120]}")
        return r.status_code == 200

    try:
        wait_for(scaled, 60, "scaled")
    except AssertionError:
        raise AssertionError(f"not scaled; last answers: {answers[-3:]}") from None
    after = wait_for(lambda: cluster.running("/ha-up", 3), 60, "3 running")
    read = wait_for(
        lambda: (r := cluster.http.get("/v1/secrets/db/password")).status_code == 200 and r,
        30,
        "the secret read through the new leader",
    )
    assert read.json()["value"] == "ha-secret-value"
    assert {t["id"] for t in before} <= {t["id"] for t in after}  # nothing restarted
    cluster.delete_app("/ha-up")
