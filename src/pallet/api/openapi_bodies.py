"""JSON schemas in ``/v1/openapi.json`` for bodies read by hand rather than by pydantic
models, so clients, and fuzzers such as ``pallet bench security``, see them; pure.

- The agent protocol: its five routes are served outside FastAPI's router
  (``routes_agent.AgentRoutes``), so FastAPI does not list them; they are added whole.
  The schemas describe the readers in ``pallet.model.reports`` (the messages' one JSON
  encoding); enumerations come from the model's own enums.
- Marathon's pods (``api.pod_spec``): the bodies of ``/v2/pods`` and ``/v2/pods/{id}``.

What clients write validates against them (tested), and a body a schema allows is read
or refused with a 422 naming the field, never a 5xx (tested, and checked by the fuzzers).
"""

from __future__ import annotations

from typing import Any

from pallet.control.nodes import MAX_POLL_WAIT
from pallet.model import NodeState
from pallet.model.task import Reason, TaskState

__all__ = ["AGENT_SCHEMAS", "POD_SCHEMAS", "agent_paths", "pod_paths"]

_INT63 = 2**63
_NULL = {"type": "null"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


def _string(max_length: int, **more: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **more}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        doc["required"] = list(required)
    return doc


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TIME = _nullable({"type": "number", "minimum": 0, "maximum": 253402300799})

AGENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "AgentNode": _object(
        {
            "id": _string(200, minLength=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"),
            "hostname": _string(255, minLength=1),
            "capacity": {
                "description": "[millicpus, memory MiB, disk MiB, milli-GPUs]",
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 10**15},
                "minItems": 4,
                "maxItems": 4,
            },
            "gpu_count": {"type": "integer", "minimum": 0, "maximum": 10**6},
            "gpu_model": _string(255),
            "ports": {
                "description": "port ranges such as 31000-32000",
                "type": "array",
                "items": _string(100, pattern=r"^[0-9]{1,5}(-[0-9]{1,5})?$"),
                "maxItems": 10_000,
            },
            "attributes": {"type": "object", "additionalProperties": _string(10_000)},
            "state": {"enum": [s.value for s in NodeState]},
            "role": _string(255),
            "networks": {"type": "array", "items": _string(64), "maxItems": 64},
            "disks": {
                "type": "array",
                "maxItems": 64,
                "items": _object(
                    {
                        "type": {"enum": ["path", "mount"]},
                        "root": _string(4096, pattern="^/"),
                        "size": {"type": "integer", "minimum": 1, "maximum": 10**12},
                    },
                    ("type", "root", "size"),
                ),
            },
        },
        ("id", "hostname", "capacity"),
    ),
    "AgentRegistration": _object(
        {
            "node": _ref("AgentNode"),
            "address": _string(1000, description="host:port where the agent serves task logs"),
            "boot_id": _string(200, description="the agent run's id"),
        },
        ("node",),
    ),
    "AgentHealthResult": _object(
        {
            "alive": {"type": "boolean"},
            "consecutive_failures": _nullable({"type": "integer", "minimum": 0, "maximum": 2**31}),
            "first_success": _TIME,
            "last_success": _TIME,
            "last_failure": _TIME,
            "last_failure_cause": _nullable(_string(10_000)),
        },
        ("alive",),
    ),
    "AgentReadinessResult": _object(
        {
            "name": _nullable(_string(10_000)),
            "ready": {"type": "boolean"},
            "last_response": _nullable(
                _object(
                    {
                        "status": _nullable({"type": "integer", "minimum": 0, "maximum": 2**31}),
                        "content_type": _nullable(_string(10_000)),
                        "body": _nullable(_string(64 * 1024)),
                    }
                )
            ),
        },
        ("ready",),
    ),
    "AgentTaskStatus": _object(
        {
            "task_id": _string(200),
            "state": {"enum": [s.value for s in TaskState]},
            "seq": {"type": "integer", "minimum": 1, "maximum": _INT63},
            "reason": _nullable({"enum": [r.value for r in Reason]}),
            "message": _string(64 * 1024),
            "exit_code": _nullable({"type": "integer", "minimum": -(2**31), "maximum": 2**31}),
            "signal": _nullable({"type": "integer", "minimum": 0, "maximum": 255}),
            "healthy": _nullable({"type": "boolean"}),
            "health": _nullable(
                {"type": "array", "items": _ref("AgentHealthResult"), "maxItems": 64}
            ),
            "readiness": _nullable(
                {"type": "array", "items": _ref("AgentReadinessResult"), "maxItems": 64}
            ),
            "ip_addresses": _nullable(
                {
                    "type": "array",
                    "maxItems": 16,
                    "items": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}], "type": "string"},
                }
            ),
        },
        ("task_id", "state", "seq"),
    ),
    "AgentStatusBatch": _object(
        {"statuses": {"type": "array", "items": _ref("AgentTaskStatus")}}, ("statuses",)
    ),
    "AgentTaskUsage": _object(
        {
            "cpu_seconds": {"type": "number", "minimum": 0, "maximum": 1e15},
            "rss_bytes": {"type": "integer", "minimum": 0, "maximum": _INT63},
            "disk_bytes": {"type": "integer", "minimum": 0, "maximum": _INT63},
        }
    ),
    "AgentHeartbeat": _object(
        {"usage": {"type": "object", "additionalProperties": _ref("AgentTaskUsage")}}
    ),
}
"""The agent protocol's request bodies, by the name they get under
``components/schemas``."""

