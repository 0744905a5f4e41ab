"""Marathon's pod definition (``/v2/pods``): read, check and complete it, and turn it into
the ``RunSpec`` control acts on; pure.

Field names and defaults are Marathon's (``pod.raml``, ``podContainer.raml``). A pod
instance is one task to control: its resources are the sum of its containers' plus the
executor's (``executorResources``, Marathon's defaults 0.1 CPU, 32 MiB, 10 MiB disk:
Pallet's executor is the supervisor in ``model.pods``), its host ports are the endpoints'
(``hostPort`` 0 = any), named by endpoint, and its health checks are the containers'.
Every field Pallet cannot honour yet is refused with a 422 naming its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pallet.api.marathon.errors import Violation, not_valid
from pallet.api.marathon.pathid import canonical_path, path_violations
from pallet.api.marathon.support import Allowances, host_path_allowed
from pallet.api.pod_containers import (
    field_env,
    field_int,
    field_num,
    field_obj,
    field_str,
    field_str_map,
    parse_container,
    refuse_set,
)
from pallet.control.records import RunSpec
from pallet.model import HealthCheckSpec, Resources, ValidationError, parse_constraints
from pallet.model.frozen import FrozenMap, freeze
from pallet.model.limits import pids_max_of
from pallet.model.pods import CONTAINER_NAME
from pallet.model.roles import PUBLIC_ROLE, UNRESERVED, role_messages

__all__ = ["ParsedPod", "health_owners", "parse_pod"]

EXECUTOR_DEFAULTS = {"cpus": 0.1, "mem": 32.0, "disk": 10.0}
_POD_FIELDS = {
    "id", "labels", "version", "user", "environment", "containers", "secrets", "volumes",
    "networks", "scaling", "scheduling", "executorResources", "role", "linuxInfo",
    "legacySharedCgroups",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParsedPod:
    """A checked pod: its canonical definition (every default written out, no version)
    and what control runs."""

    id: str
    definition: dict[str, Any]
    run: RunSpec

    @property
    def stored_definition(self) -> FrozenMap[Any]:
        """The definition as ``AppRecord.definition`` keeps it: without its count
        (``scaling.instances``; control keeps it in ``run`` only), in this order (a pod
        is stored with its keys' order, so it renders the same after a restart)."""
        scaling = {k: v for k, v in self.definition["scaling"].items() if k != "instances"}
        return freeze({**self.definition, "scaling": scaling})


# ------------------------------------------------------------ the pod


def _scheduling(raw: object, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Marathon's ``scheduling`` (canonical form) and the ``RunSpec`` fields it sets."""
    path = "/scheduling"
    doc = field_obj(
        raw, path, {"backoff", "upgrade", "placement", "killSelection", "unreachableStrategy"}
    )
    backoff = field_obj(
        doc.get("backoff") or {}, f"{path}/backoff", {"backoff", "backoffFactor", "maxLaunchDelay"}
    )
    b = field_num(backoff.get("backoff", 1.0), f"{path}/backoff/backoff", 0)
    factor = field_num(backoff.get("backoffFactor", 1.15), f"{path}/backoff/backoffFactor", 0)
    max_delay = field_num(backoff.get("maxLaunchDelay", 300.0), f"{path}/backoff/maxLaunchDelay", 0)
    upgrade_fields = {"minimumHealthCapacity", "maximumOverCapacity", "progressDeadlineSeconds",
                      "autoRollback", "canaryInstances", "autoPromoteAfterSeconds"}  # fmt: skip
    upgrade = field_obj(doc.get("upgrade") or {}, f"{path}/upgrade", upgrade_fields)
    up = f"{path}/upgrade"
    min_health = field_num(
        upgrade.get("minimumHealthCapacity", 1.0), f"{up}/minimumHealthCapacity", 0, 1
    )
    max_over = field_num(upgrade.get("maximumOverCapacity", 1.0), f"{up}/maximumOverCapacity", 0, 1)
    canonical_upgrade: dict[str, Any] = {
        "minimumHealthCapacity": min_health,
        "maximumOverCapacity": max_over,
    }
    deadline = upgrade.get("progressDeadlineSeconds")
    if deadline is not None:
        deadline = field_num(deadline, f"{up}/progressDeadlineSeconds", 0)
        if deadline <= 0:
            raise not_valid([Violation(f"{up}/progressDeadlineSeconds", "must be > 0")])
        canonical_upgrade["progressDeadlineSeconds"] = deadline
    auto_rollback = upgrade.get("autoRollback")
    if auto_rollback is not None:
        if not isinstance(auto_rollback, bool):
            raise not_valid([Violation(f"{up}/autoRollback", "must be true or false")])
        canonical_upgrade["autoRollback"] = auto_rollback
    canaries = upgrade.get("canaryInstances")
    if canaries is not None:
        canonical_upgrade["canaryInstances"] = field_int(canaries, f"{up}/canaryInstances", 0)
    promote = upgrade.get("autoPromoteAfterSeconds")
    if promote is not None:
        promote = field_num(promote, f"{up}/autoPromoteAfterSeconds", 0)
        canonical_upgrade["autoPromoteAfterSeconds"] = promote
    placement = field_obj(
        doc.get("placement") or {}, f"{path}/placement", {"constraints", "acceptedResourceRoles"}
    )
    try:
        constraints = tuple(
            dict.fromkeys(
                parse_constraints(
                    placement.get("constraints") or [], f"{path}/placement/constraints"
                )
            )
        )
    except ValidationError as e:
        raise not_valid([Violation(e.field, e.message)]) from None
    accepted = placement.get("acceptedResourceRoles")
    roles: tuple[str, ...] = ("*",)
    if accepted is not None:
        ap = f"{path}/placement/acceptedResourceRoles"
        if not isinstance(accepted, list) or not accepted:
            raise not_valid([Violation(ap, "must be a non-empty list of roles")])
        allowed = {UNRESERVED, PUBLIC_ROLE, role}
        for i, r in enumerate(accepted):
            if field_str(r, f"{ap}({i})") not in allowed:
                message = f"acceptedResourceRoles can only contain {', '.join(sorted(allowed))}"
                raise not_valid([Violation(f"{ap}({i})", message)])
        roles = tuple(dict.fromkeys(accepted))
    kill_selection = doc.get("killSelection", "YOUNGEST_FIRST")
    if kill_selection not in ("YOUNGEST_FIRST", "OLDEST_FIRST"):
        raise not_valid(
            [Violation(f"{path}/killSelection", "must be YOUNGEST_FIRST or OLDEST_FIRST")]
        )
    unreachable = doc.get("unreachableStrategy", {})
    inactive: float | None
    canonical_unreachable: str | dict[str, float]
    if unreachable == "disabled":
        inactive, expunge, canonical_unreachable = None, 0.0, "disabled"
    else:
        u = field_obj(
            unreachable,
            f"{path}/unreachableStrategy",
            {"inactiveAfterSeconds", "expungeAfterSeconds"},
        )
        inactive = field_num(
            u.get("inactiveAfterSeconds", 0), f"{path}/unreachableStrategy/inactiveAfterSeconds", 0
        )
        expunge = field_num(
            u.get("expungeAfterSeconds", 0), f"{path}/unreachableStrategy/expungeAfterSeconds", 0
        )
        canonical_unreachable = {"inactiveAfterSeconds": inactive, "expungeAfterSeconds": expunge}
    canonical: dict[str, Any] = {
        "backoff": {"backoff": b, "backoffFactor": factor, "maxLaunchDelay": max_delay},
        "upgrade": canonical_upgrade,
        "killSelection": kill_selection,
        "unreachableStrategy": canonical_unreachable,
    }
    if constraints or accepted is not None:
        canonical["placement"] = {}
        if constraints:
            canonical["placement"]["constraints"] = [c.to_marathon() for c in constraints]
        if accepted is not None:
            canonical["placement"]["acceptedResourceRoles"] = list(roles)
    run = {
        "backoff_seconds": b,
        "backoff_factor": factor,
        "max_launch_delay_seconds": max_delay,
        "minimum_health_capacity": min_health,
        "maximum_over_capacity": max_over,
        "progress_deadline_seconds": deadline,
        "auto_rollback": bool(auto_rollback),
        "canary_instances": canaries or 0,
        "auto_promote_after_seconds": promote,
        "constraints": constraints,
        "accepted_roles": roles,
        "kill_selection": kill_selection,
        "unreachable_inactive_after_seconds": inactive,
        "unreachable_expunge_after_seconds": expunge,
    }
    return canonical, run


def _volumes(raw: object, allow: Allowances) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """The pod's ``volumes``: their canonical form, and each name with its ``host`` (None:
    ephemeral). Persistent and secret volumes are refused."""
    if raw is None:
        return [], {}
    if not isinstance(raw, list):
        raise not_valid([Violation("/volumes", "must be a list")])
    canonical, hosts = [], {}
    for i, v in enumerate(raw):
        path = f"/volumes({i})"
        doc = field_obj(v, path, {"name", "host", "persistent", "secret"})
        name = field_str(doc.get("name"), f"{path}/name")
        if not CONTAINER_NAME.match(name):
            raise not_valid([Violation(f"{path}/name", "must be a DNS label of 1-63 characters")])
        if name in hosts:
            raise not_valid([Violation(f"{path}/name", f"volume {name} is defined twice")])
        if doc.get("persistent") is not None:
            message = (
                "persistent pod volumes are not supported by Pallet yet (apps have local "
                "persistent volumes; pods have ephemeral and host volumes)"
            )
            raise not_valid([Violation(f"{path}/persistent", message)])
        if doc.get("secret") is not None:
            message = "secret volumes are not supported for pods by Pallet yet"
            raise not_valid([Violation(f"{path}/secret", message)])
        host = doc.get("host")
        if host is not None:
            host = field_str(host, f"{path}/host")
            parts = host.strip("/").split("/")
            if host == "/" or "\x00" in host or any(p in ("", ".", "..") for p in parts):
                message = "must be a path without empty, '.' or '..' segments, and not /"
                raise not_valid([Violation(f"{path}/host", message)])
            if host.startswith("/") and not host_path_allowed(host, allow.host_paths):
                allowed = ", ".join(allow.host_paths) or "none"
                message = (
                    f"{host} is outside the host paths this cluster allows ({allowed}; the "
                    "operator allows more with --allow-host-path)"
                )
                raise not_valid([Violation(f"{path}/host", message)])
        hosts[name] = host
        canonical.append({"name": name} if host is None else {"name": name, "host": host})
    return canonical, hosts


def parse_pod(
    raw: object,
    pod_id: str | None = None,
    default_role: str = "*",
    allow: Allowances | None = None,
) -> ParsedPod:
    """Check a pod body (``pod_id``: the id in the URL of a PUT) and complete it with
    Marathon's defaults (``allow``: the host paths the operator allows volumes from).
    Raises ``MarathonApiError`` 422 naming the first bad path."""
    doc = field_obj(raw, "", _POD_FIELDS)
    given = doc.get("id", pod_id)
    if given is None:
        raise not_valid([Violation("/id", "error.path.missing")])
    canonical_id = canonical_path(field_str(given, "/id"))
    bad_id = path_violations(canonical_id)
    if bad_id:
        raise not_valid(bad_id)
    if pod_id is not None and canonical_id != pod_id:
        message = f"'{pod_id}' does not match definition's id ('{canonical_id}')"
        raise not_valid([Violation("/id", message)])
    refuse_set(doc, "", ("secrets", "linuxInfo"))
    volumes_doc, volumes = _volumes(doc.get("volumes"), allow or Allowances())
    user = None if doc.get("user") is None else field_str(doc["user"], "/user")
    if user is not None and not user.strip():
        raise not_valid([Violation("/user", "must not be empty")])
    if doc.get("legacySharedCgroups") is False:
        message = (
            "per-container cgroups are not supported by Pallet yet: a pod's containers "
            "share one cgroup (legacySharedCgroups: true)"
        )
        raise not_valid([Violation("/legacySharedCgroups", message)])
    networks = doc.get("networks") or [{"mode": "host"}]
    if not isinstance(networks, list):
        raise not_valid([Violation("/networks", "must be a list")])
    for i, n in enumerate(networks):
        net = field_obj(n, f"/networks({i})", {"name", "mode", "labels"})
        if net.get("mode", "container") != "host" or len(networks) > 1:
            message = 'Pallet runs pods on the host network only: use [{"mode": "host"}]'
            raise not_valid([Violation(f"/networks({i})/mode", message)])
        refuse_set(net, f"/networks({i})", ("name", "labels"))
    role = field_str(doc.get("role", default_role), "/role")
    for m in role_messages(role):
        raise not_valid([Violation("/role", m)])
    if role != default_role:
        raise not_valid([Violation("/role", f"must be the default role {default_role!r}")])
    labels = field_str_map(doc.get("labels", {}), "/labels")
    try:
        pids_max_of(labels)  # the instance's process limit, as for apps
    except ValidationError as bad:
        raise not_valid([Violation(bad.field, bad.message)]) from None
    env = field_env(doc.get("environment", {}), "/environment")
    scaling = field_obj(doc.get("scaling") or {"kind": "fixed"}, "/scaling", {"kind", "instances"})
    if scaling.get("kind", "fixed") != "fixed":
        raise not_valid([Violation("/scaling/kind", "must be fixed")])
    instances = field_int(scaling.get("instances", 1), "/scaling/instances", 0)
    containers_raw = doc.get("containers")
    if not isinstance(containers_raw, list) or not containers_raw:
        raise not_valid([Violation("/containers", "must be a list of at least one container")])
    endpoint_names: list[str] = []
    for i, c in enumerate(containers_raw):
        given_endpoints = c.get("endpoints") if isinstance(c, Mapping) else None
        # (a container whose endpoints are not a list is refused when it is read)
        for j, e in enumerate(given_endpoints if isinstance(given_endpoints, list) else []):
            name = e.get("name") if isinstance(e, Mapping) else None
            if name in endpoint_names:
                path = f"/containers({i})/endpoints({j})/name"
                raise not_valid([Violation(path, f"endpoint {name} is defined twice in the pod")])
            if isinstance(name, str):
                endpoint_names.append(name)
    containers = [
        parse_container(c, f"/containers({i})", env, endpoint_names, user, volumes)
        for i, c in enumerate(containers_raw)
    ]
    _shared_sandbox_paths(containers)
    names = [c.spec.name for c in containers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise not_valid(
                [Violation(f"/containers({i})/name", f"container {name} is defined twice")]
            )
    executor_doc, executor = _executor(doc.get("executorResources"))
    total = executor
    for c in containers:
        total = total + c.resources
    endpoints = [e for c in containers for e in c.endpoints]
    fixed = [e["hostPort"] for e in endpoints if e["hostPort"]]
    if len(set(fixed)) != len(fixed):
        raise not_valid([Violation("/containers", "two endpoints ask for the same hostPort")])
    ports = tuple(e["name"] for e in endpoints)
    checks = tuple(
        c.health
        if c.health_endpoint is None
        else _with_port_index(c.health, ports.index(c.health_endpoint))
        for c in containers
        if c.health is not None
    )
    scheduling_doc, scheduling = _scheduling(doc.get("scheduling") or {}, role)
    up = "/scheduling/upgrade"
    if scheduling["canary_instances"] > instances:
        message = f"must be at most the pod's instances ({instances})"
        raise not_valid([Violation(f"{up}/canaryInstances", message)])
    if scheduling["auto_promote_after_seconds"] is not None and not scheduling["canary_instances"]:
        message = "needs canaryInstances: there is nothing to promote without canaries"
        raise not_valid([Violation(f"{up}/autoPromoteAfterSeconds", message)])
    graces = [c.grace for c in containers if c.grace is not None]
    run = RunSpec(
        instances=instances,
        resources=total,
        host_ports=tuple(e["hostPort"] for e in endpoints),
        port_names=ports,
        role=role,
        env={},
        labels=labels,
        kill_grace_seconds=max(graces) if graces else 3.0,
        health_checks=checks,
        containers=tuple(c.spec for c in containers),
        user=user,
        fetch=tuple(f for c in containers for f in c.fetch),
        **scheduling,
    )
    definition: dict[str, Any] = {
        "id": canonical_id,
        "containers": [c.doc for c in containers],
        "scaling": {"kind": "fixed", "instances": instances},
        "scheduling": scheduling_doc,
        "executorResources": executor_doc,
        "networks": [{"mode": "host"}],
        "role": role,
    }
    if labels:
        definition["labels"] = labels
    if volumes_doc:
        definition["volumes"] = volumes_doc
    if user is not None:
        definition["user"] = user
    if env:
        definition["environment"] = env
    if doc.get("legacySharedCgroups") is True:
        definition["legacySharedCgroups"] = True
    return ParsedPod(canonical_id, definition, run)


def _shared_sandbox_paths(containers: list[Any]) -> None:
    """Command containers share the instance's sandbox: two of them may mount volumes at
    the same relative path only when it is the same volume."""
    seen: dict[str, str] = {}
    for i, c in enumerate(containers):
        if c.spec.image is not None:
            continue
        for j, m in enumerate(c.spec.mounts):
            if seen.setdefault(m.path, m.name) != m.name:
                message = (
                    f"{m.path} is already where volume {seen[m.path]} is mounted in the "
                    "sandbox the pod's command containers share"
                )
                raise not_valid(
                    [Violation(f"/containers({i})/volumeMounts({j})/mountPath", message)]
                )


def _executor(raw: object) -> tuple[dict[str, float], Resources]:
    doc = field_obj(raw or {}, "/executorResources", {"cpus", "mem", "disk"})
    path = "/executorResources"
    cpus = field_num(doc.get("cpus", EXECUTOR_DEFAULTS["cpus"]), f"{path}/cpus", 0.1)
    mem = field_num(doc.get("mem", EXECUTOR_DEFAULTS["mem"]), f"{path}/mem", 32)
    disk = field_num(doc.get("disk", EXECUTOR_DEFAULTS["disk"]), f"{path}/disk", 10)
    return {"cpus": cpus, "mem": mem, "disk": disk}, Resources.from_marathon(cpus, mem, disk, 0)


def _with_port_index(check: HealthCheckSpec, index: int) -> HealthCheckSpec:
    return replace(check, port_index=index)


def health_owners(definition: Mapping[str, Any]) -> list[str]:
    """The container each of a pod's health checks belongs to, in the order the
    instance's health results come (containers with a ``healthCheck``, in order)."""
    return [c["name"] for c in definition.get("containers", []) if "healthCheck" in c]
