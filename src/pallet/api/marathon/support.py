"""Which accepted Marathon fields Pallet can honour, and the 422s for those it cannot; pure.

Marathon's rules (``validation``) say whether an app definition is well formed. This
module says whether Pallet can *run* it as written: a field Pallet accepts must be
honoured, or refused here with a 422 naming its path, never stored and quietly
ignored. Fields Pallet keeps only as metadata for other tools (``labels``, the labels of
ports and networks) are not refused. ``docs/marathon-support.md`` is the table of every field.

Each rule is one entry of ``_RULES``: a function of the normalised ``AppSpec`` returning
its violations, so lifting a refusal when support lands is narrowing one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pallet.api.marathon.errors import Violation
from pallet.model import ValidationError
from pallet.model.app import AppSpec, NetworkMode, SecretRef
from pallet.model.app_run import persistent_volumes, secret_volumes
from pallet.model.frozen import FrozenMap
from pallet.model.images import parse_image
from pallet.model.limits import pids_max_of
from pallet.model.paths import dest_path_problem
from pallet.model.secrets import check_secret_path

__all__ = [
    "PRIVILEGED",
    "Allowances",
    "fetch_violations",
    "host_path_allowed",
    "host_volume_violations",
    "unsupported",
    "unsupported_message",
]

PRIVILEGED = "privileged containers (the operator allows them with --allow-privileged)"
"""What a privileged container is refused as, unless the operator allows them."""
_COMMAND_EXECUTORS = ("", "//cmd")
_FETCH_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True, slots=True)
class Allowances:
    """What the operator of this cluster allows beyond the defaults (``pallet master
    --allow-host-path``, ``--allow-privileged``)."""

    host_paths: tuple[str, ...] = ()
    """Host directories (and what is below them) that ``hostPath`` volumes may mount."""
    privileged: bool = False


def unsupported_message(what: str) -> str:
    """The text of every refusal: says it is unsupported, and what exactly."""
    return f"unsupported by Pallet: {what}"


def _no(path: str, what: str) -> Violation:
    return Violation(path, unsupported_message(what))


def fetch_violations(path: str, uri: str, dest: object = None) -> Iterator[Violation]:
    """What Pallet's fetcher cannot fetch of one URI at ``path`` (an app's ``fetch`` item,
    a job's artifact): schemes other than http, https and file (or an absolute path)."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in _FETCH_SCHEMES and not (not scheme and uri.startswith("/")):
        yield _no(f"{path}/uri", f"fetching {scheme or 'relative'} URIs (http, https, file)")
    if isinstance(dest, str) and (problem := dest_path_problem(dest)):
        yield Violation(f"{path}/destPath", problem)


def _fetch(spec: AppSpec) -> Iterator[Violation]:
    for i, item in enumerate(spec.fetch):
        yield from fetch_violations(f"/fetch({i})", str(item.get("uri", "")), item.get("destPath"))


def _container(spec: AppSpec, allow: Allowances) -> Iterator[Violation]:
    container = spec.container
    if container is None:
        return
    docker = container.get("docker")
    if isinstance(docker, FrozenMap):
        try:
            parse_image(str(docker.get("image")))
        except ValidationError as e:
            yield Violation("/container/docker/image", e.message)
        if docker.get("parameters"):
            yield _no("/container/docker/parameters", "docker parameters")
        if docker.get("privileged") and not allow.privileged:
            yield _no("/container/docker/privileged", PRIVILEGED)
        if docker.get("pullConfig") is not None:
            yield _no("/container/docker/pullConfig", "pull credentials from a secret")
    yield from _volumes(container, isinstance(docker, FrozenMap), allow, spec.secrets)
    if container.get("linuxInfo") is not None:
        yield _no("/container/linuxInfo", "linuxInfo (seccomp, IPC, shared memory)")


