"""The one JSON encoding of ``AppSpec``: what the store keeps of an app, in Pallet's own
field names (never Marathon's); pure.

``app_to_json`` writes every field of the spec; ``app_from_json`` reads it back (a field
missing from an older encoding takes its default), so ``app_from_json(app_to_json(s))
== s``. The store's encoding sorts object keys, so the free-form objects an app keeps
(``container``, health checks, labels ...) come back from it in sorted key order;
``stored_form`` gives the spec as it will be after a reload, so an app renders the same
bytes on the master that took it and on one that loaded it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

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
from pallet.model.constraints import parse_constraints
from pallet.model.frozen import FrozenMap, freeze, thaw

__all__ = ["app_from_json", "app_to_json", "stored_form"]


def _env_to_json(env: Mapping[str, str | SecretRef]) -> dict[str, Any]:
    return {k: {"secret": v.secret} if isinstance(v, SecretRef) else v for k, v in env.items()}


def _env_from_json(doc: Mapping[str, Any]) -> FrozenMap[str | SecretRef]:
    return FrozenMap(
        {
            k: SecretRef(str(v["secret"])) if isinstance(v, Mapping) else str(v)
            for k, v in doc.items()
        }
    )


def _port_to_json(p: PortSpec) -> dict[str, Any]:
    return {"port": p.port, "protocol": p.protocol, "name": p.name, "labels": dict(p.labels)}


def _port_from_json(doc: Mapping[str, Any]) -> PortSpec:
    return PortSpec(
        port=int(doc.get("port", 0)),
        protocol=str(doc.get("protocol", "tcp")),
        name=doc.get("name"),
        labels=FrozenMap(doc.get("labels") or {}),
    )


def _network_to_json(n: NetworkSpec) -> dict[str, Any]:
    return {"mode": n.mode.value, "name": n.name, "labels": dict(n.labels)}


_MODES = {m.value: m for m in NetworkMode}
_KILL_SELECTIONS = {k.value: k for k in KillSelection}
"""Enum members by value: a dict lookup, where calling the enum costs ~10x more."""


def _network_from_json(doc: Mapping[str, Any]) -> NetworkSpec:
    return NetworkSpec(
        mode=_MODES[doc["mode"]] if "mode" in doc else NetworkMode.HOST,
        name=doc.get("name"),
        labels=FrozenMap(doc.get("labels") or {}),
    )


def _upgrade_to_json(u: UpgradeSpec) -> dict[str, Any]:
    return {f.name: getattr(u, f.name) for f in fields(u)}


def _unreachable_to_json(u: UnreachableSpec | None) -> dict[str, Any] | None:
    return None if u is None else {f.name: getattr(u, f.name) for f in fields(u)}


def _opt(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else read(value)


_TO: dict[str, Callable[[Any], Any]] = {
    "args": list,
    "env": _env_to_json,
    "constraints": lambda cs: [c.to_marathon() for c in cs],
    "fetch": thaw,
    "port_definitions": _opt(lambda ps: [_port_to_json(p) for p in ps]),
    "container": thaw,
    "health_checks": thaw,
    "readiness_checks": thaw,
    "dependencies": list,
    "upgrade_strategy": _upgrade_to_json,
    "labels": dict,
    "accepted_resource_roles": list,
    "networks": lambda ns: [_network_to_json(n) for n in ns],
    "secrets": dict,
    "unreachable_strategy": _unreachable_to_json,
    "kill_selection": lambda k: k.value,
    "kept": lambda k: {f.name: thaw(getattr(k, f.name)) for f in fields(k)},
}
"""How each non-scalar field is written (a scalar is written as it is)."""

_FROM: dict[str, Callable[[Any], Any]] = {
    "args": tuple,
    "env": _env_from_json,
    "constraints": parse_constraints,
    "fetch": freeze,
    "port_definitions": _opt(lambda ps: tuple(_port_from_json(p) for p in ps)),
    "container": freeze,
    "health_checks": freeze,
    "readiness_checks": freeze,
    "dependencies": tuple,
    "upgrade_strategy": lambda doc: UpgradeSpec(**doc),
    "labels": FrozenMap,
    "accepted_resource_roles": tuple,
    "networks": lambda ns: tuple(_network_from_json(n) for n in ns),
    "secrets": FrozenMap,
    "unreachable_strategy": _opt(lambda doc: UnreachableSpec(**doc)),
    "kill_selection": _KILL_SELECTIONS.__getitem__,
    "kept": lambda doc: KeptFields(**{k: freeze(v) for k, v in doc.items()}),
}
"""How each non-scalar field is read back."""

_FIELDS = tuple(f.name for f in fields(AppSpec))


def app_to_json(spec: AppSpec) -> dict[str, Any]:
    """``spec`` as plain JSON, every field written."""
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(spec, name)
        write = _TO.get(name)
        out[name] = value if write is None else write(value)
    return out


_KEPT = tuple(f.name for f in fields(KeptFields))


def app_from_json(doc: Mapping[str, Any]) -> AppSpec:
    """The spec ``app_to_json`` wrote (fields it lacks take ``AppSpec``'s defaults; the
    first encoding had ``KeptFields``' fields at the top level)."""
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name in doc:
            read = _FROM.get(name)
            values[name] = doc[name] if read is None else read(doc[name])
    if "kept" not in doc and any(name in doc for name in _KEPT):
        values["kept"] = _FROM["kept"]({k: doc[k] for k in _KEPT if k in doc})
    return AppSpec(**values)


def stored_form(spec: AppSpec) -> AppSpec:
    """``spec`` as it comes back from the store: its objects' keys in sorted order."""
    return app_from_json(json.loads(json.dumps(app_to_json(spec), sort_keys=True)))
