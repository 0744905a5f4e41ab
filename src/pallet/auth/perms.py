"""Permissions per resource path and action, DC/OS style; pure.

A resource id names a kind and, for kinds that have paths, a path:
``pallet:service:/prod/web`` (an app or group), ``pallet:job:/nightly/backup`` (a job:
``nightly.backup``), ``pallet:secret:/db/password``, ``pallet:agent:/node-1``; kinds without
paths are whole: ``pallet:node``, ``pallet:iam``, ``pallet:audit``, ``pallet:events``,
``pallet:metrics``, ``pallet:discovery``, ``pallet:superuser``.

A rule is a resource id whose path is a pattern, granted with one action (``create``,
``read``, ``update``, ``delete``, or ``full`` for all four). As in DC/OS, a rule on a
path covers that path and everything below it (``pallet:service:/prod`` covers
``/prod/web``); a ``*`` segment stands for any one segment (``pallet:service:/prod/*``
covers what is below ``/prod`` but not ``/prod`` itself); a rule without a path covers
the whole kind. ``pallet:superuser`` with ``full`` is everything. No regular expression
is ever built from a rule: matching is segment by segment, linear in the path.

DC/OS's own resource ids are accepted where they mean the same, and stored as the Pallet
id they stand for (``DCOS_RIDS``): ``dcos:superuser``,
``dcos:service:marathon:marathon:services:/prod`` (= ``pallet:service:/prod``),
``dcos:service:marathon:marathon:admin:events`` and ``...:admin:leader``,
``dcos:service:metronome:metronome:jobs:prod`` (= ``pallet:job:/prod``),
``dcos:secrets:default:/db`` and ``dcos:secrets:list:default:/db`` (= ``pallet:secret:/db``),
``dcos:adminrouter:acs`` (the IAM API) and ``dcos:adminrouter:ops:mesos`` (nodes). DC/OS's
``dcos:adminrouter:service:marathon`` is refused with a 422 that says why: it only lets a
request through DC/OS's Admin Router, which Pallet does not have; every Pallet route checks
the resource itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pallet.model.errors import ValidationError

__all__ = [
    "DCOS_RIDS",
    "KINDS",
    "PATH_KINDS",
    "Action",
    "Grant",
    "Permissions",
    "Rid",
    "check_principal_id",
    "job_path",
    "parse_rid",
]


class Action(enum.StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    FULL = "full"


PATH_KINDS = frozenset({"service", "job", "secret", "agent"})
"""Kinds whose resources are paths."""
KINDS = PATH_KINDS | {
    "node",
    "leader",
    "iam",
    "audit",
    "events",
    "metrics",
    "discovery",
    "superuser",
}

_MAX_RID = 512
_MAX_SEGMENTS = 32
_SEGMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True, slots=True, order=True)
class Rid:
    """A resource id, or a rule's pattern: ``kind`` and the path's segments (None: the
    whole kind)."""

    kind: str
    path: tuple[str, ...] | None = None

    def __str__(self) -> str:
        if self.path is None:
            return f"pallet:{self.kind}"
        return f"pallet:{self.kind}:/" + "/".join(self.path)


def _segments(path: str, field: str, *, pattern: bool) -> tuple[str, ...]:
    if not path.startswith("/"):
        raise ValidationError(field, f"the path {path!r} must start with /")
    parts = tuple(p for p in path.split("/") if p)
    if len(parts) > _MAX_SEGMENTS:
        raise ValidationError(field, f"the path has more than {_MAX_SEGMENTS} segments")
    for part in parts:
        if pattern and part == "*":
            continue
        if part in (".", "..") or not set(part) <= _SEGMENT_CHARS:
            raise ValidationError(
                field,
                f"segment {part!r} must be letters, digits, '.', '_' or '-' (or a whole "
                "'*' in a rule); patterns are not regular expressions",
            )
    return parts


_DCOS_WHOLE = {
    "dcos:superuser": "pallet:superuser",
    "dcos:service:marathon:marathon:admin:events": "pallet:events",
    "dcos:service:marathon:marathon:admin:leader": "pallet:leader",
    "dcos:adminrouter:acs": "pallet:iam",
    "dcos:adminrouter:ops:mesos": "pallet:node",
}
_DCOS_PATHS = {
    "dcos:service:marathon:marathon:services": "service",
    "dcos:service:metronome:metronome:jobs": "job",
    "dcos:secrets:default": "secret",
    "dcos:secrets:list:default": "secret",
}
_DCOS_GATES = ("dcos:adminrouter:service:",)
DCOS_RIDS = (*_DCOS_WHOLE, *(f"{prefix}:<path>" for prefix in _DCOS_PATHS))
"""The DC/OS resource ids Pallet understands."""


def _from_dcos(text: str, field: str) -> str:
    """The Pallet id a DC/OS id stands for (``ValidationError`` if none does)."""
    if text in _DCOS_WHOLE:
        return _DCOS_WHOLE[text]
    for prefix, kind in _DCOS_PATHS.items():
        if text == prefix:
            return f"pallet:{kind}"
        if text.startswith(prefix + ":"):
            path = text[len(prefix) + 1 :]
            if kind == "job" and not path.startswith("/"):
                path = job_path(path)  # Metronome's dotted job group: prod.nightly
            elif kind == "secret" and path and not path.startswith("/"):
                path = "/" + path  # DC/OS writes both dcos:secrets:default:/db and ...:db
            return f"pallet:{kind}:{path or '/'}"
    if text.startswith(_DCOS_GATES):
        raise ValidationError(
            field,
            f"{text} only opens DC/OS's Admin Router, which Pallet does not have: every "
            "route checks its resource itself; grant e.g. "
            "dcos:service:marathon:marathon:services:/ (or pallet:service:/) instead",
        )
    raise ValidationError(
        field,
        f"{text!r} is not a DC/OS resource id Pallet understands; use one of "
        f"{', '.join(DCOS_RIDS)}, or a pallet:<kind> id",
    )


def parse_rid(text: str, field: str = "/rid", *, pattern: bool = True) -> Rid:
    """``pallet:<kind>[:<path>]`` (or a DC/OS id that stands for one) as a ``Rid``; a
    ``ValidationError`` on ``field`` names what is wrong. ``pattern`` allows ``*``
    segments (rules); resources have none."""
    if not isinstance(text, str) or not text:
        raise ValidationError(field, "give a resource id such as pallet:service:/prod")
    if len(text) > _MAX_RID:
        raise ValidationError(field, f"a resource id has at most {_MAX_RID} characters")
    if text.startswith("dcos:"):
        text = _from_dcos(text, field)
    prefix, _, rest = text.partition(":")
    if prefix != "pallet" or not rest:
        raise ValidationError(field, f"{text!r} must start with pallet:<kind>")
    kind, colon, path = rest.partition(":")
    if kind not in KINDS:
        raise ValidationError(
            field, f"unknown kind {kind!r}; choose from {', '.join(sorted(KINDS))}"
        )
    if not colon:
        return Rid(kind)
    if kind not in PATH_KINDS:
        raise ValidationError(field, f"pallet:{kind} takes no path")
    return Rid(kind, _segments(path, field, pattern=pattern))


def job_path(job_id: str) -> str:
    """Metronome's dotted job id as a path: ``prod.nightly`` -> ``/prod/nightly``, so a
    rule on ``pallet:job:/prod`` covers every job under ``prod``."""
    return "/" + "/".join(p for p in job_id.split(".") if p)


def check_principal_id(uid: str, field: str = "/uid") -> str:
    """A user, service account or group id: 1-64 of lowercase letters, digits, ``_``, ``-``,
    ``.`` and ``@``, starting with a letter or digit (no ``/``, no ``..``)."""
    ok = (
        isinstance(uid, str)
        and 0 < len(uid) <= 64
        and uid[0].isascii()
        and uid[0].isalnum()
        and all(c.isascii() and (c.isdigit() or "a" <= c <= "z" or c in "_-.@") for c in uid)
        and ".." not in uid
    )
    if not ok:
        raise ValidationError(
            field,
            f"{uid!r} must be 1-64 lowercase letters, digits, '_', '-', '.' or '@', "
            "starting with a letter or digit",
        )
    return uid


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One rule granted with one action."""

    rid: Rid
    action: Action

    def __str__(self) -> str:
        return f"{self.rid} {self.action.value}"


