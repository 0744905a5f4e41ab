"""Everything Pallet answers on ``/v2`` must parse in the Python Marathon client
(``marathon`` 0.13.0), which raises on any field its models do not know; and what the
client sends must read as Marathon reads it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from marathon.models import (
    MarathonApp,
    MarathonConstraint,
    MarathonDeployment,
    MarathonGroup,
    MarathonHealthCheck,
    MarathonInfo,
    MarathonQueueItem,
    MarathonTask,
)
from marathon.models.app import PortDefinition as ClientPortDefinition
from marathon.models.events import EventFactory

from pallet.api.marathon import (
    ActionName,
    ApiPostEvent,
    AppTerminatedEvent,
    Deployment,
    DeploymentFailedEvent,
    DeploymentInfoEvent,
    DeploymentPlan,
    DeploymentStep,
    DeploymentStepFailureEvent,
    DeploymentStepSuccessEvent,
    DeploymentSuccessEvent,
    EventStreamAttached,
    FailedHealthCheckEvent,
    Group,
    HealthResult,
    HealthStatusChangedEvent,
    InfoSettings,
    InstanceChangedEvent,
    MarathonEvent,
    MesosTaskState,
    QueueDelay,
    QueueItem,
    StatusUpdateEvent,
    TaskCounts,
    TaskView,
    UnhealthyInstanceKillEvent,
    app_json,
    apply_update,
    deployment_result_json,
    info_json,
    leader_json,
    offers_summary,
    queue_json,
    read_update,
    sse_frame,
    task_failure_json,
    task_json,
    tasks_json,
)

from .conftest import VERSION, VERSION_TEXT, spec_of
from .test_marathon_roundtrip import BODIES

LATER = VERSION + timedelta(seconds=5)

TASK = TaskView(
    id="web.3f1c",
    app_id="/web",
    host="node-1.example",
    state=MesosTaskState.TASK_RUNNING,
    agent_id="node-1",
    host_ports=(31000,),
    service_ports=(10000,),
    ip_addresses=("10.0.0.5", "fd00::5"),
    staged_at=VERSION,
    started_at=LATER,
    version=VERSION,
    health=(
        HealthResult(alive=True, consecutive_failures=0, first_success=LATER, last_success=LATER),
    ),
)


CLIENT_KNOWN = [b for b in BODIES if "tty" not in b]


@pytest.mark.parametrize("body", CLIENT_KNOWN, ids=lambda b: b["id"])
def test_apps_parse_as_marathon_app(body: dict[str, Any]) -> None:
    spec = spec_of(body)
    out = app_json(
        spec,
        VERSION,
        version_info=(VERSION, LATER),
        counts=TaskCounts(running=1),
        deployments=["d1"],
        tasks=[TASK],
        last_task_failure=task_failure_json(
            TaskView(
                id="web.1",
                app_id=spec.id,
                host="h",
                state=MesosTaskState.TASK_FAILED,
                version=VERSION,
            ),
            "exited with status 1",
            LATER,
        ),
    )
    app = MarathonApp.from_json(json.loads(json.dumps(out)))
    assert app.id == spec.id
    assert app.instances == spec.instances
    assert app.tasks[0].started_at == LATER.replace(microsecond=LATER.microsecond // 1000 * 1000)
    assert app.last_task_failure.state == "TASK_FAILED"
    assert app.version_info.last_config_change_at.tzinfo is not None


def test_fields_the_client_does_not_know_are_sent_only_when_set() -> None:
    # Marathon 1.x fields newer than the client (tty, check, executorResources,
    # resourceLimits): written only when the app sets them, as Marathon does.
    unknown_to_client = {"tty", "check", "executorResources", "resourceLimits"}
    plain = app_json(spec_of({"id": "/web", "cmd": "x"}), VERSION)
    assert not unknown_to_client & set(plain)
    with_tty = app_json(spec_of({"id": "/web", "cmd": "x", "tty": True}), VERSION)
    assert with_tty["tty"] is True
    with pytest.raises(TypeError, match="tty"):
        MarathonApp.from_json(with_tty)


def test_the_create_response_parses() -> None:
    # POST /v2/apps answers 201 with the app, zero counts and the new deployment.
    out = app_json(
        spec_of({"id": "/web", "cmd": "x"}), VERSION, counts=TaskCounts(), deployments=["d1"]
    )
    app = MarathonApp.from_json(out)
    assert app.deployments[0].id == "d1" and app.tasks_running == 0


def test_tasks_parse_as_marathon_task() -> None:
    body = tasks_json(
        [TASK, TaskView(id="web.9", app_id="/web", host="h", state=MesosTaskState.TASK_STAGING)]
    )
    tasks = [MarathonTask.from_json(t) for t in body["tasks"]]
    assert tasks[0].ports == [31000] and tasks[0].slave_id == "node-1"
    assert [a.ip_address for a in tasks[0].ip_addresses] == ["10.0.0.5", "fd00::5"]
    assert tasks[0].health_check_results[0].alive is True
    assert tasks[1].staged_at is None


def test_task_json_field_set() -> None:
    assert task_json(TASK) == {
        "appId": "/web",
        "healthCheckResults": [
            {
                "alive": True,
                "consecutiveFailures": 0,
                "firstSuccess": "2024-05-06T07:08:14.123Z",
                "instanceId": "web.3f1c",
                "lastSuccess": "2024-05-06T07:08:14.123Z",
            }
        ],
        "host": "node-1.example",
        "id": "web.3f1c",
        "ipAddresses": [
            {"ipAddress": "10.0.0.5", "protocol": "IPv4"},
            {"ipAddress": "fd00::5", "protocol": "IPv6"},
        ],
        "ports": [31000],
        "servicePorts": [10000],
        "slaveId": "node-1",
        "state": "TASK_RUNNING",
        "stagedAt": VERSION_TEXT,
        "startedAt": "2024-05-06T07:08:14.123Z",
        "version": VERSION_TEXT,
        "localVolumes": [],
        "role": "*",
    }


def _deployment() -> Deployment:
    return Deployment.running(
        "d1",
        VERSION,
        [[(ActionName.START_APPLICATION, "/web")], [(ActionName.SCALE_APPLICATION, "/web")]],
        current_step=2,
    )


def test_deployments_parse_as_marathon_deployment() -> None:
    out = _deployment().to_json()
    assert out == {
        "id": "d1",
        "version": VERSION_TEXT,
        "affectedApps": ["/web"],
        "affectedPods": [],
        "steps": [
            {"actions": [{"action": "StartApplication", "app": "/web"}]},
            {"actions": [{"action": "ScaleApplication", "app": "/web"}]},
        ],
        "currentActions": [
            {"action": "ScaleApplication", "app": "/web", "readinessCheckResults": []}
        ],
        "currentStep": 2,
        "totalSteps": 2,
    }
    deployment = MarathonDeployment.from_json(out)
    assert deployment.current_actions[0].app == "/web"
    assert deployment_result_json("d1", VERSION) == {"version": VERSION_TEXT, "deploymentId": "d1"}


def test_a_deployment_step_must_exist() -> None:
    with pytest.raises(ValueError, match="step 3 of 2"):
        Deployment.running("d", VERSION, [[], []], current_step=3)


def test_queue_items_parse_as_marathon_queue_item() -> None:
    spec = spec_of({"id": "/web", "cmd": "x", "instances": 4})
    item = QueueItem(
        app=app_json(spec, VERSION),
        count=3,
        delay=QueueDelay(time_left_seconds=0, overdue=True),
        since=VERSION,
        processed_offers_summary=offers_summary(
            [("insufficient cpus", 5), ("constraint hostname UNIQUE", 2), ("insufficient mem", 1)],
            10,
        ),
    )
    body = queue_json([item])
    parsed = MarathonQueueItem.from_json(body["queue"][0])
    assert parsed.count == 3 and parsed.delay.overdue is True
    summary = body["queue"][0]["processedOffersSummary"]
    assert (summary["processedOffersCount"], summary["unusedOffersCount"]) == (10, 8)
    funnel = {
        s["reason"]: (s["declined"], s["processed"]) for s in summary["rejectSummaryLastOffers"]
    }
    # Marathon's funnel order: constraints are checked before resources.
    assert funnel["UnfulfilledConstraint"] == (2, 10)
    assert funnel["InsufficientCpus"] == (5, 8)
    assert funnel["InsufficientMemory"] == (1, 3)
    assert funnel["InsufficientPorts"] == (0, 2)
    assert "role" not in body["queue"][0]


def test_offers_summary_rejects_more_rejections_than_nodes() -> None:
    with pytest.raises(ValueError, match="considered"):
        offers_summary([("insufficient cpus", 3)], 2)
    with pytest.raises(ValueError, match="no Marathon reason"):
        offers_summary([("cosmic rays", 1)], 2)


def test_info_parses_as_marathon_info() -> None:
    settings = InfoSettings(
        version="0.1.0",
        leader="master-1:8080",
        elected=True,
        cluster_id="c0ffee",
        hostname="master-1",
        http_port=8080,
        store_url="sqlite:///var/lib/pallet/state.db",
    )
    out = info_json(settings)
    assert set(out) == {
        "name",
        "version",
        "buildref",
        "elected",
        "leader",
        "frameworkId",
        "marathon_config",
        "zookeeper_config",
        "http_config",
    }
    info = MarathonInfo.from_json(out)
    assert info.http_config.http_port == 8080
    assert info.zookeeper_config.zk == "sqlite:///var/lib/pallet/state.db"
    assert info.marathon_config.local_port_min == 10000
    assert leader_json("master-1:8080") == {"leader": "master-1:8080"}


def _plan() -> DeploymentPlan:
    app = app_json(spec_of({"id": "/web", "cmd": "x"}), VERSION)
    return DeploymentPlan(
        id="d1",
        original=Group(id="/", version=VERSION),
        target=Group(id="/", apps=[app], version=LATER),
        steps=[DeploymentStep(actions=[{"action": "StartApplication", "app": "/web"}])],
        version=LATER,
    )


def _events() -> list[MarathonEvent]:
    plan, step = _plan(), _plan().steps[0]
    app = app_json(spec_of({"id": "/web", "cmd": "x"}), VERSION)
    health_check = app_json(spec_of(BODIES[1]), VERSION)["healthChecks"][0]
    return [
        ApiPostEvent(timestamp=LATER, client_ip="10.0.0.1", uri="/v2/apps/web", app_definition=app),
        StatusUpdateEvent(
            timestamp=LATER,
            slave_id="node-1",
            task_id="web.3f1c",
            task_status=MesosTaskState.TASK_RUNNING,
            app_id="/web",
            host="node-1.example",
            ip_addresses=[{"ipAddress": "10.0.0.5", "protocol": "IPv4"}],
            ports=[31000],
            version=VERSION,
        ),
        InstanceChangedEvent(
            timestamp=LATER,
            instance_id="web.3f1c",
            condition="Running",
            run_spec_id="/web",
            agent_id="node-1",
            host="node-1.example",
            run_spec_version=VERSION,
        ),
        AppTerminatedEvent(timestamp=LATER, app_id="/web"),
        DeploymentSuccessEvent(timestamp=LATER, id="d1", plan=plan),
        DeploymentFailedEvent(timestamp=LATER, id="d1", plan=plan, reason="cancelled"),
        DeploymentInfoEvent(timestamp=LATER, plan=plan, current_step=step),
        DeploymentStepSuccessEvent(timestamp=LATER, plan=plan, current_step=step),
        DeploymentStepFailureEvent(timestamp=LATER, plan=plan, current_step=step),
        FailedHealthCheckEvent(
            timestamp=LATER, app_id="/web", health_check=health_check, task_id="web.3f1c"
        ),
        HealthStatusChangedEvent(
            timestamp=LATER, app_id="/web", instance_id="web.3f1c", version=VERSION, alive=False
        ),
        UnhealthyInstanceKillEvent(
            timestamp=LATER,
            app_id="/web",
            task_id="web.3f1c",
            instance_id="web.3f1c",
            version=VERSION,
            reason="HealthCheck failed",
            host="node-1.example",
            slave_id="node-1",
        ),
        EventStreamAttached(timestamp=LATER, remote_address="10.0.0.9"),
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: e.event_type)
def test_events_parse_in_the_clients_event_factory(event: MarathonEvent) -> None:
    frame = sse_frame(event).decode()
    head, data, blank = frame.split("\n", 2)
    assert head == f"event: {event.event_type}" and blank == "\n"
    payload = json.loads(data.removeprefix("data: "))
    assert payload["eventType"] == event.event_type
    assert payload["timestamp"] == "2024-05-06T07:08:14.123Z"
    parsed = EventFactory().process(payload)
    assert parsed.event_type == event.event_type


def test_group_parses_as_marathon_group() -> None:
    group = MarathonGroup.from_json(_plan().target.to_json())
    assert group.apps[0].id == "/web"


def test_what_the_client_sends_reads_as_marathon_reads_it() -> None:
    outgoing = MarathonApp(
        cmd="python3 -m http.server $PORT0",
        cpus=0.5,
        mem=64,
        instances=2,
        constraints=[MarathonConstraint("hostname", "UNIQUE"), ["rack", "GROUP_BY", "2"]],
        port_definitions=[ClientPortDefinition(port=0, protocol="tcp", name="http")],
        health_checks=[MarathonHealthCheck(protocol="HTTP", path="/", port_index=0)],
        labels={"team": "web"},
        require_ports=False,
    )
    outgoing.id = "/web"
    spec = spec_of(json.loads(outgoing.to_json(minimal=True)))
    assert (spec.cpus, spec.mem, spec.instances) == (0.5, 64.0, 2)
    assert [str(c) for c in spec.constraints] == ["hostname UNIQUE", "rack GROUP_BY 2"]

    # get_app, change, update_app(minimal=True): what comes back goes back in unchanged.
    fetched = MarathonApp.from_json(app_json(spec, VERSION, counts=TaskCounts(), deployments=[]))
    fetched.version = None  # update_app blanks it
    assert apply_update(spec, read_update(json.loads(fetched.to_json(minimal=True)))) == spec

    # scale_app sends only the instance count.
    scaled = apply_update(
        spec, read_update(json.loads(MarathonApp(instances=5).to_json(minimal=True)))
    )
    assert scaled.instances == 5 and scaled.cmd == spec.cmd


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    from datetime import timezone

    from pallet.api.marathon import format_timestamp

    moment = datetime(2024, 1, 2, 5, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2024-01-02T03:04:05.999Z"
    assert format_timestamp(moment.replace(microsecond=0)) == "2024-01-02T03:04:05.000Z"
