"""One container of a Marathon pod (``podContainer.raml``): read, check and complete it,
and the field readers the pod's own parsing shares; pure.

A container runs a command (``exec.command``) in the node's filesystem, or an image
(``image: {kind: DOCKER, id}``) in a root filesystem of its own, where ``exec`` is
optional: a ``shell`` replaces the image's entrypoint, an ``argv`` is appended to it
unless ``overrideEntrypoint``, and neither runs the image's entrypoint and command.
``volumeMounts`` name the pod's ``volumes``: at any path in an image's root filesystem
(a relative one is below the sandbox), and read-write at a path relative to the sandbox
for a command container (it has no mount namespace of its own to mount anything in).
Every field Pallet cannot honour is refused with a 422 naming its path.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pallet.api.marathon.errors import Violation, not_valid
from pallet.model import (
    CheckProtocol,
    HealthCheckSpec,
    Resources,
    ValidationError,
)
from pallet.model.images import parse_image
from pallet.model.launch import FetchUri
from pallet.model.pods import CONTAINER_NAME, PodContainer, PodMount

__all__ = [
    "UNSUPPORTED",
    "Container",
    "field_env",
    "field_int",
    "field_list",
    "field_num",
    "field_obj",
    "field_str",
    "field_str_map",
    "parse_container",
    "refuse_set",
]

UNSUPPORTED = "is not supported by Pallet yet"
_ENV_NAME_LIMIT = 254
_CONTAINER_FIELDS = {
    "name", "exec", "resources", "resourceLimits", "endpoints", "linuxInfo", "image",
    "environment", "user", "healthCheck", "check", "volumeMounts", "artifacts", "labels",
    "lifecycle", "tty",
}  # fmt: skip
_RESERVED = ("containers", "volumes", "stdout", "stderr")
"""First segments of a sandbox path that are the instance's own (logs, volumes)."""


