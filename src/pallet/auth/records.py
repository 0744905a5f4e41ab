"""The identity records kept in the store, and their one JSON encoding; pure.

/pallet/iam/users/<uid>        a user (argon2 password hash) or a service account
                               (public key), with a description
/pallet/iam/groups/<gid>       a group and its members
/pallet/iam/grants/<principal> the rules granted to ``user:<uid>`` or ``group:<gid>``
/pallet/iam/nodes/<node id>    an agent's credential (hash of its secret)
/pallet/iam/keyring            the token signing keys, sealed with the secrets key
/pallet/iam/revoked/<jti>      a token revoked before it expires (logout)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pallet.auth.perms import Action, Grant, parse_rid

__all__ = [
    "IAM_PREFIX",
    "GroupRecord",
    "NodeCredential",
    "UserRecord",
    "decode",
    "encode",
    "grants_from_json",
    "grants_to_json",
    "key",
]

IAM_PREFIX = "/pallet/iam/"


def key(kind: str, name: str) -> str:
    return f"{IAM_PREFIX}{kind}/{name}"


def encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes) -> Any:
    return json.loads(raw)


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: str
    kind: str  # "user" or "service"
    description: str = ""
    password_hash: str | None = None
    public_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"uid": self.uid, "kind": self.kind, "description": self.description}
        if self.password_hash is not None:
            doc["password_hash"] = self.password_hash
        if self.public_key is not None:
            doc["public_key"] = self.public_key
        return doc

    def public_json(self) -> dict[str, Any]:
        """What the API shows: never the hash."""
        doc: dict[str, Any] = {"uid": self.uid, "kind": self.kind, "description": self.description}
        if self.public_key is not None:
            doc["public_key"] = self.public_key
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UserRecord:
        return cls(
            str(doc["uid"]),
            str(doc["kind"]),
            str(doc.get("description", "")),
            doc.get("password_hash"),
            doc.get("public_key"),
        )


@dataclass(frozen=True, slots=True)
class GroupRecord:
    gid: str
    description: str = ""
    members: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        return {"gid": self.gid, "description": self.description, "members": sorted(self.members)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GroupRecord:
        return cls(str(doc["gid"]), str(doc.get("description", "")), frozenset(doc["members"]))


@dataclass(frozen=True, slots=True)
class NodeCredential:
    node_id: str
    secret_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "secret_hash": self.secret_hash}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> NodeCredential:
        return cls(str(doc["node_id"]), str(doc["secret_hash"]))


def grants_to_json(grants: frozenset[Grant]) -> list[list[str]]:
    return sorted([str(g.rid), g.action.value] for g in grants)


def grants_from_json(doc: Any) -> frozenset[Grant]:
    return frozenset(Grant(parse_rid(rid), Action(action)) for rid, action in doc)
