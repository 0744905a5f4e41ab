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

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pallet.api.marathon.errors import Violation, not_valid
from pallet.api.marathon.pathid import canonical_path, path_violations
from pallet.control.records import RunSpec
from pallet.model import (
    CheckProtocol,
    HealthCheckSpec,
    Resources,
    ValidationError,
    parse_constraints,
)
from pallet.model.launch import FetchUri
from pallet.model.pods import CONTAINER_NAME, PodContainer
from pallet.model.roles import PUBLIC_ROLE, UNRESERVED, role_messages

__all__ = ["ParsedPod", "health_owners", "parse_pod"]

EXECUTOR_DEFAULTS = {"cpus": 0.1, "mem": 32.0, "disk": 10.0}
_POD_FIELDS = {
    "id", "labels", "version", "user", "environment", "containers", "secrets", "volumes",
    "networks", "scaling", "scheduling", "executorResources", "role", "linuxInfo",
    "legacySharedCgroups",
}  # fmt: skip
_CONTAINER_FIELDS = {
    "name", "exec", "resources", "resourceLimits", "endpoints", "linuxInfo", "image",
    "environment", "user", "healthCheck", "check", "volumeMounts", "artifacts", "labels",
    "lifecycle", "tty",
}  # fmt: skip
_UNSUPPORTED = "is not supported by Pallet yet"
_ENV_NAME_LIMIT = 254


@dataclass(frozen=True, slots=True)
class ParsedPod:
    """A checked pod: its canonical definition (every default written out, no version)
    and what control runs."""

    id: str
    definition: dict[str, Any]
    run: RunSpec