def _volumes(
    container: FrozenMap[object], has_image: bool, allow: Allowances, secrets: FrozenMap[str]
) -> Iterator[Violation]:
    volumes = container.get("volumes", ())
    for i, volume in enumerate(volumes if isinstance(volumes, tuple) else ()):
        path = f"/container/volumes({i})"
        if not isinstance(volume, FrozenMap):
            yield Violation(path, "a volume is an object")
            continue
        kinds = [k for k in ("hostPath", "persistent", "external", "secret") if k in volume]
        if kinds == ["persistent"]:
            yield from _persistent(path, volume)
            continue
        if kinds == ["secret"]:
            yield from _secret_volume(path, volume, secrets)
            continue
        if kinds != ["hostPath"]:
            what = {"external": "external volumes"}.get(
                kinds[0] if kinds else "", "volumes without a hostPath"
            )
            yield _no(path, what)
            continue
        yield from host_volume_violations(path, volume, has_image, allow)


def host_volume_violations(
    path: str, volume: Mapping[str, object], has_image: bool, allow: Allowances
) -> Iterator[Violation]:
    """What is wrong with one host volume (``containerPath``, ``hostPath``, ``mode``) at
    ``path``, or what Pallet or the operator does not allow of it (an app's, a job's)."""
    if not has_image:
        yield _no(path, "host volumes for a task without a container image")
        return
    target = volume.get("containerPath")
    if not isinstance(target, str) or not target or "\x00" in target:
        yield Violation(f"{path}/containerPath", "must be a non-empty path")
    elif not target.startswith("/") and dest_path_problem(target):
        yield Violation(f"{path}/containerPath", dest_path_problem(target) or "")
    if volume.get("mode") not in ("RO", "RW"):
        yield Violation(f"{path}/mode", "must be RO or RW")
    host = str(volume["hostPath"])
    if not host.startswith("/"):
        yield _no(f"{path}/hostPath", "a relative hostPath (a sandbox path or a named volume)")
    elif not _allowed(host, allow.host_paths):
        allowed = ", ".join(allow.host_paths) or "none"
        yield Violation(
            f"{path}/hostPath",
            f"{host} is outside the host paths this cluster allows ({allowed}; "
            "the operator allows more with --allow-host-path)",
        )


def _secret_volume(
    path: str, volume: FrozenMap[object], secrets: FrozenMap[str]
) -> Iterator[Violation]:
    """A file-based secret: ``{"containerPath", "secret"}``, a file in the sandbox."""
    for extra in sorted(set(volume) - {"containerPath", "secret"}):
        yield _no(f"{path}/{extra}", f"{extra} on a secret volume")
    name = volume.get("secret")
    if not isinstance(name, str) or name not in secrets:
        yield Violation(f"{path}/secret", "references an undefined secret")
    target = volume.get("containerPath")
    if isinstance(target, str) and target.startswith("/"):
        yield _no(
            f"{path}/containerPath",
            "a secret file at an absolute path (give a path relative to the sandbox)",
        )
    elif not isinstance(target, str) or dest_path_problem(target):
        yield Violation(f"{path}/containerPath", "must be a relative path inside the sandbox")


def _persistent(path: str, volume: FrozenMap[object]) -> Iterator[Violation]:
    """A local persistent volume on Mesos' ``root`` disk (the agent's work dir), or on a
    ``path`` or ``mount`` disk the operator gave an agent (``pallet agent --disk-path``,
    ``--disk-mount``)."""
    persistent = volume.get("persistent")
    if not isinstance(persistent, FrozenMap):
        yield Violation(f"{path}/persistent", "must be an object")
        return
    kind = persistent.get("type", "root")
    if kind not in ("root", "path", "mount"):
        yield Violation(f"{path}/persistent/type", "must be root, path or mount")
    size = persistent.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        yield Violation(f"{path}/persistent/size", "must be a whole number of MiB >= 1")
    most = persistent.get("maxSize")
    if most is not None and kind != "mount":
        yield Violation(
            f"{path}/persistent/maxSize", "is only for persistent volumes of type mount"
        )
    elif most is not None and (
        isinstance(most, bool)
        or not isinstance(most, int)
        or not isinstance(size, int)
        or most < size
    ):
        yield Violation(f"{path}/persistent/maxSize", "must be a whole number of MiB >= size")
    if persistent.get("constraints"):
        yield _no(f"{path}/persistent/constraints", "constraints on the disk's path")
    if persistent.get("profileName") is not None:
        yield _no(f"{path}/persistent/profileName", "disk profiles")
    target = volume.get("containerPath")
    if not isinstance(target, str) or not target or "/" in target or target in (".", ".."):
        yield Violation(
            f"{path}/containerPath",
            "a persistent volume's containerPath is one relative path segment (no '/')",
        )
    if volume.get("mode", "RW") != "RW":
        yield Violation(f"{path}/mode", "a persistent volume's mode must be RW")


