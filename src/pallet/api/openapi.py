"""The request bodies of ``/v1/openapi.json``: routes that read their JSON themselves
(Marathon's shapes, the IAM's, Metronome's) are described here, so clients and fuzzers
such as schemathesis see the body each expects. Bodies read by hand (pods; the agent
protocol, whose routes FastAPI does not serve and which are added whole) have JSON
schemas of their own (``api.openapi_bodies``). Pure given the app.

A table of (path, method) -> pydantic model; their schemas go under ``requestBody``, and
the models they refer to under ``components/schemas``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from pallet.api.marathon.app import AppDefinition, AppUpdate
from pallet.api.marathon.deployment import Group
from pallet.api.metronome.jobspec import JobIn, ScheduleIn, TriggerIn
from pallet.api.openapi_bodies import AGENT_SCHEMAS, POD_SCHEMAS, agent_paths, pod_paths
from pallet.api.routes_iam import (
    GrantBody,
    GroupBody,
    JoinBody,
    LoginBody,
    PasswordBody,
    RotateBody,
    UserBody,
)
from pallet.api.routes_nodes import DrainBody
from pallet.api.routes_secrets import SecretBody

__all__ = ["BODIES", "OPTIONAL_BODIES", "describe_bodies"]

BODIES: dict[tuple[str, str], Any] = {
    ("/v2/apps", "post"): AppDefinition,
    ("/v2/apps", "put"): list[AppUpdate],
    ("/v2/apps", "patch"): list[AppUpdate],
    ("/v2/apps/{rest}", "put"): AppUpdate,
    ("/v2/apps/{rest}", "patch"): AppUpdate,
    ("/v2/groups", "post"): Group,
    ("/v2/groups", "put"): Group,
    ("/v2/groups/{rest}", "post"): Group,
    ("/v2/groups/{rest}", "put"): Group,
    ("/v1/nodes/{node_id}/drain", "post"): DrainBody,
    ("/v1/auth/login", "post"): LoginBody,
    ("/acs/api/v1/auth/login", "post"): LoginBody,
    ("/v1/auth/password", "post"): PasswordBody,
    ("/v1/auth/rotate", "post"): RotateBody,
    ("/v1/users/{uid}", "put"): UserBody,
    ("/v1/users/{uid}", "patch"): UserBody,
    ("/acs/api/v1/users/{uid}", "put"): UserBody,
    ("/acs/api/v1/users/{uid}", "patch"): UserBody,
    ("/v1/groups/{gid}", "put"): GroupBody,
    ("/acs/api/v1/groups/{gid}", "put"): GroupBody,
    ("/v1/acls/grant", "post"): GrantBody,
    ("/v1/acls/revoke", "post"): GrantBody,
    ("/v1/agent/join", "post"): JoinBody,
    ("/v1/secrets/{rest}", "put"): SecretBody,
    ("/v1/secrets/{rest}", "patch"): SecretBody,
    ("/v1/jobs", "post"): JobIn,
    ("/v1/jobs/{job_id}", "put"): JobIn,
    ("/v1/jobs/{job_id}/schedules", "post"): ScheduleIn,
    ("/v1/jobs/{job_id}/schedules/{schedule_id}", "put"): ScheduleIn,
    ("/v1/jobs/{job_id}/runs", "post"): TriggerIn,
    ("/v0/scheduled-jobs", "post"): JobIn,
    ("/v0/scheduled-jobs/{job_id}", "put"): JobIn,
}
OPTIONAL_BODIES = frozenset({("/v1/jobs/{job_id}/runs", "post")})
"""Routes of ``BODIES`` that take no body as well (a trigger without parameters)."""


def describe_bodies(app: FastAPI) -> None:
    """Make ``app.openapi()`` name the body of every route in ``BODIES`` it serves, and
    list the agent protocol's routes."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = plain()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for (path, method), model in BODIES.items():
            operation = doc.get("paths", {}).get(path, {}).get(method)
            if operation is None or "requestBody" in operation:
                continue
            schema = TypeAdapter(model).json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            schemas.update(schema.pop("$defs", {}))
            operation["requestBody"] = {
                "required": (path, method) not in OPTIONAL_BODIES,
                "content": {"application/json": {"schema": schema}},
            }
        for path, item in agent_paths().items():
            doc.setdefault("paths", {}).setdefault(path, item)
        for path, bodies in pod_paths().items():
            for method, body in bodies.items():
                operation = doc.get("paths", {}).get(path, {}).get(method)
                if operation is not None:
                    operation.setdefault("requestBody", body)
        schemas.update(AGENT_SCHEMAS)
        schemas.update(POD_SCHEMAS)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
