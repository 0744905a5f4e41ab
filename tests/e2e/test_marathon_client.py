"""The Marathon Python client (``marathon`` 0.13.0), which no one here wrote, against a real
master with real agents: every call it makes must work and parse."""

from __future__ import annotations

import collections
import collections.abc
import threading
from typing import Any

import pytest

# A bug of the client: it still uses aliases Python 3.10 removed from ``collections``.
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import ConflictError, NotFoundError  # noqa: E402
from marathon.models import MarathonApp, MarathonConstraint  # noqa: E402

from .conftest import LiveCluster, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


def deployments_done(client: MarathonClient) -> bool:
    return not client.list_deployments()


def running(client: MarathonClient, app_id: str, count: int) -> list[Any]:
    tasks = client.list_tasks(app_id)
    if len(tasks) == count and all(t.state == "TASK_RUNNING" for t in tasks):
        return list(tasks)
    return []


def test_the_marathon_client_drives_a_real_cluster(cluster: LiveCluster) -> None:
    client = MarathonClient(cluster.url)
    events: list[Any] = []

    def listen() -> None:
        try:
            for event in client.event_stream(
                event_types=["status_update_event", "deployment_success", "app_terminated_event"]
            ):
                events.append(event)
        except Exception as e:  # the stream ends when the cluster stops
            events.append(e)

    threading.Thread(target=listen, daemon=True).start()

    info = client.get_info()
    assert info.name == "pallet" and info.http_config.http_port
    assert client.get_leader() == {"leader": cluster.url.removeprefix("http://")}

    app = MarathonApp(
        cmd="sleep 600",
        cpus=0.05,
        mem=32,
        instances=2,
        constraints=[MarathonConstraint("hostname", "UNIQUE")],
        labels={"team": "pallet"},
    )
    created = client.create_app("web", app)
    assert created and created.id == "/web"
    with pytest.raises(ConflictError):
        client.create_app("web", app)
    wait_for(lambda: running(client, "/web", 2), what="2 running")
    wait_for(lambda: deployments_done(client), what="create deployment done")

    apps = client.list_apps()
    assert [a.id for a in apps] == ["/web"]
    shown = client.get_app("web")
    assert shown.instances == 2 and shown.tasks_running == 2 and shown.labels == {"team": "pallet"}
    assert len({t.host for t in shown.tasks}) == 2

    update = client.get_app("web")
    update.cmd = "sleep 601"
    result = client.update_app("web", update)
    assert result["deploymentId"]
    wait_for(lambda: deployments_done(client), 30, "update rolled out")
    tasks = wait_for(lambda: running(client, "/web", 2), what="2 running after update")
    assert all(t.version == client.get_app("web").version for t in tasks)

    result = client.scale_app("web", instances=3)
    assert result["deploymentId"]
    wait_for(lambda: running(client, "/web", 3), what="3 running")
    wait_for(lambda: deployments_done(client), what="scale done")

    before = {t.id for t in client.list_tasks("/web")}
    result = client.restart_app("web")
    assert result["deploymentId"]
    assert client.list_deployments()  # a deployment exists while the app converges
    wait_for(lambda: deployments_done(client), 30, "restart done")
    after = {t.id for t in wait_for(lambda: running(client, "/web", 3), what="restarted")}
    assert not before & after

    victim = sorted(after)[0]
    killed = client.kill_task("web", victim)
    assert killed.id == victim
    wait_for(
        lambda: (tasks := running(client, "/web", 3)) and victim not in {t.id for t in tasks},
        what="the killed task replaced",
    )
    wait_for(lambda: deployments_done(client), what="nothing deploying")

    two = [t.id for t in client.list_tasks("/web")][:2]
    assert client.kill_given_tasks(two, scale=True)
    wait_for(lambda: running(client, "/web", 1), what="scaled to 1 by killing")
    wait_for(lambda: deployments_done(client), what="kill-scale done")
    assert client.get_app("web").instances == 1

    big = MarathonApp(cmd="sleep 600", cpus=0.05, mem=10**6)
    client.create_app("too-big", big)
    queue = wait_for(lambda: client.list_queue(), what="a queued app")
    (item,) = queue
    assert item.app.id == "/too-big" and item.count == 1
    client.delete_app("too-big", force=True)

    client.delete_app("web", force=True)
    wait_for(lambda: not client.list_tasks(), what="tasks gone")
    wait_for(lambda: deployments_done(client), what="stop done")
    with pytest.raises(NotFoundError):
        client.get_app("web")
    assert client.list_apps() == []

    wait_for(
        lambda: any(getattr(e, "event_type", "") == "app_terminated_event" for e in events),
        what="app_terminated_event",
    )
    kinds = {getattr(e, "event_type", None) for e in events}
    assert {"status_update_event", "deployment_success", "app_terminated_event"} <= kinds
    assert not [e for e in events if isinstance(e, Exception)]