def host_path_allowed(host: str, prefixes: tuple[str, ...]) -> bool:
    """True when ``host`` is one of ``prefixes`` or below one (no ``..``)."""
    return _allowed(host, prefixes)


def _allowed(host: str, prefixes: tuple[str, ...]) -> bool:
    parts = [p for p in host.split("/") if p not in ("", ".")]
    if ".." in parts:
        return False
    normal = "/" + "/".join(parts)
    for prefix in prefixes:
        base = "/" + "/".join(p for p in prefix.split("/") if p not in ("", "."))
        if normal == base or normal.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _networks(spec: AppSpec) -> Iterator[Violation]:
    docker = spec.container.get("docker") if spec.container is not None else None
    for i, network in enumerate(spec.networks):
        if network.mode is NetworkMode.BRIDGE and not isinstance(docker, FrozenMap):
            yield _no(f"/networks({i})/mode", "container/bridge networking without an image")
        elif network.mode is NetworkMode.CONTAINER and not isinstance(docker, FrozenMap):
            yield _no(f"/networks({i})/mode", "container networks without an image")
    named = [i for i, n in enumerate(spec.networks) if n.mode is NetworkMode.CONTAINER]
    if len(named) > 1:
        yield _no(f"/networks({named[1]})", "more than one container network per app")


def _residency(spec: AppSpec) -> Iterator[Violation]:
    if (spec.kept.residency is not None) != bool(persistent_volumes(spec.container)):
        yield Violation("/", "AppDefinition must contain persistent volumes and define residency")


def _secrets(spec: AppSpec) -> Iterator[Violation]:
    """Each secret's source is a path of the secret store (``model.secrets``); that it
    exists and that the caller may read it is checked where the store is (the routes)."""
    for name, source in spec.secrets.items():
        try:
            check_secret_path(source, f"/secrets/{name}/source")
        except ValidationError as e:
            yield Violation(e.field, e.message)
    files = [target for target, _ in secret_volumes(spec.container)]
    if len(set(files)) != len(files):
        yield Violation("/container/volumes", "two secret volumes share a containerPath")
    for name, value in spec.env.items():
        if isinstance(value, SecretRef) and value.secret not in spec.secrets:
            yield Violation(f"/env/{name}/secret", "references an undefined secret")


def _checks(spec: AppSpec) -> Iterator[Violation]:
    if spec.kept.check is not None:
        yield _no("/check", "Mesos checks (check)")
    for i, check in enumerate(spec.health_checks):
        if check.get("ipProtocol") == "IPv6":
            yield _no(f"/healthChecks({i})/ipProtocol", "IPv6 health checks")


def _execution(spec: AppSpec) -> Iterator[Violation]:
    if spec.kept.executor not in _COMMAND_EXECUTORS:
        yield _no("/executor", "custom executors (only the command executor, '' or '//cmd')")
    if spec.kept.executor_resources is not None:
        yield _no("/executorResources", "executor resources (Pallet runs no executor)")
    if spec.kept.resource_limits is not None:
        yield _no("/resourceLimits", "resource limits above the requested resources")
    if spec.kept.tty:
        yield _no("/tty", "a TTY for the task")


def _limits(spec: AppSpec) -> Iterator[Violation]:
    try:
        pids_max_of(spec.labels)
    except ValidationError as e:
        yield Violation(e.field, e.message)


_RULES: tuple[Callable[[AppSpec], Iterator[Violation]], ...] = (
    _fetch,
    _limits,
    _networks,
    _residency,
    _secrets,
    _checks,
    _execution,
)


def unsupported(spec: AppSpec, allow: Allowances = Allowances()) -> list[Violation]:
    """Every field of ``spec`` that Pallet would have to ignore to run it (or that the
    operator does not allow)."""
    return [*_container(spec, allow), *(v for rule in _RULES for v in rule(spec))]
