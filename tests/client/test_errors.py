"""HTTP error answers and failed connections become the ``ClientError`` tree, carrying
Marathon's message and details; answers that are not the documented JSON are named."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from pallet.client import (
    ApiError,
    BadRequest,
    Client,
    ClientError,
    Conflict,
    FieldError,
    InvalidRequest,
    MasterUnreachable,
    NotFound,
    ProtocolError,
    ServerError,
    field_label,
)
from pallet.model.errors import PalletError


def client_answering(status: int, **response: Any) -> Client:
    return Client(transport=httpx.MockTransport(lambda r: httpx.Response(status, **response)))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidRequest),
        (500, ServerError),
        (503, ServerError),
        (413, ApiError),  # no class of its own: the base
    ],
)
def test_each_status_has_its_error(status: int, kind: type[ApiError]) -> None:
    client = client_answering(status, json={"message": "what happened"})
    with pytest.raises(kind) as caught:
        client.list_apps()
    error = caught.value
    assert type(error) is kind and isinstance(error, PalletError)
    assert error.status == status
    assert error.server_message == "what happened"
    assert str(error) == f"GET /v2/apps: {status} what happened"


def test_a_422_carries_marathons_details_in_order() -> None:
    body = {
        "message": "Object is not valid",
        "details": [
            {"path": "/cpus", "errors": ["must be >= 0"]},
            {"path": "/portDefinitions(1)/port", "errors": ["error.min", "error.expected.int"]},
            {"path": "/", "errors": ["AppDefinition must either contain one of 'cmd' or 'args'"]},
        ],
    }
    with pytest.raises(InvalidRequest) as caught:
        client_answering(422, json=body).create_app({"id": "/web"})
    error = caught.value
    assert error.details == (
        FieldError("/cpus", ("must be >= 0",)),
        FieldError("/portDefinitions(1)/port", ("error.min", "error.expected.int")),
        FieldError("/", ("AppDefinition must either contain one of 'cmd' or 'args'",)),
    )
    assert str(error).splitlines() == [
        "POST /v2/apps: 422 Object is not valid",
        "  cpus: must be >= 0",
        "  portDefinitions[1].port: is below its minimum; must be a whole number",
        "  app: AppDefinition must either contain one of 'cmd' or 'args'",
    ]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/cpus", "cpus"),
        ("/", "app"),
        ("", "app"),
        ("/constraints(0)", "constraints[0]"),
        ("/container/docker/portMappings(2)/hostPort", "container.docker.portMappings[2].hostPort"),
    ],
)
def test_field_label(path: str, label: str) -> None:
    assert field_label(path) == label


def test_malformed_details_are_ignored_not_fatal() -> None:
    body = {"message": "Invalid JSON", "details": "Unexpected character ('}' (code 125))"}
    with pytest.raises(BadRequest) as caught:
        client_answering(400, json=body).create_app({})
    assert caught.value.details == ()
    body = {"message": "x", "details": [{"path": "/a", "errors": "one"}, 7, {"errors": ["e"]}]}
    with pytest.raises(InvalidRequest) as caught2:
        client_answering(422, json=body).create_app({})
    assert caught2.value.details == (FieldError("/a", ("one",)), FieldError("/", ("e",)))


def test_an_error_without_json_uses_its_text_or_reason() -> None:
    with pytest.raises(ServerError, match=r"GET /v2/apps: 502 upstream went away$"):
        client_answering(502, text="upstream went away\nmore").list_apps()
    with pytest.raises(ServerError, match=r"GET /v2/apps: 500 Internal Server Error$"):
        client_answering(500, content=b"").list_apps()


def test_conflict_names_the_deployments_that_lock_the_app() -> None:
    body = {"message": "App is locked", "deployments": [{"id": "d-1"}, {"id": "d-2"}]}
    with pytest.raises(Conflict) as caught:
        client_answering(409, json=body).scale_app("/web", 2)
    assert caught.value.deployment_ids == ("d-1", "d-2")
    with pytest.raises(Conflict) as caught2:
        client_answering(409, json={"message": "exists"}).create_app({"id": "/web"})
    assert caught2.value.deployment_ids == ()


def test_an_answer_that_is_not_json() -> None:
    client = client_answering(200, text="<html>nginx</html>")
    with pytest.raises(ProtocolError, match=r"GET /v2/apps: the answer is not JSON \('<html>"):
        client.list_apps()


def test_an_answer_missing_a_field_names_the_field() -> None:
    client = client_answering(200, json={"apps": [{"id": "/a"}, {"cmd": "x"}]})
    with pytest.raises(ProtocolError) as caught:
        client.list_apps()
    assert str(caught.value) == "GET /v2/apps: answer.apps[1].id: expected a string, got nothing"


def test_a_field_of_the_wrong_type_names_the_value() -> None:
    client = client_answering(200, json={"nodes": [{"id": "n", "capacity": {"cpus": "four"}}]})
    with pytest.raises(
        ProtocolError, match=r"answer.nodes\[0\].capacity.cpus: expected a number, "
    ):
        client.list_nodes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_says_to_start_the_master() -> None:
    port = free_port()
    with pytest.raises(MasterUnreachable) as caught:
        Client(f"127.0.0.1:{port}", timeout=2).list_apps()
    error = caught.value
    assert error.status is None and error.url == f"http://127.0.0.1:{port}"
    assert str(error) == (
        f"cannot reach the master at http://127.0.0.1:{port} (GET /v2/apps: connection refused); "
        "is `pallet up` running? (--master or PALLET_MASTER picks another)"
    )


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectTimeout("timed out"), "no connection within 3 s"),
        (httpx.ReadTimeout("timed out"), "no answer within 3 s"),
        (httpx.RemoteProtocolError("Server disconnected"), "server disconnected"),
    ],
)
def test_transport_failures_are_unreachable(exc: httpx.TransportError, reason: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    client = Client("http://m:1", timeout=3, transport=httpx.MockTransport(fail))
    with pytest.raises(MasterUnreachable) as caught:
        client.list_nodes()
    assert f"(GET /v1/nodes: {reason})" in str(caught.value)
    assert isinstance(caught.value, ClientError)
