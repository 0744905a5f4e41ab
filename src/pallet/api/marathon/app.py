"""Marathon app definitions as read from a request body: ``AppUpdate`` and ``AppDefinition``; pure.

Reading a body checks only its shape, as Marathon's generated RAML readers do
(types, bounds, patterns; errors are Play codes, see ``errors.shape_error``). Rules
between fields and Marathon's defaults come after, in ``normalize.normalize_app``.

``AppUpdate`` is the body of ``PUT``/``PATCH /v2/apps/{id}``: every field optional,
only the fields present change the app. ``AppDefinition`` is the body of ``POST
/v2/apps`` (and of a ``PUT`` that replaces or creates): ``id`` is required. Top-level
defaults (``cpus`` 1, ``mem`` 128 ...) are applied by normalisation, never here, so
an update can tell "not given" from "given as the default".
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, field_serializer

from pallet.api.marathon.jsontypes import (
    AnyPort,
    JsBool,
    JsDouble,
    JsInt,
    JsObject,
    JsStr,
    MarathonModel,
    Timestamp,
    play_error,
)
from pallet.api.marathon.parts import (
    Artifact,
    Container,
    EnvValue,
    HealthCheck,
    IpAddress,
    Network,
    PortDefinition,
    ReadinessCheck,
    Residency,
    SecretDef,
    UnreachableStrategy,
    UpgradeStrategy,
)
from pallet.api.marathon.pathid import is_path_syntax

__all__ = ["AppDefinition", "AppUpdate", "PathIdText"]


def _path_syntax(value: str) -> str:
    if not is_path_syntax(value):
        raise play_error("error.pattern")
    return value


def _executor(value: str) -> str:
    # app.raml's ^(//cmd)|(/?[^/]+(/[^/]+)*)|$ as a plain check (no regex backtracking).
    if value in ("", "//cmd"):
        return value
    body = value[1:] if value.startswith("/") else value
    if not body or any(not part for part in body.split("/")):
        raise play_error("error.pattern")
    return value


PathIdText = Annotated[JsStr, Field(min_length=1), AfterValidator(_path_syntax)]
_KillSelection = Literal["YOUNGEST_FIRST", "OLDEST_FIRST"]
# Upper bounds are Pallet's (app.raml has none): a task's request stays below 2**31 in
# Pallet's fixed-point units (millicores, MiB, milli-GPUs), so every sum over tasks is an
# exact integer. Without them ``cpus: 1e308`` overflowed the conversion (a 500) and
# ``mem: 1e308`` was stored and made the scheduler's mean task infinite for every app.
_MAX_CORES = 1_000_000.0
_MAX_MIB = 1_000_000_000.0
_Cores = Annotated[JsDouble, Field(ge=0.0, le=_MAX_CORES)]
_MiB = Annotated[JsDouble, Field(ge=0.0, le=_MAX_MIB)]
_Seconds = Annotated[JsInt, Field(ge=0)]


class AppUpdate(MarathonModel):
    """Every field of a Marathon app, all optional (Marathon's generated ``AppUpdate``)."""

    id: PathIdText | None = None
    accepted_resource_roles: list[JsStr] | None = None
    args: list[JsStr] | None = None
    backoff_factor: Annotated[JsDouble, Field(ge=1.0)] | None = None
    backoff_seconds: _Seconds | None = None
    cmd: Annotated[JsStr, Field(min_length=1)] | None = None
    constraints: list[Annotated[list[JsStr], Field(min_length=2, max_length=3)]] | None = None
    container: Container | None = None
    cpus: Annotated[_Cores, Field(ge=0.001)] | None = None
    dependencies: list[PathIdText] | None = None
    disk: _MiB | None = None
    env: dict[str, EnvValue] | None = None
    executor: Annotated[JsStr, AfterValidator(_executor)] | None = None
    executor_resources: JsObject | None = None
    fetch: list[Artifact] | None = None
    health_checks: list[HealthCheck] | None = None
    check: JsObject | None = None
    instances: _Seconds | None = None
    labels: dict[str, JsStr] | None = None
    max_launch_delay_seconds: _Seconds | None = None
    mem: _MiB | None = None
    # Marathon's gpus is an integer; Pallet shares devices, so fractions below 1 are accepted.
    gpus: _Cores | None = None
    ip_address: IpAddress | None = None
    networks: list[Network] | None = None
    ports: list[AnyPort] | None = None
    port_definitions: list[PortDefinition] | None = None
    readiness_checks: list[ReadinessCheck] | None = None
    residency: Residency | None = None
    resource_limits: JsObject | None = None
    require_ports: JsBool | None = None
    secrets: dict[str, SecretDef] | None = None
    task_kill_grace_period_seconds: _Seconds | None = None
    upgrade_strategy: UpgradeStrategy | None = None
    uris: list[Annotated[JsStr, Field(min_length=1, max_length=1024)]] | None = None
    user: JsStr | None = None
    version: Timestamp | None = None
    kill_selection: _KillSelection | None = None
    unreachable_strategy: UnreachableStrategy | None = None
    tty: JsBool | None = None
    role: Annotated[JsStr, Field(min_length=1)] | None = None

    # Written only when non-empty (``pragma.omitEmpty`` in app.raml); labels, networks
    # and portDefinitions are always written.
    omit_empty: ClassVar[frozenset[str]] = frozenset(
        {
            "args",
            "constraints",
            "dependencies",
            "env",
            "fetch",
            "health_checks",
            "readiness_checks",
            "secrets",
        }
    )

    @field_serializer("gpus")
    def _gpus(self, gpus: float | None) -> float | int | None:
        # Marathon's gpus is an integer; only a fractional (Pallet) share stays a float.
        return int(gpus) if gpus is not None and gpus.is_integer() else gpus

    def given(self) -> frozenset[str]:
        """Names of the fields the body set (``None`` counts as not set, as in Marathon)."""
        return frozenset(n for n in self.model_fields_set if getattr(self, n) is not None)


class AppDefinition(AppUpdate):
    """A whole app as ``POST /v2/apps`` takes it: ``id`` required, the rest optional."""

    id: PathIdText
