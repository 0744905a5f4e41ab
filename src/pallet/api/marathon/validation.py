"""Marathon's rules between the fields of an app definition, with its exact messages; pure.

Two passes, as in ``AppHelpers.appNormalization``: ``deprecated_violations`` checks
how the deprecated fields (``ports``, ``uris``, ``ipAddress``, ``docker.network``)
combine with the rest, before they are translated; ``canonical_violations`` checks
the translated app (``AppValidation.scala``, ``SchedulingValidation.scala``,
``NetworkValidation.scala``, ``ResourceRole.scala``). Messages and paths are
Marathon's; where Pallet is stricter (constraint values it cannot schedule) the
message is Pallet's, on the same path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from pallet.api.marathon.app import AppDefinition, AppUpdate
from pallet.api.marathon.errors import Violation
from pallet.api.marathon.parts import Container, EnvSecret, PortMapping
from pallet.api.marathon.pathid import canonical_path, path_violations
from pallet.discovery import label_violations
from pallet.model import ValidationError, parse_constraints
from pallet.model.net import network_name_problem
from pallet.model.roles import PUBLIC_ROLE, UNRESERVED, role_messages

__all__ = [
    "canonical_violations",
    "constraint_violations",
    "deprecated_violations",
    "role_messages",
]

CMD_ARGS_OR_CONTAINER = (
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
)
OPERATOR_INVALID = (
    "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
)
_MESOS_PROTOCOLS = {"COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"}
_MARATHON_PROTOCOLS = {"HTTP", "HTTPS", "TCP"}
_PORT_PROTOCOLS = _MARATHON_PROTOCOLS | {"MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"}
_IS_VALUE = re.compile(r"[a-zA-Z0-9_/.-]*")


def _unique(values: Sequence[object]) -> bool:
    return len(values) == len(set(values))


def _uri_ok(uri: str) -> bool:
    try:
        urlsplit(uri)
    except ValueError:
        return False
    return not any(c in uri for c in ' "<>\\^`{|}')


def deprecated_violations(app: AppUpdate) -> list[Violation]:
    """Rules on the deprecated fields (``AppValidation.validateOldAppAPI``)."""
    out: list[Violation] = []
    container, docker = app.container, app.container.docker if app.container else None
    if docker is not None and docker.credential is not None:
        out.append(Violation("/container/docker/credential", "must be empty"))
    if container is not None and docker is not None and container.type == "MESOS":
        for name in ("network", "parameters", "port_mappings"):
            if getattr(docker, name):
                camel = "portMappings" if name == "port_mappings" else name
                out.append(Violation(f"/container/docker/{camel}", "must be empty"))
    if docker is not None and docker.port_mappings:
        out += _port_mapping_names(docker.port_mappings, "/container/docker/portMappings")
    discovery = app.ip_address.discovery if app.ip_address else None
    if discovery and container is not None and container.type == "DOCKER":
        out.append(
            Violation("/ipAddress", "ipAddress/discovery is not allowed for Docker containers")
        )
    for i, uri in enumerate(app.uris or ()):
        if not _uri_ok(uri):
            out.append(Violation(f"/uris({i})", "URI has invalid syntax."))
    if app.uris and app.fetch:
        out.append(Violation("/uris", "may not be set in conjunction with fetch"))
    if docker is not None and docker.network and app.networks:
        out.append(Violation("/", "must not specify both container.docker.network and networks"))
    if app.ip_address is not None and app.networks:
        out.append(Violation("/", "must not specify both networks and ipAddress"))
    fixed = [p for p in app.ports or () if p]
    if not _unique(fixed):
        out.append(Violation("/", "ports must be unique"))
    if app.ip_address is not None and (app.ports or app.port_definitions):
        out.append(Violation("/", "cannot specify both an IP address and port"))
    if (
        app.ports is not None
        and app.port_definitions is not None
        and [d.port for d in app.port_definitions] != app.ports
    ):
        out.append(Violation("/", "cannot specify both ports and port definitions"))
    return out


def _port_mapping_names(mappings: Sequence[PortMapping], path: str) -> list[Violation]:
    names = [m.name for m in mappings if m.name is not None]
    return [] if _unique(names) else [Violation(path, "Port names must be unique.")]


def canonical_violations(app: AppDefinition) -> list[Violation]:
    """Marathon's rules on an app whose deprecated fields are already translated."""
    out = _id_violations(app)
    networks = app.networks or []
    out += _network_violations(app)
    if app.container is not None:
        out += _container_violations(app.container, app)
    definitions = app.port_definitions or []
    if not _unique([d.name for d in definitions if d.name is not None]):
        out.append(Violation("/portDefinitions", "Port names must be unique."))
    if not _unique([d.port for d in definitions if d.port]):
        out.append(Violation("/portDefinitions", "Ports must be unique."))
    if not _has_command(app):
        out.append(Violation("/", CMD_ARGS_OR_CONTAINER))
    out += _health_check_violations(app)
    for i, artifact in enumerate(app.fetch or ()):
        if not _uri_ok(artifact.uri):
            out.append(Violation(f"/fetch({i})/uri", "URI has invalid syntax."))
    for name, value in (app.env or {}).items():
        if isinstance(value, EnvSecret) and value.secret not in (app.secrets or {}):
            out.append(Violation(f"/env/{name}/secret", "references an undefined secret"))
    out += _role_violations(app)
    gpus = app.gpus or 0.0
    if gpus > 0 and app.container is not None and app.container.type == "DOCKER":
        out.append(Violation("/", "GPU resources only work with the Mesos containerizer"))
    if gpus > 1 and not gpus.is_integer():
        # Pallet's rule: below one GPU is a share of one device, above it whole devices.
        out.append(Violation("/gpus", f"above one GPU, ask for whole GPUs (got {gpus:g})"))
    out += _label_violations(app)
    out += _readiness_violations(app)
    docker_engine = app.container is not None and app.container.type == "DOCKER"
    if docker_engine and sum(1 for n in networks if n.mode == "container") > 1:
        message = (
            "may only specify a single container network when using the Docker container engine"
        )
        out.append(Violation("/", message))
    unreachable = app.unreachable_strategy
    if app.residency is not None and unreachable is not None and not unreachable.disabled:
        out.append(Violation("/", "unreachableStrategy must be disabled for resident tasks"))
    if unreachable is not None and not unreachable.disabled:
        inactive, expunge = unreachable.inactive_after_seconds, unreachable.expunge_after_seconds
        if inactive > expunge:
            message = (
                f"inactiveAfterSeconds ({inactive}) must be less or equal to "
                f"expungeAfterSeconds, which is {expunge}"
            )
            out.append(Violation("/unreachableStrategy/inactiveAfterSeconds", message))
    out += constraint_violations(app.constraints or [])
    return out


