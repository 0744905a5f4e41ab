"""The nested shapes of a Marathon app definition (ports, checks, strategies ...); pure.

Field names, defaults and bounds follow Marathon's RAML types (``network.raml``,
``healthCheck.raml``, ``readinessCheck.raml``, ``appContainer.raml``, ``app.raml``).
Defaults are filled in when the body is read, as Marathon's generated readers do.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from pallet.api.marathon.jsontypes import (
    AnyPort,
    JsBool,
    JsDouble,
    JsInt,
    JsLong,
    JsObject,
    JsStr,
    LegacyName,
    MarathonModel,
    play_error,
)

__all__ = [
    "Artifact",
    "CommandCheck",
    "Container",
    "DockerContainer",
    "DockerParameter",
    "EnvSecret",
    "EnvValue",
    "HealthCheck",
    "IpAddress",
    "IpDiscovery",
    "IpDiscoveryPort",
    "Network",
    "PortDefinition",
    "PortMapping",
    "Protocol",
    "ReadinessCheck",
    "Residency",
    "SecretDef",
    "UnreachableStrategy",
    "UpgradeStrategy",
]

Protocol = Literal["tcp", "udp", "udp,tcp"]
Capacity = Annotated[JsDouble, Field(ge=0.0, le=1.0)]
Seconds = Annotated[JsInt, Field(ge=0)]


def _require_object(value: object) -> object:
    if not isinstance(value, dict):
        raise play_error("error.expected.jsobject")
    return value


Labels = Annotated[dict[str, JsStr], BeforeValidator(_require_object)]


class PortDefinition(MarathonModel):
    """A host port of the app (host networking). ``port`` 0 asks for any port."""

    port: AnyPort = 0
    protocol: Protocol = "tcp"
    name: LegacyName | None = None
    labels: Labels = Field(default_factory=dict)
    omit_empty: ClassVar[frozenset[str]] = frozenset({"labels"})


class PortMapping(MarathonModel):
    """A container port mapped to a host and service port (bridge/container networking)."""

    container_port: AnyPort = 0
    host_port: AnyPort | None = None
    labels: Labels = Field(default_factory=dict)
    name: LegacyName | None = None
    protocol: Protocol = "tcp"
    service_port: AnyPort = 0
    network_names: list[JsStr] = Field(default_factory=list)
    omit_empty: ClassVar[frozenset[str]] = frozenset({"labels", "network_names"})


class DockerParameter(MarathonModel):
    key: Annotated[JsStr, Field(min_length=1)]
    value: JsStr


class DockerContainer(MarathonModel):
    image: Annotated[JsStr, Field(min_length=1)]
    credential: JsObject | None = None
    pull_config: JsObject | None = None
    force_pull_image: JsBool = False
    network: Literal["BRIDGE", "HOST", "NONE", "USER"] | None = None
    parameters: list[DockerParameter] = Field(default_factory=list)
    port_mappings: list[PortMapping] | None = None
    privileged: JsBool = False


class Container(MarathonModel):
    """``container``: the engine, its image, volumes and port mappings."""

    type: Literal["MESOS", "DOCKER"] = "DOCKER"
    docker: DockerContainer | None = None
    linux_info: JsObject | None = None
    volumes: list[JsObject] = Field(default_factory=list)
    port_mappings: list[PortMapping] | None = None


class Network(MarathonModel):
    """One network the app joins: ``host``, ``container/bridge`` or a named ``container``."""

    name: JsStr | None = None
    mode: Literal["container", "container/bridge", "host"] = "container"
    labels: Labels = Field(default_factory=dict)
    omit_empty: ClassVar[frozenset[str]] = frozenset({"labels"})


class IpDiscoveryPort(MarathonModel):
    """A port of the deprecated ``ipAddress.discovery``; becomes a container port mapping."""

    number: AnyPort = 0
    name: LegacyName | None = None
    protocol: Protocol = "tcp"
    labels: Labels = Field(default_factory=dict)


class IpDiscovery(MarathonModel):
    ports: list[IpDiscoveryPort] = Field(default_factory=list)


class IpAddress(MarathonModel):
    """Deprecated ``ipAddress`` (ip-per-task); read only to translate into ``networks``."""

    discovery: IpDiscovery | None = None
    groups: list[JsStr] = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    network_name: Annotated[JsStr, Field(min_length=1)] | None = None


class CommandCheck(MarathonModel):
    value: JsStr


class HealthCheck(MarathonModel):
    """A Marathon (HTTP/HTTPS/TCP) or Mesos (COMMAND, MESOS_*) health check."""

    command: CommandCheck | None = None
    grace_period_seconds: Seconds = 300
    # Marathon's name; the camel-case generator would make it ``ignoreHttp1Xx``.
    ignore_http1xx: JsBool | None = Field(default=None, alias="ignoreHttp1xx")
    interval_seconds: Seconds = 60
    max_consecutive_failures: Seconds = 3
    path: JsStr | None = None
    port: AnyPort | None = None
    port_index: AnyPort | None = None
    protocol: Literal[
        "HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_TCP", "MESOS_HTTP", "MESOS_HTTPS"
    ] = "HTTP"
    ip_protocol: Literal["IPv4", "IPv6"] = "IPv4"
    timeout_seconds: JsInt = 20
    delay_seconds: Seconds = 15


class ReadinessCheck(MarathonModel):
    name: Annotated[JsStr, Field(min_length=1)] = "readinessCheck"
    protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    path: Annotated[JsStr, Field(min_length=1, max_length=1024)] = "/"
    port_name: LegacyName = "http-api"
    interval_seconds: Seconds = 30
    timeout_seconds: Annotated[JsInt, Field(ge=1)] = 10
    http_status_codes_for_ready: (
        Annotated[list[Annotated[JsInt, Field(ge=100, le=999)]], Field(min_length=1)] | None
    ) = None
    preserve_last_response: JsBool = False


class UpgradeStrategy(MarathonModel):
    """How many instances may be down / extra during a deployment (fractions of
    ``instances``). Pallet's additions are written only when set, so Marathon clients
    never see them: ``progressDeadlineSeconds`` (no new task ready within it fails the
    deployment), ``autoRollback`` (then return to the last healthy version),
    ``canaryInstances`` (start that many new tasks beside the old ones and pause) and
    ``autoPromoteAfterSeconds`` (continue once the canaries have been ready that long)."""

    minimum_health_capacity: Capacity
    maximum_over_capacity: Capacity
    progress_deadline_seconds: Annotated[JsDouble, Field(gt=0.0, le=1e9)] | None = None
    auto_rollback: JsBool | None = None
    canary_instances: Annotated[JsInt, Field(ge=0)] | None = None
    auto_promote_after_seconds: Annotated[JsDouble, Field(gt=0.0, le=1e9)] | None = None


class UnreachableStrategy(MarathonModel):
    """When an unreachable instance is replaced (``inactiveAfterSeconds``) and forgotten
    (``expungeAfterSeconds``); on the wire either that object or the string ``"disabled"``
    (``UnreachableStrategy.model_validate("disabled")``)."""

    inactive_after_seconds: Annotated[JsLong, Field(ge=0)] = 0
    expunge_after_seconds: Annotated[JsLong, Field(ge=0)] = 0
    _disabled: bool = PrivateAttr(default=False)

    @property
    def disabled(self) -> bool:
        return self._disabled

    @model_validator(mode="wrap")
    @classmethod
    def _read(cls, value: object, handler: ModelWrapValidatorHandler[UnreachableStrategy]) -> Any:
        if value == "disabled":
            strategy = handler({})
            strategy._disabled = True
            return strategy
        if isinstance(value, str):
            raise play_error("error.unknown.enum.literal")
        return handler(value)

    @model_serializer(mode="wrap")
    def _marathon_shape(self, handler: SerializerFunctionWrapHandler) -> Any:
        return "disabled" if self._disabled else handler(self)


class Residency(MarathonModel):
    """Deprecated, kept for apps with persistent volumes; Marathon ignores its values."""

    relaunch_escalation_timeout_seconds: Annotated[JsLong, Field(ge=0)] = 3600
    task_lost_behavior: Literal["WAIT_FOREVER", "RELAUNCH_AFTER_TIMEOUT"] = "WAIT_FOREVER"


class SecretDef(MarathonModel):
    source: Annotated[JsStr, Field(min_length=1)]


class Artifact(MarathonModel):
    """One entry of ``fetch``: a URI to download into the sandbox."""

    uri: Annotated[JsStr, Field(min_length=1, max_length=1024)]
    extract: JsBool = True
    executable: JsBool = False
    cache: JsBool = False
    dest_path: Annotated[JsStr, Field(min_length=1, max_length=1024)] | None = None


class EnvSecret(MarathonModel):
    """An environment variable whose value is the named secret."""

    secret: JsStr


def _env_value(value: object) -> Any:
    if isinstance(value, str | EnvSecret):
        return value
    if isinstance(value, dict) and isinstance(value.get("secret"), str):
        return EnvSecret(secret=value["secret"])
    raise play_error("error.expected.jsstring")


EnvValue = Annotated[str | EnvSecret, BeforeValidator(_env_value)]