def _covers(rule: tuple[str, ...] | None, path: tuple[str, ...] | None) -> bool:
    if rule is None:
        return True
    if path is None:
        return not rule  # a rule on "/" covers the whole kind
    if len(rule) > len(path):
        return False
    return all(r == "*" or r == p for r, p in zip(rule, path, strict=False))


class Permissions:
    """What one principal may do: the union of its grants and its groups' grants."""

    __slots__ = ("_by_kind", "grants", "superuser")

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.grants = frozenset(grants)
        self.superuser = any(
            g.rid.kind == "superuser" and g.action is Action.FULL for g in self.grants
        )
        self._by_kind: dict[str, list[Grant]] = {}
        for g in self.grants:
            self._by_kind.setdefault(g.rid.kind, []).append(g)

    def allows(self, resource: Rid, action: Action) -> bool:
        if self.superuser:
            return True
        for g in self._by_kind.get(resource.kind, ()):
            if (g.action is action or g.action is Action.FULL) and _covers(
                g.rid.path, resource.path
            ):
                return True
        return False

    def may(self, kind: str, action: Action, path: str | None = None) -> bool:
        """``allows`` for a path given as text (``/prod/web``), already known to be valid."""
        parts = None if path is None else tuple(p for p in path.split("/") if p)
        return self.allows(Rid(kind, parts), action)

    def sees_all(self, kind: str, action: Action = Action.READ) -> bool:
        """Whether every resource of ``kind`` is allowed (listings need no filtering)."""
        return self.allows(Rid(kind, () if kind in PATH_KINDS else None), action)


ALL = Permissions([Grant(Rid("superuser"), Action.FULL)])
"""What everyone may do while authentication is off."""