def _obj(raw: object, path: str, known: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise not_valid([Violation(path or "/", "must be a JSON object")])
    if known is not None:
        for key in raw:
            if key not in known:
                raise not_valid([Violation(f"{path}/{key}", "is not a field of Marathon's pod")])
    return dict(raw)


def _num(raw: object, path: str, low: float, high: float = 1e12) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise not_valid([Violation(path, "must be a number")])
    if not low <= raw <= high:
        raise not_valid([Violation(path, f"must be between {low:g} and {high:g}")])
    return float(raw)


def _int(raw: object, path: str, low: int, high: int = 2**31 - 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise not_valid([Violation(path, "must be an integer")])
    if not low <= raw <= high:
        raise not_valid([Violation(path, f"must be between {low} and {high}")])
    return raw


def _str(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise not_valid([Violation(path, "must be a string")])
    return raw


def _str_map(raw: object, path: str) -> dict[str, str]:
    doc = _obj(raw, path)
    return {k: _str(v, f"{path}/{k}") for k, v in doc.items()}


def _refuse_set(doc: Mapping[str, Any], path: str, names: tuple[str, ...]) -> None:
    """Fields Pallet does not honour: refused when given anything but an empty value."""
    for name in names:
        value = doc.get(name)
        if value not in (None, [], {}, False):
            raise not_valid([Violation(f"{path}/{name}", _UNSUPPORTED)])


def _env(raw: object, path: str) -> dict[str, str]:
    doc = _obj(raw, path)
    out = {}
    for name, value in doc.items():
        if not name or len(name) > _ENV_NAME_LIMIT or not (name[0].isalpha() or name[0] == "_"):
            raise not_valid([Violation(f"{path}/{name}", "is not a valid environment name")])
        if not all(c.isalnum() or c == "_" for c in name) or not name.isascii():
            raise not_valid([Violation(f"{path}/{name}", "is not a valid environment name")])
        if isinstance(value, Mapping):
            raise not_valid([Violation(f"{path}/{name}", f"secrets {_UNSUPPORTED}")])
        out[name] = _str(value, f"{path}/{name}")
    return out


def _command(raw: object, path: str) -> tuple[str | None, tuple[str, ...]]:
    doc = _obj(raw, path, {"shell", "argv"})
    if ("shell" in doc) == ("argv" in doc):
        raise not_valid([Violation(path, "specify either shell or argv, never both")])
    if "shell" in doc:
        shell = _str(doc["shell"], f"{path}/shell")
        if not shell.strip():
            raise not_valid([Violation(f"{path}/shell", "must not be empty")])
        return shell, ()
    argv = doc["argv"]
    if not isinstance(argv, list) or not argv:
        raise not_valid([Violation(f"{path}/argv", "must be a list of at least one string")])
    return None, tuple(_str(a, f"{path}/argv({i})") for i, a in enumerate(argv))


# ------------------------------------------------------------ containers


@dataclass(frozen=True, slots=True)
class _Container:
    spec: PodContainer
    resources: Resources
    endpoints: list[dict[str, Any]]
    health: HealthCheckSpec | None
    health_endpoint: str | None
    grace: float | None
    doc: dict[str, Any]
    fetch: tuple[FetchUri, ...]


def _resources(raw: object, path: str) -> tuple[dict[str, Any], Resources]:
    doc = _obj(raw, path, {"cpus", "mem", "disk", "gpus"})
    cpus = _num(doc.get("cpus", 1.0), f"{path}/cpus", 0.001)
    mem = _num(doc.get("mem", 128.0), f"{path}/mem", 0.001)
    disk = _num(doc.get("disk", 0.0), f"{path}/disk", 0.0)
    gpus = _int(doc.get("gpus", 0), f"{path}/gpus", 0, 1024)
    canonical = {"cpus": cpus, "mem": mem, "disk": disk, "gpus": gpus}
    return canonical, Resources.from_marathon(cpus, mem, disk, gpus)


def _endpoint(raw: object, path: str) -> dict[str, Any]:
    doc = _obj(
        raw, path, {"name", "containerPort", "hostPort", "protocol", "labels", "networkNames"}
    )
    name = _str(doc.get("name"), f"{path}/name")
    if not CONTAINER_NAME.match(name):
        raise not_valid([Violation(f"{path}/name", "must be a DNS label of 1-63 characters")])
    if doc.get("containerPort") is not None:
        message = "only applies to container networks; Pallet runs pods on the host network"
        raise not_valid([Violation(f"{path}/containerPort", message)])
    _refuse_set(doc, path, ("labels", "networkNames"))
    host_port = _int(doc.get("hostPort", 0), f"{path}/hostPort", 0, 65535)
    protocol = doc.get("protocol", ["tcp"])
    if not isinstance(protocol, list) or not protocol:
        raise not_valid([Violation(f"{path}/protocol", "must be a non-empty list")])
    for i, p in enumerate(protocol):
        if p not in ("tcp", "udp"):
            raise not_valid([Violation(f"{path}/protocol({i})", "must be tcp or udp")])
    return {"name": name, "hostPort": host_port, "protocol": list(protocol)}


def _health(
    raw: object, path: str, endpoints: list[str]
) -> tuple[dict[str, Any], HealthCheckSpec, str | None]:
    known = {"http", "tcp", "exec", "gracePeriodSeconds", "intervalSeconds",
             "maxConsecutiveFailures", "timeoutSeconds", "delaySeconds"}  # fmt: skip
    doc = _obj(raw, path, known)
    kinds = [k for k in ("http", "tcp", "exec") if k in doc]
    if len(kinds) != 1:
        raise not_valid([Violation(path, "must specify exactly one of http, tcp and exec")])
    kind = kinds[0]
    timing = {
        "gracePeriodSeconds": _int(doc.get("gracePeriodSeconds", 300), f"{path}/gracePeriodSeconds", 0),
        "intervalSeconds": _int(doc.get("intervalSeconds", 60), f"{path}/intervalSeconds", 0),
        "maxConsecutiveFailures": _int(
            doc.get("maxConsecutiveFailures", 3), f"{path}/maxConsecutiveFailures", 0
        ),
        "timeoutSeconds": _int(doc.get("timeoutSeconds", 20), f"{path}/timeoutSeconds", 0),
        "delaySeconds": _int(doc.get("delaySeconds", 15), f"{path}/delaySeconds", 0),
    }  # fmt: skip
    common = HealthCheckSpec(
        grace_period=float(timing["gracePeriodSeconds"]),
        interval=float(timing["intervalSeconds"]),
        max_consecutive_failures=timing["maxConsecutiveFailures"],
        timeout=float(timing["timeoutSeconds"]),
        delay=float(timing["delaySeconds"]),
    )
    endpoint: str | None = None
    if kind == "exec":
        inner = _obj(doc["exec"], f"{path}/exec", {"command"})
        shell, argv = _command(inner.get("command"), f"{path}/exec/command")
        text = shell if shell is not None else shlex.join(argv)
        check = replace(common, protocol=CheckProtocol.COMMAND, command=text)
        canonical_kind: dict[str, Any] = {"exec": {"command": inner["command"]}}
    else:
        fields = {"endpoint", "path", "scheme"} if kind == "http" else {"endpoint"}
        inner = _obj(doc[kind], f"{path}/{kind}", fields)
        endpoint = _str(inner.get("endpoint"), f"{path}/{kind}/endpoint")
        if endpoint not in endpoints:
            message = f"names no endpoint of the pod (it has {', '.join(endpoints) or 'none'})"
            raise not_valid([Violation(f"{path}/{kind}/endpoint", message)])
        if kind == "tcp":
            check = replace(common, protocol=CheckProtocol.TCP)
            canonical_kind = {"tcp": {"endpoint": endpoint}}
        else:
            scheme = inner.get("scheme", "HTTP")
            if scheme not in ("HTTP", "HTTPS"):
                raise not_valid([Violation(f"{path}/http/scheme", "must be HTTP or HTTPS")])
            url_path = _str(inner.get("path", "/"), f"{path}/http/path") or "/"
            check = replace(common, protocol=CheckProtocol(scheme), path=url_path)
            canonical_kind = {"http": {"endpoint": endpoint, "path": url_path, "scheme": scheme}}
    return {**canonical_kind, **timing}, check, endpoint


def _artifact(raw: object, path: str) -> tuple[dict[str, Any], FetchUri]:
    doc = _obj(raw, path, {"uri", "extract", "executable", "cache", "destPath"})
    uri = _str(doc.get("uri"), f"{path}/uri")
    flags = {}
    for key, default in (("extract", True), ("executable", False), ("cache", False)):
        value = doc.get(key, default)
        if not isinstance(value, bool):
            raise not_valid([Violation(f"{path}/{key}", "must be true or false")])
        flags[key] = value
    dest = doc.get("destPath")
    try:
        item = FetchUri(
            uri, flags["extract"], flags["executable"], flags["cache"],
            None if dest is None else _str(dest, f"{path}/destPath"),
        )  # fmt: skip
    except ValidationError as e:
        raise not_valid([Violation(path + e.field.removeprefix("/fetch"), e.message)]) from None
    canonical: dict[str, Any] = {"uri": uri, **flags}
    if dest is not None:
        canonical["destPath"] = dest
    return canonical, item


def _container(
    raw: object, path: str, pod_env: dict[str, str], all_endpoints: list[str], user: str | None
) -> _Container:
    doc = _obj(raw, path, _CONTAINER_FIELDS)
    name = _str(doc.get("name"), f"{path}/name")
    if not CONTAINER_NAME.match(name):
        raise not_valid([Violation(f"{path}/name", "must be a DNS label of 1-63 characters")])
    if doc.get("image") is not None:
        message = "container images for pod containers are not supported by Pallet yet"
        raise not_valid([Violation(f"{path}/image", message)])
    _refuse_set(
        doc,
        path,
        ("resourceLimits", "linuxInfo", "check", "volumeMounts", "tty"),
    )
    exec_ = _obj(doc.get("exec"), f"{path}/exec", {"command", "overrideEntrypoint"})
    if "overrideEntrypoint" in exec_:
        message = "only applies to container images, which Pallet does not run for pods yet"
        raise not_valid([Violation(f"{path}/exec/overrideEntrypoint", message)])
    shell, argv = _command(exec_.get("command"), f"{path}/exec/command")
    if argv and "=" in argv[0]:
        raise not_valid([Violation(f"{path}/exec/command/argv(0)", "must name a program")])
    if "resources" not in doc:
        raise not_valid([Violation(f"{path}/resources", "error.path.missing")])
    res_doc, resources = _resources(doc["resources"], f"{path}/resources")
    env = _env(doc.get("environment", {}), f"{path}/environment")
    labels = _str_map(doc.get("labels", {}), f"{path}/labels")
    endpoints = [
        _endpoint(e, f"{path}/endpoints({i})") for i, e in enumerate(doc.get("endpoints") or [])
    ]
    if doc.get("user") is not None and doc["user"] != user:
        message = (
            "a container's own user is not supported by Pallet yet: every container of a "
            "pod runs as the pod's user"
        )
        raise not_valid([Violation(f"{path}/user", message)])
    artifacts_raw = doc.get("artifacts") or []
    if not isinstance(artifacts_raw, list):
        raise not_valid([Violation(f"{path}/artifacts", "must be a list")])
    artifacts = [_artifact(a, f"{path}/artifacts({i})") for i, a in enumerate(artifacts_raw)]
    grace = None
    if doc.get("lifecycle") is not None:
        lifecycle = _obj(doc["lifecycle"], f"{path}/lifecycle", {"killGracePeriodSeconds"})
        if lifecycle.get("killGracePeriodSeconds") is not None:
            grace = _num(
                lifecycle["killGracePeriodSeconds"],
                f"{path}/lifecycle/killGracePeriodSeconds",
                0,
                1e6,
            )
    health_doc = health = endpoint = None
    if doc.get("healthCheck") is not None:
        health_doc, health, endpoint = _health(
            doc["healthCheck"], f"{path}/healthCheck", all_endpoints
        )
    spec = PodContainer(
        name=name,
        shell=shell,
        argv=argv,
        env={**pod_env, **env},
        cpus=max(1, resources.cpu),
        mem=max(1, resources.mem),
        disk=resources.disk,
        endpoints=tuple(e["name"] for e in endpoints),
        health_checked=health is not None,
    )
    canonical: dict[str, Any] = {
        "name": name,
        "exec": {"command": {"shell": shell} if shell is not None else {"argv": list(argv)}},
        "resources": res_doc,
    }
    if endpoints:
        canonical["endpoints"] = endpoints
    if env:
        canonical["environment"] = env
    if labels:
        canonical["labels"] = labels
    if health_doc is not None:
        canonical["healthCheck"] = health_doc
    if grace is not None:
        canonical["lifecycle"] = {"killGracePeriodSeconds": grace}
    if artifacts:
        canonical["artifacts"] = [a for a, _ in artifacts]
    if doc.get("user") is not None:
        canonical["user"] = doc["user"]
    fetch = tuple(f for _, f in artifacts)
    return _Container(spec, resources, endpoints, health, endpoint, grace, canonical, fetch)


# ------------------------------------------------------------ the pod


def _scheduling(raw: object, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Marathon's ``scheduling`` (canonical form) and the ``RunSpec`` fields it sets."""
    path = "/scheduling"
    doc = _obj(
        raw, path, {"backoff", "upgrade", "placement", "killSelection", "unreachableStrategy"}
    )
    backoff = _obj(
        doc.get("backoff") or {}, f"{path}/backoff", {"backoff", "backoffFactor", "maxLaunchDelay"}
    )
    b = _num(backoff.get("backoff", 1.0), f"{path}/backoff/backoff", 0)
    factor = _num(backoff.get("backoffFactor", 1.15), f"{path}/backoff/backoffFactor", 0)
    max_delay = _num(backoff.get("maxLaunchDelay", 300.0), f"{path}/backoff/maxLaunchDelay", 0)
    upgrade_fields = {"minimumHealthCapacity", "maximumOverCapacity", "progressDeadlineSeconds",
                      "autoRollback", "canaryInstances", "autoPromoteAfterSeconds"}  # fmt: skip
    upgrade = _obj(doc.get("upgrade") or {}, f"{path}/upgrade", upgrade_fields)
    up = f"{path}/upgrade"
    min_health = _num(
        upgrade.get("minimumHealthCapacity", 1.0), f"{up}/minimumHealthCapacity", 0, 1
    )
    max_over = _num(upgrade.get("maximumOverCapacity", 1.0), f"{up}/maximumOverCapacity", 0, 1)
    canonical_upgrade: dict[str, Any] = {
        "minimumHealthCapacity": min_health,
        "maximumOverCapacity": max_over,
    }
    deadline = upgrade.get("progressDeadlineSeconds")
    if deadline is not None:
        deadline = _num(deadline, f"{up}/progressDeadlineSeconds", 0)
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
        canonical_upgrade["canaryInstances"] = _int(canaries, f"{up}/canaryInstances", 0)
    promote = upgrade.get("autoPromoteAfterSeconds")
    if promote is not None:
        promote = _num(promote, f"{up}/autoPromoteAfterSeconds", 0)
        canonical_upgrade["autoPromoteAfterSeconds"] = promote
    placement = _obj(
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
            if _str(r, f"{ap}({i})") not in allowed:
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
        u = _obj(
            unreachable,
            f"{path}/unreachableStrategy",
            {"inactiveAfterSeconds", "expungeAfterSeconds"},
        )
        inactive = _num(
            u.get("inactiveAfterSeconds", 0), f"{path}/unreachableStrategy/inactiveAfterSeconds", 0
        )
        expunge = _num(
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
        "unreachable_inactive_after": inactive,
        "unreachable_expunge_after": expunge,
    }
    return canonical, run


def parse_pod(raw: object, pod_id: str | None = None, default_role: str = "*") -> ParsedPod:
    """Check a pod body (``pod_id``: the id in the URL of a PUT) and complete it with
    Marathon's defaults. Raises ``MarathonApiError`` 422 naming the first bad path."""
    doc = _obj(raw, "", _POD_FIELDS)
    given = doc.get("id", pod_id)
    if given is None:
        raise not_valid([Violation("/id", "error.path.missing")])
    canonical_id = canonical_path(_str(given, "/id"))
    bad_id = path_violations(canonical_id)
    if bad_id:
        raise not_valid(bad_id)
    if pod_id is not None and canonical_id != pod_id:
        message = f"'{pod_id}' does not match definition's id ('{canonical_id}')"
        raise not_valid([Violation("/id", message)])
    _refuse_set(doc, "", ("secrets", "volumes", "linuxInfo"))
    user = None if doc.get("user") is None else _str(doc["user"], "/user")
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
        net = _obj(n, f"/networks({i})", {"name", "mode", "labels"})
        if net.get("mode", "container") != "host" or len(networks) > 1:
            message = 'Pallet runs pods on the host network only: use [{"mode": "host"}]'
            raise not_valid([Violation(f"/networks({i})/mode", message)])
        _refuse_set(net, f"/networks({i})", ("name", "labels"))
    role = _str(doc.get("role", default_role), "/role")
    for m in role_messages(role):
        raise not_valid([Violation("/role", m)])
    if role != default_role:
        raise not_valid([Violation("/role", f"must be the default role {default_role!r}")])
    labels = _str_map(doc.get("labels", {}), "/labels")
    env = _env(doc.get("environment", {}), "/environment")
    scaling = _obj(doc.get("scaling") or {"kind": "fixed"}, "/scaling", {"kind", "instances"})
    if scaling.get("kind", "fixed") != "fixed":
        raise not_valid([Violation("/scaling/kind", "must be fixed")])
    instances = _int(scaling.get("instances", 1), "/scaling/instances", 0)
    containers_raw = doc.get("containers")
    if not isinstance(containers_raw, list) or not containers_raw:
        raise not_valid([Violation("/containers", "must be a list of at least one container")])
    endpoint_names: list[str] = []
    for i, c in enumerate(containers_raw):
        for j, e in enumerate((c.get("endpoints") or []) if isinstance(c, Mapping) else []):
            name = e.get("name") if isinstance(e, Mapping) else None
            if name in endpoint_names:
                path = f"/containers({i})/endpoints({j})/name"
                raise not_valid([Violation(path, f"endpoint {name} is defined twice in the pod")])
            if isinstance(name, str):
                endpoint_names.append(name)
    containers = [
        _container(c, f"/containers({i})", env, endpoint_names, user)
        for i, c in enumerate(containers_raw)
    ]
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
    if user is not None:
        definition["user"] = user
    if env:
        definition["environment"] = env
    if doc.get("legacySharedCgroups") is True:
        definition["legacySharedCgroups"] = True
    return ParsedPod(canonical_id, definition, run)


def _executor(raw: object) -> tuple[dict[str, float], Resources]:
    doc = _obj(raw or {}, "/executorResources", {"cpus", "mem", "disk"})
    path = "/executorResources"
    cpus = _num(doc.get("cpus", EXECUTOR_DEFAULTS["cpus"]), f"{path}/cpus", 0.1)
    mem = _num(doc.get("mem", EXECUTOR_DEFAULTS["mem"]), f"{path}/mem", 32)
    disk = _num(doc.get("disk", EXECUTOR_DEFAULTS["disk"]), f"{path}/disk", 10)
    return {"cpus": cpus, "mem": mem, "disk": disk}, Resources.from_marathon(cpus, mem, disk, 0)


def _with_port_index(check: HealthCheckSpec, index: int) -> HealthCheckSpec:
    return replace(check, port_index=index)


def health_owners(definition: Mapping[str, Any]) -> list[str]:
    """The container each of a pod's health checks belongs to, in the order the
    instance's health results come (containers with a ``healthCheck``, in order)."""
    return [c["name"] for c in definition.get("containers", []) if "healthCheck" in c]
