"""``/v2/info``, ``/v2/leader``, ``/ping``, the event stream ``/v2/events`` and Prometheus
``/metrics``; does I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from pallet.api.context import ApiContext, context
from pallet.api.convert import epoch, marathon_task, moment
from pallet.api.http import json_response
from pallet.api.marathon import (
    AppTerminatedEvent,
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
    HealthStatusChangedEvent,
    MarathonEvent,
    ReadinessCheckResultEvent,
    StatusUpdateEvent,
    UnhealthyInstanceKillEvent,
    info_json,
    leader_json,
    sse_frame,
)
from pallet.api.marathon.deployment import DeploymentAction, action_fields
from pallet.api.render_pods import pod_json
from pallet.control import (
    AppRecord,
    AppTerminated,
    DeploymentChanged,
    DeploymentRecord,
    HealthChanged,
    HealthCheckFailed,
    ReadinessChanged,
    TaskChanged,
    UnhealthyKilled,
)
from pallet.model import NodeState
from pallet.model.net import is_loopback

__all__ = ["MetricsCollector", "router"]

router = APIRouter()

_KEEPALIVE_SECONDS = 15.0


@router.get("/ping")
async def ping() -> Response:
    return PlainTextResponse("pong")


@router.get("/v2/info")
async def info(request: Request) -> Response:
    return json_response(info_json(context(request).info))


@router.get("/v1/cluster")
async def cluster(request: Request) -> Response:
    """How the cluster is protected, for the dashboard's warning: ``exposed`` when the
    master listens beyond loopback, ``insecure`` when it does so without authentication
    and TLS (started with ``--insecure``)."""
    ctx = context(request)
    exposed = not is_loopback(ctx.info.hostname)
    auth, tls = ctx.auth is not None, ctx.ca is not None
    doc = {"auth": auth, "tls": tls, "exposed": exposed, "insecure": exposed and not (auth and tls)}
    return json_response(doc)


@router.get("/v2/leader")
async def leader(request: Request) -> Response:
    s = context(request).info
    if s.ha and not s.leader:
        return json_response({"message": "There is no leader"}, 404)
    return json_response(leader_json(s.leader or f"{s.hostname}:{s.http_port}"))


@router.delete("/v2/leader")
async def abdicate(request: Request) -> Response:
    """The leader steps down; another master is elected (this one, after a pause, may
    be again). Without several masters there is nobody to hand over to."""
    ctx = context(request)
    if ctx.abdicate is None:
        return json_response(
            {"message": "this master runs alone: there is no one to lead instead"}, 409
        )
    await ctx.abdicate()
    return json_response({"message": "Leadership abdicated"})


# ------------------------------------------------------------------ events


def _group(ctx: ApiContext, apps: list[dict[str, Any]], version: datetime) -> Group:
    records = [AppRecord.from_json(app) for app in apps]
    shown = [ctx.renderer.app(r, frozenset(), version_info=False) for r in records if not r.is_pod]
    pods = [pod_json(r) for r in records if r.is_pod]
    return Group(id="/", apps=shown, pods=pods, version=version)


def _plan(ctx: ApiContext, d: DeploymentRecord) -> DeploymentPlan:
    version = moment(d.version)
    originals = [a for a in d.originals.values() if a is not None]
    targets = [a for a in d.targets.values() if a is not None]
    pods = frozenset(
        a["id"] for a in (*originals, *targets) if (a.get("run") or {}).get("containers")
    )
    steps = [
        DeploymentStep(actions=[DeploymentAction(**action_fields(a, app, pods)) for a, app in step])
        for step in d.steps
    ]
    return DeploymentPlan(
        id=d.id,
        original=_group(ctx, originals, version),
        target=_group(ctx, targets, version),
        steps=steps,
        version=version,
    )


def marathon_event(ctx: ApiContext, event: object) -> MarathonEvent | None:
    """The Marathon event for one of control's events (None if Marathon has none)."""
    if isinstance(event, MarathonEvent):
        return event
    if isinstance(event, TaskChanged):
        t = event.task
        record = marathon_task(t, (), ctx.control.state.reservations)
        status = record.state if t.live else _terminal(t.state.value)
        return StatusUpdateEvent(
            timestamp=epoch(event.timestamp),
            slave_id=t.node_id,
            task_id=t.id,
            task_status=status,
            message=t.message,
            app_id=t.app_id,
            host=t.host,
            ip_addresses=[{"ipAddress": a, "protocol": "IPv4"} for a in record.ip_addresses],
            ports=list(t.ports),
            version=moment(t.version),
        )
    if isinstance(event, DeploymentChanged):
        d = event.deployment
        plan = _plan(ctx, d)
        when = epoch(event.timestamp)
        step = plan.steps[max(0, d.current_step - 1)] if plan.steps else DeploymentStep(actions=[])
        if event.kind == "info":
            return DeploymentInfoEvent(timestamp=when, plan=plan, current_step=step)
        if event.kind == "step_success":
            return DeploymentStepSuccessEvent(timestamp=when, plan=plan, current_step=step)
        if event.kind == "step_failure":
            return DeploymentStepFailureEvent(timestamp=when, plan=plan, current_step=step)
        if event.kind == "success":
            return DeploymentSuccessEvent(timestamp=when, id=d.id, plan=plan)
        return DeploymentFailedEvent(timestamp=when, id=d.id, plan=plan, reason=event.reason)
    if isinstance(event, HealthChanged | HealthCheckFailed | UnhealthyKilled):
        return _health_event(ctx, event)
    if isinstance(event, ReadinessChanged):
        t = event.task
        r = t.readiness[event.index]
        last = r.last_response
        return ReadinessCheckResultEvent(
            timestamp=epoch(event.timestamp),
            app_id=t.app_id,
            task_id=t.id,
            version=moment(t.version),
            readiness_check_result={
                "name": r.name,
                "taskId": t.id,
                "ready": r.ready,
                "lastResponse": None
                if last is None
                else {"status": last.status, "contentType": last.content_type, "body": last.body},
            },
        )
    if isinstance(event, AppTerminated):
        return AppTerminatedEvent(timestamp=epoch(event.timestamp), app_id=event.app.id)
    return None