_NODE_ID = {
    "name": "node_id",
    "in": "path",
    "required": True,
    "schema": _string(200, minLength=1),
}


def _operation(summary: str, body: str | None, answer: str, **more: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["agent"],
        "summary": summary,
        "responses": {
            "200": {"description": answer},
            "404": {"description": "unknown node: the agent registers again"},
            "422": {"description": "a field does not read; the body names it"},
        },
        **more,
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def agent_paths() -> dict[str, dict[str, Any]]:
    """The protocol's path items, as ``routes_agent.ROUTES`` lists them."""
    node = "/v1/agent/nodes/{node_id}"
    return {
        "/v1/agent/register": {
            "post": _operation(
                "An agent joins",
                "AgentRegistration",
                "{node_id, revision, heartbeat_interval, poll_wait}",
            )
        },
        f"{node}/desired": {
            "get": _operation(
                "Long-poll the tasks the node should run",
                None,
                "{revision, tasks, volumes}: every task the node should run",
                parameters=[
                    _NODE_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": _INT63},
                        "description": "answer once the node's revision is past this",
                    },
                    {
                        "name": "wait",
                        "in": "query",
                        "schema": {"type": "number", "minimum": 0, "maximum": MAX_POLL_WAIT},
                        "description": (
                            "seconds to wait for a change: at most 60, or the poll_wait the "
                            "master granted if longer"
                        ),
                    },
                ],
            )
        },
        f"{node}/status": {
            "post": _operation(
                "Task status updates, in the order they happened",
                "AgentStatusBatch",
                "{acks: [[task id, seq], ...]}: what the master stored",
                parameters=[_NODE_ID],
            )
        },
        f"{node}/heartbeat": {
            "post": _operation(
                "The agent is alive; what its tasks used",
                "AgentHeartbeat",
                "{state, heartbeat_interval, poll_wait}",
                parameters=[_NODE_ID],
            )
        },
        f"{node}/drain": {
            "post": _operation(
                "The agent is leaving and kills its tasks",
                None,
                "{state}",
                parameters=[_NODE_ID],
            )
        },
    }


# ---------------------------------------------------------------- Marathon's pods