def field_obj(raw: object, path: str, known: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise not_valid([Violation(path or "/", "must be a JSON object")])
    if known is not None:
        for key in raw:
            if key not in known:
                raise not_valid([Violation(f"{path}/{key}", "is not a field of Marathon's pod")])
    return dict(raw)


def field_num(raw: object, path: str, low: float, high: float = 1e12) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise not_valid([Violation(path, "must be a number")])
    if not low <= raw <= high:
        raise not_valid([Violation(path, f"must be between {low:g} and {high:g}")])
    return float(raw)


def field_int(raw: object, path: str, low: int, high: int = 2**31 - 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise not_valid([Violation(path, "must be an integer")])
    if not low <= raw <= high:
        raise not_valid([Violation(path, f"must be between {low} and {high}")])
    return raw


def field_list(raw: object, path: str) -> list[Any]:
    """A list field; absent, null or empty is ``[]``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise not_valid([Violation(path, "must be a list")])
    return raw


def field_str(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise not_valid([Violation(path, "must be a string")])
    return raw


def field_str_map(raw: object, path: str) -> dict[str, str]:
    doc = field_obj(raw, path)
    return {k: field_str(v, f"{path}/{k}") for k, v in doc.items()}


def refuse_set(doc: Mapping[str, Any], path: str, names: tuple[str, ...]) -> None:
    """Fields Pallet does not honour: refused when given anything but an empty value."""
    for name in names:
        value = doc.get(name)
        if value not in (None, [], {}, False):
            raise not_valid([Violation(f"{path}/{name}", UNSUPPORTED)])


def field_env(raw: object, path: str) -> dict[str, str]:
    doc = field_obj(raw, path)
    out = {}
    for name, value in doc.items():
        if not name or len(name) > _ENV_NAME_LIMIT or not (name[0].isalpha() or name[0] == "_"):
            raise not_valid([Violation(f"{path}/{name}", "is not a valid environment name")])
        if not all(c.isalnum() or c == "_" for c in name) or not name.isascii():
            raise not_valid([Violation(f"{path}/{name}", "is not a valid environment name")])
        if isinstance(value, Mapping):
            raise not_valid([Violation(f"{path}/{name}", f"secrets {UNSUPPORTED}")])
        out[name] = field_str(value, f"{path}/{name}")
    return out


def _command(raw: object, path: str) -> tuple[str | None, tuple[str, ...]]:
    doc = field_obj(raw, path, {"shell", "argv"})
    if ("shell" in doc) == ("argv" in doc):
        raise not_valid([Violation(path, "specify either shell or argv, never both")])
    if "shell" in doc:
        shell = field_str(doc["shell"], f"{path}/shell")
        if not shell.strip():
            raise not_valid([Violation(f"{path}/shell", "must not be empty")])
        return shell, ()
    argv = doc["argv"]
    if not isinstance(argv, list) or not argv:
        raise not_valid([Violation(f"{path}/argv", "must be a list of at least one string")])
    return None, tuple(field_str(a, f"{path}/argv({i})") for i, a in enumerate(argv))


# ------------------------------------------------------------ containers


@dataclass(frozen=True, slots=True)
class Container:
    spec: PodContainer
    resources: Resources
    endpoints: list[dict[str, Any]]
    health: HealthCheckSpec | None
    health_endpoint: str | None
    grace: float | None
    doc: dict[str, Any]
    fetch: tuple[FetchUri, ...]


def _resources(raw: object, path: str) -> tuple[dict[str, Any], Resources]:
    doc = field_obj(raw, path, {"cpus", "mem", "disk", "gpus"})
    cpus = field_num(doc.get("cpus", 1.0), f"{path}/cpus", 0.001)
    mem = field_num(doc.get("mem", 128.0), f"{path}/mem", 0.001)
    disk = field_num(doc.get("disk", 0.0), f"{path}/disk", 0.0)
    gpus = field_int(doc.get("gpus", 0), f"{path}/gpus", 0, 1024)
    canonical = {"cpus": cpus, "mem": mem, "disk": disk, "gpus": gpus}
    return canonical, Resources.from_marathon(cpus, mem, disk, gpus)


def _endpoint(raw: object, path: str) -> dict[str, Any]:
    doc = field_obj(
        raw, path, {"name", "containerPort", "hostPort", "protocol", "labels", "networkNames"}
    )
    name = field_str(doc.get("name"), f"{path}/name")
    if not CONTAINER_NAME.match(name):
        raise not_valid([Violation(f"{path}/name", "must be a DNS label of 1-63 characters")])
    if doc.get("containerPort") is not None:
        message = "only applies to container networks; Pallet runs pods on the host network"
        raise not_valid([Violation(f"{path}/containerPort", message)])
    refuse_set(doc, path, ("labels", "networkNames"))
    host_port = field_int(doc.get("hostPort", 0), f"{path}/hostPort", 0, 65535)
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
    doc = field_obj(raw, path, known)
    kinds = [k for k in ("http", "tcp", "exec") if k in doc]
    if len(kinds) != 1:
        raise not_valid([Violation(path, "must specify exactly one of http, tcp and exec")])
    kind = kinds[0]
    timing = {
        "gracePeriodSeconds": field_int(doc.get("gracePeriodSeconds", 300), f"{path}/gracePeriodSeconds", 0),
        "intervalSeconds": field_int(doc.get("intervalSeconds", 60), f"{path}/intervalSeconds", 0),
        "maxConsecutiveFailures": field_int(
            doc.get("maxConsecutiveFailures", 3), f"{path}/maxConsecutiveFailures", 0
        ),
        "timeoutSeconds": field_int(doc.get("timeoutSeconds", 20), f"{path}/timeoutSeconds", 0),
        "delaySeconds": field_int(doc.get("delaySeconds", 15), f"{path}/delaySeconds", 0),
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
        inner = field_obj(doc["exec"], f"{path}/exec", {"command"})
        shell, argv = _command(inner.get("command"), f"{path}/exec/command")
        text = shell if shell is not None else shlex.join(argv)
        check = replace(common, protocol=CheckProtocol.COMMAND, command=text)
        canonical_kind: dict[str, Any] = {"exec": {"command": inner["command"]}}
    else:
        fields = {"endpoint", "path", "scheme"} if kind == "http" else {"endpoint"}
        inner = field_obj(doc[kind], f"{path}/{kind}", fields)
        endpoint = field_str(inner.get("endpoint"), f"{path}/{kind}/endpoint")
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
            url_path = field_str(inner.get("path", "/"), f"{path}/http/path") or "/"
            check = replace(common, protocol=CheckProtocol(scheme), path=url_path)
            canonical_kind = {"http": {"endpoint": endpoint, "path": url_path, "scheme": scheme}}
    return {**canonical_kind, **timing}, check, endpoint


def _artifact(raw: object, path: str) -> tuple[dict[str, Any], FetchUri]:
    doc = field_obj(raw, path, {"uri", "extract", "executable", "cache", "destPath"})
    uri = field_str(doc.get("uri"), f"{path}/uri")
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
            None if dest is None else field_str(dest, f"{path}/destPath"),
        )  # fmt: skip
    except ValidationError as e:
        raise not_valid([Violation(path + e.field.removeprefix("/fetch"), e.message)]) from None
    canonical: dict[str, Any] = {"uri": uri, **flags}
    if dest is not None:
        canonical["destPath"] = dest
    return canonical, item


def _image(raw: object, path: str) -> tuple[str | None, dict[str, Any] | None]:
    """Marathon's ``image``: the reference and its canonical form (None: no image)."""
    if raw is None:
        return None, None
    doc = field_obj(raw, path, {"kind", "id", "pullConfig", "forcePull", "labels"})
    if doc.get("kind", "DOCKER") != "DOCKER":
        raise not_valid([Violation(f"{path}/kind", "must be DOCKER")])
    ref = field_str(doc.get("id"), f"{path}/id")
    try:
        parse_image(ref, f"{path}/id")
    except ValidationError as e:
        raise not_valid([Violation(e.field, e.message)]) from None
    if doc.get("pullConfig") is not None:
        message = (
            "a pull secret (pullConfig) is not supported for pods by Pallet yet: secrets are "
            "refused for pods"
        )
        raise not_valid([Violation(f"{path}/pullConfig", message)])
    force = doc.get("forcePull", False)
    if not isinstance(force, bool):
        raise not_valid([Violation(f"{path}/forcePull", "must be true or false")])
    canonical: dict[str, Any] = {"kind": "DOCKER", "id": ref, "forcePull": force}
    labels = field_str_map(doc.get("labels", {}), f"{path}/labels")
    if labels:
        canonical["labels"] = labels
    return ref, canonical


def _mount(
    raw: object, path: str, volumes: Mapping[str, str | None], *, has_image: bool
) -> PodMount:
    """One ``volumeMounts`` entry, with the pod volume it names (``volumes``: name -> its
    ``host``, None for an ephemeral one)."""
    doc = field_obj(raw, path, {"name", "mountPath", "readOnly"})
    name = field_str(doc.get("name"), f"{path}/name")
    if name not in volumes:
        known = ", ".join(sorted(volumes)) or "none"
        message = f"names no volume of the pod (it has {known})"
        raise not_valid([Violation(f"{path}/name", message)])
    target = field_str(doc.get("mountPath"), f"{path}/mountPath")
    read_only = doc.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise not_valid([Violation(f"{path}/readOnly", "must be true or false")])
    parts = target.strip("/").split("/")
    if target == "/" or "\x00" in target or any(p in ("", ".", "..") for p in parts):
        message = "must be a path without empty, '.' or '..' segments, and not /"
        raise not_valid([Violation(f"{path}/mountPath", message)])
    if not target.startswith("/") and parts[0] in _RESERVED:
        message = f"must not start with {parts[0]}/ (the sandbox's own)"
        raise not_valid([Violation(f"{path}/mountPath", message)])
    if not has_image and target.startswith("/"):
        message = (
            "a container without an image mounts volumes only at a path relative to its "
            "sandbox (it has no root filesystem of its own)"
        )
        raise not_valid([Violation(f"{path}/mountPath", message)])
    if not has_image and read_only:
        message = "read-only mounts need a container with an image (a mount namespace)"
        raise not_valid([Violation(f"{path}/readOnly", message)])
    return PodMount(name, target, read_only, volumes[name])


def parse_container(
    raw: object,
    path: str,
    pod_env: dict[str, str],
    all_endpoints: list[str],
    user: str | None,
    volumes: Mapping[str, str | None],
) -> Container:
    doc = field_obj(raw, path, _CONTAINER_FIELDS)
    name = field_str(doc.get("name"), f"{path}/name")
    if not CONTAINER_NAME.match(name):
        raise not_valid([Violation(f"{path}/name", "must be a DNS label of 1-63 characters")])
    image, image_doc = _image(doc.get("image"), f"{path}/image")
    refuse_set(doc, path, ("resourceLimits", "linuxInfo", "check", "tty"))
    exec_ = field_obj(
        doc.get("exec", {} if image else None), f"{path}/exec", {"command", "overrideEntrypoint"}
    )
    override = exec_.get("overrideEntrypoint")
    if override is not None and not isinstance(override, bool):
        raise not_valid([Violation(f"{path}/exec/overrideEntrypoint", "must be true or false")])
    if override is not None and image is None:
        message = "only applies to a container with an image"
        raise not_valid([Violation(f"{path}/exec/overrideEntrypoint", message)])
    shell: str | None
    argv: tuple[str, ...]
    if image is not None and "command" not in exec_:
        shell, argv = None, ()
    else:
        shell, argv = _command(exec_.get("command"), f"{path}/exec/command")
    if shell is not None and override is False:
        message = "must not be false with command.shell (a shell replaces the entrypoint)"
        raise not_valid([Violation(f"{path}/exec/overrideEntrypoint", message)])
    mounts_raw = field_list(doc.get("volumeMounts"), f"{path}/volumeMounts")
    mounts = [
        _mount(m, f"{path}/volumeMounts({i})", volumes, has_image=image is not None)
        for i, m in enumerate(mounts_raw)
    ]
    targets = [m.path for m in mounts]
    for i, target in enumerate(targets):
        if target in targets[:i]:
            message = f"{target} is mounted twice in container {name}"
            raise not_valid([Violation(f"{path}/volumeMounts({i})/mountPath", message)])
    if argv and "=" in argv[0]:
        raise not_valid([Violation(f"{path}/exec/command/argv(0)", "must name a program")])
    if "resources" not in doc:
        raise not_valid([Violation(f"{path}/resources", "error.path.missing")])
    res_doc, resources = _resources(doc["resources"], f"{path}/resources")
    env = field_env(doc.get("environment", {}), f"{path}/environment")
    labels = field_str_map(doc.get("labels", {}), f"{path}/labels")
    endpoints = [
        _endpoint(e, f"{path}/endpoints({i})")
        for i, e in enumerate(field_list(doc.get("endpoints"), f"{path}/endpoints"))
    ]
    if doc.get("user") is not None and doc["user"] != user:
        message = (
            "a container's own user is not supported by Pallet yet: every container of a "
            "pod runs as the pod's user"
        )
        raise not_valid([Violation(f"{path}/user", message)])
    artifacts_raw = field_list(doc.get("artifacts"), f"{path}/artifacts")
    artifacts = [_artifact(a, f"{path}/artifacts({i})") for i, a in enumerate(artifacts_raw)]
    grace = None
    if doc.get("lifecycle") is not None:
        lifecycle = field_obj(doc["lifecycle"], f"{path}/lifecycle", {"killGracePeriodSeconds"})
        if lifecycle.get("killGracePeriodSeconds") is not None:
            grace = field_num(
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
        cpu_milli=max(1, resources.cpu_milli),
        mem_mib=max(1, resources.mem_mib),
        disk_mib=resources.disk_mib,
        endpoints=tuple(e["name"] for e in endpoints),
        health_checked=health is not None,
        image=image,
        force_pull=bool(image_doc and image_doc.get("forcePull")),
        override_entrypoint=bool(override),
        mounts=tuple(mounts),
    )
    canonical: dict[str, Any] = {"name": name}
    if shell is not None or argv:
        command = {"shell": shell} if shell is not None else {"argv": list(argv)}
        canonical["exec"] = {"command": command}
        if override is not None:
            canonical["exec"]["overrideEntrypoint"] = override
    canonical["resources"] = res_doc
    if image_doc is not None:
        canonical["image"] = image_doc
    if mounts_raw:
        canonical["volumeMounts"] = [
            {"name": m.name, "mountPath": m.path, "readOnly": m.read_only} for m in mounts
        ]
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
    return Container(spec, resources, endpoints, health, endpoint, grace, canonical, fetch)
