"""``AppSpec`` <-> the canonical ``AppDefinition`` it stands for; pure.

``build_spec`` takes an app that ``normalize`` has validated and translated and fills
in Marathon's remaining defaults (``cpus`` 1, ``mem`` 128, ``backoffFactor`` 1.15,
``maxLaunchDelaySeconds`` 300 ...). ``spec_definition`` goes back: the complete,
canonical definition Marathon would return for the spec.
"""

from __future__ import annotations

from typing import Any

from pallet.api.marathon.app import AppDefinition
from pallet.api.marathon.parts import (
    Artifact,
    Container,
    EnvSecret,
    HealthCheck,
    Network,
    PortDefinition,
    ReadinessCheck,
    Residency,
    SecretDef,
    UnreachableStrategy,
    UpgradeStrategy,
)
from pallet.model import parse_constraints
from pallet.model.app import (
    AppSpec,
    KeptFields,
    KillSelection,
    NetworkMode,
    NetworkSpec,
    PortSpec,
    SecretRef,
    UnreachableSpec,
    UpgradeSpec,
)
from pallet.model.frozen import FrozenMap, freeze, thaw

__all__ = ["DEFAULTS", "build_spec", "spec_definition"]

# Marathon 1.x defaults (app.raml; maxLaunchDelaySeconds is 300 since Marathon 1.8).
DEFAULTS: dict[str, Any] = {
    "instances": 1,
    "cpus": 1.0,
    "mem": 128.0,
    "disk": 0.0,
    "gpus": 0.0,
    "executor": "",
    "require_ports": False,
    "backoff_seconds": 1,
    "backoff_factor": 1.15,
    "max_launch_delay_seconds": 300,
}


def _value(app: AppDefinition, name: str) -> Any:
    value = getattr(app, name)
    return DEFAULTS[name] if value is None else value


def _frozen(model: Any) -> Any:
    return None if model is None else freeze(model.to_json())


def build_spec(app: AppDefinition) -> AppSpec:
    """The spec of a validated, translated app; absent fields take Marathon's defaults."""
    env = {
        k: SecretRef(v.secret) if isinstance(v, EnvSecret) else v
        for k, v in (app.env or {}).items()
    }
    ports = app.port_definitions
    unreachable = app.unreachable_strategy
    resident = app.container is not None and any("persistent" in v for v in app.container.volumes)
    strategy = app.upgrade_strategy
    if strategy is None:
        strategy = UpgradeStrategy(
            minimum_health_capacity=0.5 if resident else 1.0,
            maximum_over_capacity=0.0 if resident else 1.0,
        )
    return AppSpec(
        id=app.id,
        cmd=app.cmd,
        args=tuple(app.args or ()),
        user=app.user,
        env=FrozenMap(env),
        instances=_value(app, "instances"),
        cpus=_value(app, "cpus"),
        mem=_value(app, "mem"),
        disk=_value(app, "disk"),
        gpus=_value(app, "gpus"),
        # Marathon keeps constraints in a set: repeats (in any operator case) collapse.
        constraints=tuple(dict.fromkeys(parse_constraints(app.constraints or []))),
        fetch=tuple(freeze(a.to_json()) for a in app.fetch or ()),
        port_definitions=None
        if ports is None
        else tuple(PortSpec(p.port, p.protocol, p.name, FrozenMap(p.labels)) for p in ports),
        require_ports=_value(app, "require_ports"),
        backoff_seconds=_value(app, "backoff_seconds"),
        backoff_factor=_value(app, "backoff_factor"),
        max_launch_delay_seconds=_value(app, "max_launch_delay_seconds"),
        container=_frozen(app.container),
        health_checks=tuple(freeze(c.to_json()) for c in app.health_checks or ()),
        readiness_checks=tuple(freeze(c.to_json()) for c in app.readiness_checks or ()),
        task_kill_grace_period_seconds=app.task_kill_grace_period_seconds,
        dependencies=tuple(dict.fromkeys(app.dependencies or ())),
        upgrade_strategy=UpgradeSpec(
            strategy.minimum_health_capacity,
            strategy.maximum_over_capacity,
            strategy.progress_deadline_seconds,
            strategy.auto_rollback,
            strategy.canary_instances,
            strategy.auto_promote_after_seconds,
        ),
        labels=FrozenMap(app.labels or {}),
        accepted_resource_roles=tuple(dict.fromkeys(app.accepted_resource_roles or ())),
        networks=tuple(
            NetworkSpec(NetworkMode(n.mode), n.name, FrozenMap(n.labels))
            for n in app.networks or [Network(mode="host")]
        ),
        secrets=FrozenMap({k: s.source for k, s in (app.secrets or {}).items()}),
        unreachable_strategy=None
        if unreachable is not None and unreachable.disabled
        else UnreachableSpec(
            unreachable.inactive_after_seconds if unreachable else 0,
            unreachable.expunge_after_seconds if unreachable else 0,
        ),
        kill_selection=KillSelection(app.kill_selection or "YOUNGEST_FIRST"),
        role=app.role or "*",
        kept=KeptFields(
            executor=_value(app, "executor"),
            tty=app.tty,
            residency=_frozen(app.residency),
            check=None if app.check is None else freeze(app.check),
            executor_resources=None
            if app.executor_resources is None
            else freeze(app.executor_resources),
            resource_limits=None if app.resource_limits is None else freeze(app.resource_limits),
        ),
    )


