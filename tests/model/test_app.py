"""``RunSpec.placement_request``: the one place an app instance becomes a request."""

from __future__ import annotations

from pallet.model import Constraint, Operator, PersistentVolume, PlacementRequest, Resources
from pallet.model.app import RunSpec
from pallet.model.request import VolumeNeed

RUN = RunSpec(
    resources=Resources(500, 256, 10, 0),
    host_ports=(0, 8080),
    constraints=(Constraint("hostname", Operator.UNIQUE),),
    role="prod",
    accepted_roles=("*", "prod"),
)


def test_an_instance_carries_priority_and_everything_placement_reads() -> None:
    got = RUN.placement_request("/web", "web.t1", priority=7)
    assert got == PlacementRequest(
        id="web.t1",
        app_id="/web",
        resources=Resources(500, 256, 10, 0),
        ports=(0, 8080),
        constraints=(Constraint("hostname", Operator.UNIQUE),),
        role="prod",
        priority=7,
        accepted_roles=frozenset({"*", "prod"}),
    )


def test_a_new_resident_slot_asks_for_its_volumes_on_top() -> None:
    run = RunSpec(
        resources=Resources(500, 256, 10, 0),
        persistent=(
            PersistentVolume("data", 600),
            PersistentVolume("fast", 100, type="mount", max_size=200),
        ),
    )
    got = run.placement_request("/db", "db.t1", slot="slot-1", priority=3)
    assert got.resources == Resources(500, 256, 610, 0)
    assert got.volume_disks == (VolumeNeed("mount", 100, max_size=200),)
    assert (got.reservation, got.node_id, got.priority) == ("slot-1", None, 3)


def test_an_existing_slot_is_pinned_to_its_node_without_constraints() -> None:
    got = RUN.placement_request("/web", "web.t2", slot="slot-1", node_id="n1", priority=2)
    assert (got.node_id, got.reservation, got.constraints, got.priority) == ("n1", "slot-1", (), 2)
    assert got.resources == RUN.resources


def test_checks_and_fetch_are_read_from_their_normalised_json() -> None:
    from pallet.api.marathon import normalize_app, read_app
    from pallet.model import CheckProtocol, FetchUri
    from pallet.model.app_run import run_spec

    spec = normalize_app(
        read_app(
            {
                "id": "/h",
                "cmd": "x",
                "healthChecks": [
                    {"protocol": "COMMAND", "command": {"value": "true"}},
                    {"protocol": "TCP", "port": 99, "delaySeconds": 2},
                    {"protocol": "HTTP", "portIndex": 0, "path": "/p", "ignoreHttp1xx": True},
                ],
                "readinessChecks": [
                    {"portName": "default", "httpStatusCodesForReady": [200, 204]},
                ],
                "fetch": [{"uri": "http://a/b", "destPath": "d", "extract": False}],
            }
        )
    )
    run = run_spec(spec)
    command, tcp, http = run.health_checks
    assert (command.protocol, command.command, command.grace_period) == (
        CheckProtocol.COMMAND,
        "true",
        300.0,
    )
    assert (tcp.port, tcp.port_index, tcp.ignore_http1xx, tcp.delay) == (99, None, False, 2.0)
    assert (http.port_index, http.path, http.interval, http.timeout) == (0, "/p", 60.0, 20.0)
    assert http.ignore_http1xx  # Marathon's name; it was read as ignoreHttp1Xx and dropped
    (ready,) = run.readiness_checks
    assert (ready.name, ready.port_name, ready.status_codes) == (
        "readinessCheck",
        "default",
        (200, 204),
    )
    assert run.fetch == (FetchUri("http://a/b", False, False, False, "d"),)