_NAME = _string(63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_SECONDS = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_COMMAND = {
    "oneOf": [
        _object({"shell": {"type": "string"}}, ("shell",)),
        _object({"argv": {"type": "array", "items": {"type": "string"}}}, ("argv",)),
    ]
}
_CHECK_TIMING = {
    "gracePeriodSeconds": _SECONDS,
    "intervalSeconds": _SECONDS,
    "maxConsecutiveFailures": _SECONDS,
    "timeoutSeconds": _SECONDS,
    "delaySeconds": _SECONDS,
}


def _one_check(kind: str, inner: dict[str, Any]) -> dict[str, Any]:
    return _object({kind: inner, **_CHECK_TIMING}, (kind,))


POD_SCHEMAS: dict[str, dict[str, Any]] = {
    "PodContainer": _object(
        {
            "name": _NAME,
            "exec": _object({"command": _COMMAND, "overrideEntrypoint": {"type": "boolean"}}),
            "resources": _object(
                {
                    "cpus": {"type": "number", "minimum": 0.001, "maximum": 1e12},
                    "mem": {"type": "number", "minimum": 0.001, "maximum": 1e12},
                    "disk": {"type": "number", "minimum": 0, "maximum": 1e12},
                    "gpus": {"type": "integer", "minimum": 0, "maximum": 1024},
                }
            ),
            "endpoints": {
                "type": "array",
                "items": _object(
                    {
                        "name": _NAME,
                        "hostPort": {"type": "integer", "minimum": 0, "maximum": 65535},
                        "protocol": {
                            "type": "array",
                            "items": {"enum": ["tcp", "udp"]},
                            "minItems": 1,
                        },
                    },
                    ("name",),
                ),
            },
            "image": _object(
                {
                    "kind": {"enum": ["DOCKER"]},
                    "id": {"type": "string"},
                    "forcePull": {"type": "boolean"},
                    "labels": _STR_MAP,
                },
                ("id",),
            ),
            "environment": _STR_MAP,
            "user": {"type": "string"},
            "healthCheck": {
                "oneOf": [
                    _one_check(
                        "http",
                        _object(
                            {
                                "endpoint": _NAME,
                                "path": {"type": "string"},
                                "scheme": {"enum": ["HTTP", "HTTPS"]},
                            },
                            ("endpoint",),
                        ),
                    ),
                    _one_check("tcp", _object({"endpoint": _NAME}, ("endpoint",))),
                    _one_check("exec", _object({"command": _COMMAND}, ("command",))),
                ]
            },
            "volumeMounts": {
                "type": "array",
                "items": _object(
                    {
                        "name": _NAME,
                        "mountPath": {"type": "string"},
                        "readOnly": {"type": "boolean"},
                    },
                    ("name", "mountPath"),
                ),
            },
            "artifacts": {
                "type": "array",
                "items": _object(
                    {
                        "uri": {"type": "string"},
                        "extract": {"type": "boolean"},
                        "executable": {"type": "boolean"},
                        "cache": {"type": "boolean"},
                        "destPath": {"type": "string"},
                    },
                    ("uri",),
                ),
            },
            "labels": _STR_MAP,
            "lifecycle": _object(
                {"killGracePeriodSeconds": {"type": "number", "minimum": 0, "maximum": 1e12}}
            ),
        },
        ("name", "resources"),
    ),
    "Pod": _object(
        {
            "id": _string(
                1000,
                description="a Marathon path: /group/name",
                pattern=r"^/?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(/[a-z0-9]([a-z0-9.-]*[a-z0-9])?)*$",
            ),
            "labels": _STR_MAP,
            "version": {"type": "string"},
            "user": _string(10_000, minLength=1),
            "environment": _STR_MAP,
            "containers": {"type": "array", "items": _ref("PodContainer"), "minItems": 1},
            "volumes": {
                "type": "array",
                "items": _object({"name": _NAME, "host": {"type": "string"}}, ("name",)),
            },
            "networks": {
                "type": "array",
                "maxItems": 1,
                "items": _object({"mode": {"enum": ["host"]}}, ("mode",)),
            },
            "scaling": _object(
                {"kind": {"enum": ["fixed"]}, "instances": {"type": "integer", "minimum": 0}}
            ),
            "scheduling": _object(
                {
                    "backoff": _object(
                        {
                            "backoff": {"type": "number", "minimum": 0},
                            "backoffFactor": {"type": "number", "minimum": 0},
                            "maxLaunchDelay": {"type": "number", "minimum": 0},
                        }
                    ),
                    "upgrade": _object(
                        {
                            "minimumHealthCapacity": {"type": "number", "minimum": 0, "maximum": 1},
                            "maximumOverCapacity": {"type": "number", "minimum": 0, "maximum": 1},
                            "progressDeadlineSeconds": {"type": "number", "exclusiveMinimum": 0},
                            "autoRollback": {"type": "boolean"},
                            "canaryInstances": {"type": "integer", "minimum": 0},
                            "autoPromoteAfterSeconds": {"type": "number", "minimum": 0},
                        }
                    ),
                    "placement": _object(
                        {
                            "constraints": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "minItems": 2,
                                    "maxItems": 3,
                                },
                            },
                            "acceptedResourceRoles": {
                                "type": "array",
                                "items": {"type": "string"},
                                "minItems": 1,
                            },
                        }
                    ),
                    "killSelection": {"enum": ["YOUNGEST_FIRST", "OLDEST_FIRST"]},
                    "unreachableStrategy": {
                        "oneOf": [
                            {"enum": ["disabled"]},
                            _object(
                                {
                                    "inactiveAfterSeconds": {"type": "number", "minimum": 0},
                                    "expungeAfterSeconds": {"type": "number", "minimum": 0},
                                }
                            ),
                        ]
                    },
                }
            ),
            "executorResources": _object(
                {
                    "cpus": {"type": "number", "minimum": 0},
                    "mem": {"type": "number", "minimum": 0},
                    "disk": {"type": "number", "minimum": 0},
                }
            ),
            "role": {"type": "string"},
            "legacySharedCgroups": {"enum": [True]},
        },
        ("id", "containers"),
    ),
}
"""Marathon's pod (``pod.raml``, ``podContainer.raml``) as Pallet reads it
(``api.pod_spec``): Marathon's field names; what Pallet refuses (secrets, persistent and
secret volumes, container networks, per-container limits, ``linuxInfo``...) is left
out, so a client sees what it may send."""


def pod_paths() -> dict[str, dict[str, dict[str, Any]]]:
    """The request bodies of ``/v2/pods`` (create) and ``/v2/pods/{id}`` (replace)."""
    body = {"required": True, "content": {"application/json": {"schema": _ref("Pod")}}}
    return {"/v2/pods": {"post": body}, "/v2/pods/{rest}": {"put": body}}