def spec_definition(spec: AppSpec) -> AppDefinition:
    """The complete canonical definition of ``spec``, every default written out."""
    unreachable = spec.unreachable_strategy
    kept = spec.kept
    fields: dict[str, Any] = {
        "id": spec.id,
        "accepted_resource_roles": list(spec.accepted_resource_roles) or None,
        "args": list(spec.args),
        "backoff_factor": spec.backoff_factor,
        "backoff_seconds": spec.backoff_seconds,
        "cmd": spec.cmd,
        "constraints": [c.to_marathon() for c in spec.constraints],
        "container": _model(Container, spec.container),
        "cpus": spec.cpus,
        "dependencies": list(spec.dependencies),
        "disk": spec.disk,
        "env": {
            k: EnvSecret(secret=v.secret) if isinstance(v, SecretRef) else v
            for k, v in spec.env.items()
        },
        "executor": kept.executor,
        "fetch": [Artifact.model_validate(thaw(a)) for a in spec.fetch],
        "gpus": spec.gpus,
        "health_checks": [HealthCheck.model_validate(thaw(c)) for c in spec.health_checks],
        "check": thaw(kept.check),
        "instances": spec.instances,
        "labels": dict(spec.labels),
        "max_launch_delay_seconds": spec.max_launch_delay_seconds,
        "mem": spec.mem,
        "networks": [
            Network(mode=n.mode.value, name=n.name, labels=dict(n.labels)) for n in spec.networks
        ],
        "port_definitions": None
        if spec.port_definitions is None
        else [
            PortDefinition(port=p.port, protocol=p.protocol, name=p.name, labels=dict(p.labels))
            for p in spec.port_definitions
        ],
        "readiness_checks": [ReadinessCheck.model_validate(thaw(c)) for c in spec.readiness_checks],
        "residency": _model(Residency, kept.residency),
        "require_ports": spec.require_ports,
        "secrets": {k: SecretDef(source=v) for k, v in spec.secrets.items()},
        "task_kill_grace_period_seconds": spec.task_kill_grace_period_seconds,
        "upgrade_strategy": UpgradeStrategy(
            minimum_health_capacity=spec.upgrade_strategy.minimum_health_capacity,
            maximum_over_capacity=spec.upgrade_strategy.maximum_over_capacity,
            progress_deadline_seconds=spec.upgrade_strategy.progress_deadline_seconds,
            auto_rollback=spec.upgrade_strategy.auto_rollback,
            canary_instances=spec.upgrade_strategy.canary_instances,
            auto_promote_after_seconds=spec.upgrade_strategy.auto_promote_after_seconds,
        ),
        "user": spec.user,
        "unreachable_strategy": UnreachableStrategy.model_validate("disabled")
        if unreachable is None
        else UnreachableStrategy(
            inactive_after_seconds=unreachable.inactive_after_seconds,
            expunge_after_seconds=unreachable.expunge_after_seconds,
        ),
        "kill_selection": spec.kill_selection.value,
        "tty": kept.tty,
        "executor_resources": thaw(kept.executor_resources),
        "resource_limits": thaw(kept.resource_limits),
        "role": spec.role,
    }
    return AppDefinition.model_construct(_fields_set=set(fields), **fields)


def _model(cls: Any, frozen: Any) -> Any:
    return None if frozen is None else cls.model_validate(thaw(frozen))