def _id_violations(app: AppDefinition) -> list[Violation]:
    out = path_violations(canonical_path(app.id))
    for i, dep in enumerate(app.dependencies or ()):
        out += path_violations(canonical_path(dep), f"/dependencies({i})")
    return out


def _network_violations(app: AppDefinition) -> list[Violation]:
    nets = app.networks or []
    out: list[Violation] = []
    if any(n.mode == "host" and (n.name or n.labels) for n in nets):
        out.append(Violation("/networks", "Host networks may not have names or labels"))
    if any(n.mode == "container/bridge" and n.name for n in nets):
        out.append(Violation("/networks", "Bridge networks may not have names"))
    unnamed = sum(1 for n in nets if n.mode == "container" and n.name is None)
    if unnamed > 1 or not _unique([n.name for n in nets if n.name]):
        out.append(Violation("/networks", "Duplicate networks are not allowed"))
    modes = Counter(n.mode for n in nets)
    host, bridge, ct = modes["host"], modes["container/bridge"], modes["container"]
    if not (
        (host <= 1 and not bridge and not ct)
        or (not host and bridge <= 1 and not ct)
        or (not host and not bridge and ct > 0)
    ):
        message = "May specify a single host network, single bridge network, or else 1-to-n container networks"
        out.append(Violation("/networks", message))
    for i, n in enumerate(nets):
        problem = network_name_problem(n.name) if n.name is not None else None
        if problem and n.mode == "container":
            out.append(Violation(f"/networks({i})/name", problem))
    if unnamed:
        # Pallet has no default container network, so every container network needs a name.
        message = "Network name must be specified when container network is selected."
        out.append(Violation("/networks", message))
    return out