def _health_event(
    ctx: ApiContext, event: HealthChanged | HealthCheckFailed | UnhealthyKilled
) -> MarathonEvent:
    t = event.task
    when = epoch(event.timestamp)
    if isinstance(event, HealthChanged):
        return HealthStatusChangedEvent(
            timestamp=when,
            app_id=t.app_id,
            instance_id=t.id,
            version=moment(t.version),
            alive=event.alive,
        )
    if isinstance(event, HealthCheckFailed):
        app = ctx.control.state.apps.get(t.app_id)
        shown = ctx.renderer.definition(app) if app is not None and not app.is_pod else {}
        checks = shown.get("healthChecks") or []
        check = checks[event.index] if event.index < len(checks) else {}
        return FailedHealthCheckEvent(
            timestamp=when, app_id=t.app_id, health_check=dict(check), task_id=t.id
        )
    result = t.health[event.index] if event.index < len(t.health) else None
    failures = result.consecutive_failures if result is not None else 0
    cause = (result.last_failure_cause if result is not None else None) or "no cause given"
    return UnhealthyInstanceKillEvent(
        timestamp=when,
        app_id=t.app_id,
        task_id=t.id,
        instance_id=t.id,
        version=moment(t.version),
        reason=f"{failures} consecutive health check failures: {cause}",
        host=t.host,
        slave_id=t.node_id,
    )


def _terminal(state: str) -> Any:
    from pallet.api.marathon import MesosTaskState

    known = {s.value for s in MesosTaskState}
    return MesosTaskState(state) if state in known else MesosTaskState.TASK_GONE