def _container_violations(container: Container, app: AppDefinition) -> list[Violation]:
    out: list[Violation] = []
    if container.type == "DOCKER" and container.docker is None:
        out.append(Violation("/container/docker", "not defined"))
    if container.type == "DOCKER" and container.docker and container.docker.pull_config:
        message = "pullConfig is not supported with Docker containerizer"
        out.append(Violation("/container/docker/pullConfig", message))
    mappings = container.port_mappings or []
    out += _port_mapping_names(mappings, "/container/portMappings")
    container_nets = [n for n in app.networks or [] if n.mode == "container"]
    names = {n.name for n in container_nets}
    for i, mapping in enumerate(mappings):
        needs_name = len(container_nets) > 1 and mapping.host_port is not None
        if needs_name and len(mapping.network_names) != 1:
            message = (
                "networkNames must be a single item list when hostPort is specified "
                "and more than 1 container network is defined"
            )
            out.append(Violation(f"/container/portMappings({i})", message))
        for j, name in enumerate(mapping.network_names):
            if name not in names:
                allowed = ",".join(sorted(n for n in names if n))
                message = f"is not one of ({allowed})"
                out.append(Violation(f"/container/portMappings({i})/networkNames({j})", message))
    return out


def _has_command(app: AppDefinition) -> bool:
    cmd, args, ct = bool(app.cmd), bool(app.args), app.container
    container = ct is not None and (ct.docker is not None or ct.type == "MESOS")
    return (cmd != args) or (not (cmd and args) and container)


def _health_check_violations(app: AppDefinition) -> list[Violation]:
    mappings = app.container.port_mappings if app.container else None
    indices = len(mappings) if mappings else len(app.port_definitions or [])
    out: list[Violation] = []
    for i, check in enumerate(app.health_checks or ()):
        if check.protocol == "COMMAND" and check.command is None:
            message = "command is required for a COMMAND health check"
            out.append(Violation(f"/healthChecks({i})/command", message))
        if check.command is None and check.protocol in _PORT_PROTOCOLS:
            if check.port_index is not None:
                ok = check.port_index < indices
            else:
                ok = check.port is not None or indices == 1
            if not ok:
                message = (
                    "Health check port indices must address an element of the ports array "
                    "or container port mappings."
                )
                out.append(Violation(f"/healthChecks({i})", message))
        if check.ip_protocol == "IPv6":
            mesos_http = check.protocol in {"MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"}
            if not (mesos_http and app.container is not None and app.container.type == "DOCKER"):
                message = "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks"
                out.append(Violation(f"/healthChecks({i})", message))
    checks = app.health_checks or []
    commands = sum(1 for c in checks if c.command is not None)
    mesos = sum(1 for c in checks if c.command is not None or c.protocol in _MESOS_PROTOCOLS)
    if mesos - commands > 1:
        out.append(Violation("/", "AppDefinition can contain at most one Mesos health check"))
    return out


def _role_violations(app: AppDefinition) -> list[Violation]:
    role = app.role or "*"
    out = [Violation("/role", m) for m in role_messages(role)]
    accepted = app.accepted_resource_roles
    if accepted is None:
        return out
    if not accepted:
        out.append(Violation("/acceptedResourceRoles", "must not be empty"))
    for i, name in enumerate(accepted):
        out += [Violation(f"/acceptedResourceRoles({i})", m) for m in role_messages(name)]
    # Marathon allows ``*`` and the app's role. Pallet's Marathon also holds the public
    # agents' role, as DC/OS's does (its --mesos_role), so public apps are accepted.
    allowed = sorted({UNRESERVED, PUBLIC_ROLE, role})
    if not set(accepted) <= set(allowed):
        listed = ", ".join(allowed[:-1]) + " and " + allowed[-1]
        message = f"acceptedResourceRoles can only contain {listed}"
        out.append(Violation("/acceptedResourceRoles", message))
    if app.residency is not None and set(accepted) != {"*"}:
        out.append(
            Violation(
                "/acceptedResourceRoles",
                'A resident app must have `acceptedResourceRoles = ["*"]`.',
            )
        )
    return out


def _label_violations(app: AppDefinition) -> list[Violation]:
    labels = app.labels or {}
    out: list[Violation] = []
    if labels.get("DCOS_MIGRATION_API_VERSION") and not (
        labels["DCOS_MIGRATION_API_VERSION"] == "v1"
        and labels.get("DCOS_PACKAGE_FRAMEWORK_NAME")
        and labels.get("DCOS_MIGRATION_API_PATH")
    ):
        message = (
            "DCOS_PACKAGE_FRAMEWORK_NAME and DCOS_MIGRATION_API_PATH must be defined "
            "when using DCOS_MIGRATION_API_VERSION"
        )
        out.append(Violation("/", message))
    single = labels.get("MARATHON_SINGLE_INSTANCE_APP") == "true"
    if single and (app.instances or 0) > 1:
        out.append(Violation("/", "Single instance app may only have one instance"))
    strategy = app.upgrade_strategy
    if strategy is not None and (single or app.residency is not None):
        if single and strategy.minimum_health_capacity != 0.0:
            got = strategy.minimum_health_capacity
            out.append(
                Violation("/upgradeStrategy/minimumHealthCapacity", f"got {got}, expected 0.0")
            )
        if strategy.maximum_over_capacity != 0.0:
            got = strategy.maximum_over_capacity
            out.append(
                Violation("/upgradeStrategy/maximumOverCapacity", f"got {got}, expected 0.0")
            )
    return out + _rollout_violations(app) + _discovery_violations(app)