@router.get("/v2/events")
async def events(request: Request) -> Response:
    """Server-sent events; ``event_type`` (repeatable) keeps only those types."""
    ctx = context(request)
    wanted = set(request.query_params.getlist("event_type"))
    sub = ctx.control.bus.subscribe()
    remote = request.client.host if request.client else ""

    async def stream() -> AsyncIterator[bytes]:
        try:
            attached = EventStreamAttached(timestamp=datetime.now(UTC), remote_address=remote)
            if not wanted or attached.event_type in wanted:
                yield sse_frame(attached)
            while True:
                try:
                    event = await asyncio.wait_for(sub.get(), _KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b":\n\n"
                    continue
                if event is None:
                    return
                rendered = marathon_event(ctx, event)
                if rendered is not None and (not wanted or rendered.event_type in wanted):
                    yield sse_frame(rendered)
        finally:
            sub.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# ------------------------------------------------------------------ metrics


class MetricsCollector:
    """Prometheus metrics read from the master's state at scrape time."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterable[Metric]:
        state = self.ctx.control.state
        nodes = GaugeMetricFamily("pallet_nodes", "Registered nodes by state", labels=["state"])
        by_state: dict[str, int] = {}
        for record in state.nodes.values():
            by_state[record.state.value] = by_state.get(record.state.value, 0) + 1
        for name, n in sorted(by_state.items()):
            nodes.add_metric([name], n)
        yield nodes
        tasks = GaugeMetricFamily("pallet_tasks", "Live tasks by state", labels=["state"])
        t_states: dict[str, int] = {}
        for t in state.tasks.values():
            t_states[t.state.value] = t_states.get(t.state.value, 0) + 1
        for name, n in sorted(t_states.items()):
            tasks.add_metric([name], n)
        yield tasks
        surplus = sum(1 for t in state.tasks.values() if t.replaced and t.live)
        yield GaugeMetricFamily(
            "pallet_tasks_unreachable_replaced",
            "Unreachable tasks already replaced: processes that may still run beside their "
            "replacements until their node returns (and they are killed) or is gone",
            value=surplus,
        )
        yield GaugeMetricFamily("pallet_apps", "Apps", value=len(state.apps))
        yield GaugeMetricFamily(
            "pallet_deployments", "Running deployments", value=len(state.deployments)
        )
        waiting = sum(q.count for q in state.queue.values())
        yield GaugeMetricFamily(
            "pallet_queue_instances", "Instances waiting for placement", value=waiting
        )
        yield GaugeMetricFamily(
            "pallet_store_revision",
            "Store revision of the last write this master committed",
            value=state.revision,
        )
        applier = self.ctx.control.applier
        yield CounterMetricFamily("pallet_placements", "Tasks placed", value=applier.placed_total)
        yield CounterMetricFamily(
            "pallet_task_reports_illegal",
            "Agent reports of a task state the transition table refused (ignored)",
            value=applier.illegal_reports,
        )
        yield CounterMetricFamily(
            "pallet_placements_rejected",
            "Placements the applier's verify dropped",
            value=applier.rejected_total,
        )
        yield from self._node_resources()

    def _node_resources(self) -> Iterable[Metric]:
        state = self.ctx.control.state
        view = state.view
        families = {
            name: GaugeMetricFamily(f"pallet_node_{name}", help_, labels=["node", "resource"])
            for name, help_ in (
                ("capacity", "Node capacity (cpus in cores, mem in MiB)"),
                ("allocated", "Allocated to tasks (cpus in cores, mem in MiB)"),
                ("used", "Actually used by tasks (cpus in cores, mem in MiB)"),
            )
        }
        for node_id, row in view.row.items():
            record = state.nodes.get(node_id)
            if record is None or record.state in (NodeState.GONE, NodeState.DOWN):
                continue  # a gone (or down) node's resources are no longer the cluster's
            cap = view.cap[row]
            free = (view.free_cpu[row], view.free_mem[row])
            live = state.liveness[node_id]
            families["capacity"].add_metric([node_id, "cpus"], cap[0] / 1000)
            families["capacity"].add_metric([node_id, "mem"], float(cap[1]))
            families["allocated"].add_metric([node_id, "cpus"], (cap[0] - free[0]) / 1000)
            families["allocated"].add_metric([node_id, "mem"], float(cap[1] - free[1]))
            families["used"].add_metric([node_id, "cpus"], live.cpu_rate)
            families["used"].add_metric([node_id, "mem"], live.rss_bytes / (1 << 20))
            families["used"].add_metric([node_id, "disk"], live.disk_bytes / (1 << 20))
        yield from families.values()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(
        generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