def _rollout_violations(app: AppDefinition) -> list[Violation]:
    """Pallet's additions to ``upgradeStrategy``: canaries fit in the app."""
    strategy = app.upgrade_strategy
    if strategy is None:
        return []
    out = []
    canaries = strategy.canary_instances
    instances = app.instances if app.instances is not None else 1
    if canaries is not None and canaries > instances:
        message = f"got {canaries}, expected at most instances ({instances})"
        out.append(Violation("/upgradeStrategy/canaryInstances", message))
    if strategy.auto_promote_after_seconds is not None and not canaries:
        message = "needs canaryInstances: there is nothing to promote without canaries"
        out.append(Violation("/upgradeStrategy/autoPromoteAfterSeconds", message))
    return out


def _discovery_violations(app: AppDefinition) -> list[Violation]:
    """Marathon-LB's HAPROXY_* labels and the VIP_<n> port labels (Pallet honours them,
    so a bad one is refused here rather than breaking a load balancer later)."""
    ports: list[tuple[str, dict[str, str]]] = []
    if app.port_definitions:
        ports = [(f"/portDefinitions({i})", p.labels) for i, p in enumerate(app.port_definitions)]
    elif app.container is not None and app.container.port_mappings:
        ports = [
            (f"/container/portMappings({i})", m.labels)
            for i, m in enumerate(app.container.port_mappings)
        ]
    return [Violation(e.path, e.message) for e in label_violations(app.labels or {}, ports)]


def _readiness_violations(app: AppDefinition) -> list[Violation]:
    checks = app.readiness_checks or []
    out: list[Violation] = []
    if len(checks) > 1:
        out.append(Violation("/readinessChecks", f"got {len(checks)}, expected 1 or less"))
    mappings = app.container.port_mappings if app.container else None
    sources = mappings if mappings is not None else app.port_definitions or []
    names = {p.name for p in sources if p.name}
    for i, check in enumerate(checks):
        if check.port_name not in names:
            message = f"No port definition reference for portName {check.port_name}"
            out.append(Violation(f"/readinessChecks({i})/portName", message))
        if check.timeout_seconds >= check.interval_seconds:
            message = f"got {check.timeout_seconds}, expected less than {check.interval_seconds}"
            out.append(Violation(f"/readinessChecks({i})/timeoutSeconds", message))
    return out


def constraint_violations(constraints: Iterable[Sequence[str]]) -> list[Violation]:
    """Marathon's constraint rules, then Pallet's (``pallet.model.parse_constraints``)."""
    out: list[Violation] = []
    for i, item in enumerate(constraints):
        path = f"/constraints({i})"
        message = _marathon_constraint_message(item)
        if message is None:
            try:
                parse_constraints([list(item)])
            except ValidationError as exc:
                message = exc.message
        if message is not None:
            out.append(Violation(path, message))
    return out


def _marathon_constraint_message(c: Sequence[str]) -> str | None:
    if len(c) not in (2, 3):
        return "Each constraint must have either 2 or 3 fields"
    field, op = c[0], c[1].upper()
    value = c[2] if len(c) == 3 else None
    if not field:
        return "illegal constraint specification"
    if op == "UNIQUE":
        return None if value is None else "UNIQUE does not accept a value"
    if op == "GROUP_BY":
        ok = value is None or _is_java_int(value)
        return None if ok else "GROUP BY must define an integer value or else no value at all"
    if op == "MAX_PER":
        return (
            None
            if value is not None and _is_java_int(value)
            else "MAX_PER requires an integer value"
        )
    if op in ("LIKE", "UNLIKE"):
        if not value:
            return "LIKE and UNLIKE require a non-empty, regular expression value"
        try:
            re.compile(value)
        except re.error:
            return "is not a valid regular expression"
        return None
    if op == "IS":
        if _IS_VALUE.fullmatch(value or ""):
            return None
        return (
            "IS only supports Mesos text and float values "
            "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
        )
    # IN is Pallet's extension (a comma-separated set of values); CLUSTER takes anything.
    return None if op in ("CLUSTER", "IN") else OPERATOR_INVALID


def _is_java_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit() and -(2**31) <= int(text) < 2**31
