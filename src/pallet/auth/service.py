"""``AuthService``: the master's identities, logins, tokens and permissions, kept in the
store and followed there (every master of an HA cluster sees the same); does I/O.

    login (password | signed token | agent secret) ─▶ KeyRing.issue ─▶ token
    token ─▶ authenticate: verify (EdDSA, kid, issuer, exp), not revoked, principal still
             exists ─▶ Principal(uid, kind, Permissions of it and its groups)

Verified tokens are cached until they expire or the identities change, so a request
costs one dictionary lookup once its token has been seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets as _secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from pallet.auth.passwords import MAX_PASSWORD, MIN_PASSWORD, hash_password, verify_password
from pallet.auth.perms import Action, Grant, Permissions, Rid, check_principal_id, parse_rid
from pallet.auth.records import (
    IAM_PREFIX,
    GroupRecord,
    NodeCredential,
    UserRecord,
    decode,
    encode,
    grants_from_json,
    grants_to_json,
    key,
)
from pallet.auth.secretbox import SecretBox
from pallet.auth.tokens import Claims, InvalidToken, KeyRing, check_public_key, verify_login
from pallet.model import check_task_id
from pallet.model.errors import PalletError, ValidationError
from pallet.store import Store, StoreError

__all__ = [
    "SUPERUSER_GRANT",
    "AuthService",
    "AuthSettings",
    "Denied",
    "IamConflict",
    "IamNotFound",
    "Principal",
]

log = logging.getLogger(__name__)

SUPERUSER_GRANT = Grant(Rid("superuser"), Action.FULL)
_KEYRING = IAM_PREFIX + "keyring"


class Denied(PalletError):
    """A login that does not succeed (401): the reason is deliberately vague."""


class IamNotFound(PalletError):
    """No such user, group or node (404)."""


class IamConflict(PalletError):
    """The identity exists already, or the change would lock everyone out (409)."""


@dataclass(frozen=True, slots=True)
class Principal:
    uid: str
    kind: str
    permissions: Permissions
    expires: float
    jti: str


@dataclass(frozen=True, slots=True)
class AuthSettings:
    token_ttl: float = 3600.0
    """Seconds a user's or service account's token is valid."""
    agent_token_ttl: float = 3600.0
    bootstrap_secret: str | None = None
    """What a new agent shows to join (None: agents cannot join)."""
    superuser: str = "admin"
    superuser_password: str | None = None
    """The first superuser's password (None: one is made up and returned by ``load``)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthService:
    def __init__(
        self,
        store: Store,
        box: SecretBox,
        issuer: str,
        settings: AuthSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.box = box
        self.issuer = issuer
        self.settings = settings or AuthSettings()
        self.clock = clock
        self.ring = KeyRing.generate()
        self.users: dict[str, UserRecord] = {}
        self.groups: dict[str, GroupRecord] = {}
        self.grants: dict[str, frozenset[Grant]] = {}
        self.acls: dict[str, str] = {}
        """ACLs made by name (DC/OS's ``PUT /acs/api/v1/acls/{rid}``): rid -> description."""
        self.nodes: dict[str, NodeCredential] = {}
        self.revoked: dict[str, float] = {}
        self._cache: dict[str, Principal] = {}
        self._master_token: tuple[str, float] | None = None
        self.generation = 0

    # ------------------------------------------------------------ loading and following

    async def load(self) -> str | None:
        """Read every identity; on a cluster's first start make the signing keys and the
        superuser. Returns the superuser's password when it was made up here (to be
        shown once), else None."""
        password = None
        sealed = self.box.seal(encode(KeyRing.generate().to_json()), _KEYRING)
        await self.store.create(_KEYRING, sealed.encode())
        if not (await self.store.list(IAM_PREFIX + "users/"))[0]:
            uid = check_principal_id(self.settings.superuser, "--superuser")
            password = self.settings.superuser_password
            made_up = password is None
            if password is None:
                password = _secrets.token_urlsafe(18)
            user = UserRecord(uid, "user", "the first superuser", hash_password(password))
            if await self.store.create(key("users", uid), encode(user.to_json())) is not None:
                grants = frozenset({SUPERUSER_GRANT})
                await self.store.put(key("grants", f"user:{uid}"), encode(grants_to_json(grants)))
                log.info("made the superuser %s", uid)
            if not made_up:
                password = None
        await self.reload()
        return password

    async def reload(self) -> None:
        kvs, _ = await self.store.list(IAM_PREFIX)
        users: dict[str, UserRecord] = {}
        groups: dict[str, GroupRecord] = {}
        grants: dict[str, frozenset[Grant]] = {}
        nodes: dict[str, NodeCredential] = {}
        revoked: dict[str, float] = {}
        acls: dict[str, str] = {}
        for kv in kvs:
            rest = kv.key[len(IAM_PREFIX) :]
            kind, _, name = rest.partition("/")
            try:
                if rest == "keyring":
                    raw = self.box.open(kv.value.decode(), _KEYRING)
                    self.ring = KeyRing.from_json(decode(raw))
                elif kind == "users":
                    users[name] = UserRecord.from_json(decode(kv.value))
                elif kind == "groups":
                    groups[name] = GroupRecord.from_json(decode(kv.value))
                elif kind == "grants":
                    grants[name] = grants_from_json(decode(kv.value))
                elif kind == "nodes":
                    nodes[name] = NodeCredential.from_json(decode(kv.value))
                elif kind == "revoked":
                    revoked[name] = float(decode(kv.value)["exp"])
                elif kind == "acls":
                    acls[unquote(name)] = str(decode(kv.value)["description"])
            except (ValueError, KeyError, TypeError, PalletError) as e:
                log.error("cannot read %s: %s", kv.key, e)
        self.users, self.groups, self.grants = users, groups, grants
        self.nodes, self.revoked, self.acls = nodes, revoked, acls
        self._changed()

    def _changed(self) -> None:
        self._cache.clear()
        self.generation += 1

    async def follow(self) -> None:
        """Reload whenever another master (or this one) changes an identity."""
        while True:
            try:
                _, revision = await self.store.list(IAM_PREFIX + "keyring")
                async with await self.store.watch(IAM_PREFIX, revision + 1) as stream:
                    async for _ in stream:
                        await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a compaction or an outage: read it all again
                log.info("following identities again after: %s", e)
                await asyncio.sleep(1.0)
                with contextlib.suppress(StoreError):
                    await self.reload()

    # ------------------------------------------------------------ tokens

    def issue(self, uid: str, kind: str, ttl: float | None = None) -> tuple[str, float]:
        now = self.clock()
        if ttl is None:
            ttl = self.settings.agent_token_ttl if kind == "agent" else self.settings.token_ttl
        claims = Claims(uid, kind, now, now + ttl, _secrets.token_hex(12))
        return self.ring.issue(claims, self.issuer), claims.exp

    def master_token(self) -> str:
        """The token the master shows agents' log servers (renewed at half its life)."""
        now = self.clock()
        if self._master_token is None or self._master_token[1] - now < 300:
            token, exp = self.issue("master", "master", 3600.0)
            self._master_token = (token, exp)
        return self._master_token[0]

    def authenticate(self, token: str) -> Principal:
        """The principal ``token`` stands for; ``InvalidToken`` saying why not."""
        now = self.clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires > now:
                return cached
            del self._cache[token]
        claims = self.ring.verify(token, self.issuer, now)
        if claims.jti in self.revoked:
            raise InvalidToken("the token was revoked (logged out)")
        principal = Principal(
            claims.uid,
            claims.kind,
            self.permissions(claims.uid, claims.kind),
            claims.exp,
            claims.jti,
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def permissions(self, uid: str, kind: str) -> Permissions:
        if kind == "agent":
            if uid not in self.nodes:
                raise InvalidToken("the node's credential was withdrawn")
            return Permissions([Grant(Rid("agent", (uid,)), Action.FULL)])
        if kind == "master":
            return Permissions(())
        if uid not in self.users:
            raise InvalidToken(f"{uid} no longer exists")
        grants = set(self.grants.get(f"user:{uid}", ()))
        for gid, group in self.groups.items():
            if uid in group.members:
                grants |= self.grants.get(f"group:{gid}", frozenset())
        return Permissions(grants)

    # ------------------------------------------------------------ logins

    async def login(self, uid: str, password: str | None, token: str | None) -> tuple[str, float]:
        """A token for ``uid``: a user with its password, a service account with a login
        token signed by its key (DC/OS's two forms)."""
        user = self.users.get(uid)
        if password is not None:
            stored = user.password_hash if user is not None and user.kind == "user" else None
            if not await asyncio.to_thread(verify_password, stored, password) or user is None:
                raise Denied("wrong user id or password")
            return self.issue(uid, "user")
        if token is not None:
            if user is None or user.kind != "service" or user.public_key is None:
                raise Denied("no such service account, or it has no key")
            try:
                verify_login(token, uid, user.public_key, self.clock())
            except InvalidToken as e:
                raise Denied(e.reason) from None
            return self.issue(uid, "service")
        raise Denied("give a password or a signed login token")

    async def logout(self, principal: Principal) -> None:
        """Revoke the caller's token until it would have expired anyway."""
        await self.store.put(key("revoked", principal.jti), encode({"exp": principal.expires}))
        self.revoked[principal.jti] = principal.expires
        self._changed()
        await self._prune_revoked()

    async def _prune_revoked(self) -> None:
        now = self.clock()
        for jti in [j for j, exp in self.revoked.items() if exp <= now]:
            await self.store.delete(key("revoked", jti))
            self.revoked.pop(jti, None)

    async def join(
        self, node_id: str, bootstrap: str | None, credential: str | None
    ) -> dict[str, Any]:
        """An agent's token: a new node shows the bootstrap secret and gets a credential of
        its own (once); a known node shows that credential."""
        check_task_id(node_id, "/node_id")  # node ids follow the task id rules
        known = self.nodes.get(node_id)
        if credential is not None:
            if known is None or not hmac.compare_digest(known.secret_hash, _digest(credential)):
                raise Denied("unknown node or wrong credential")
            token, exp = self.issue(node_id, "agent")
            return {"token": token, "expires": exp}
        expected = self.settings.bootstrap_secret
        if (
            bootstrap is None
            or expected is None
            or not hmac.compare_digest(_digest(bootstrap), _digest(expected))
        ):
            raise Denied("wrong bootstrap secret")
        if known is not None:
            raise Denied(f"node {node_id} has joined already; it logs in with its own credential")
        secret = _secrets.token_urlsafe(32)
        record = NodeCredential(node_id, _digest(secret))
        if await self.store.create(key("nodes", node_id), encode(record.to_json())) is None:
            raise Denied(f"node {node_id} has joined already")
        self.nodes[node_id] = record
        self._changed()
        token, exp = self.issue(node_id, "agent")
        return {"token": token, "expires": exp, "credential": secret}

    async def forget_node(self, node_id: str) -> None:
        """Withdraw a node's credential: its agent must join again with the bootstrap secret."""
        await self.store.delete(key("nodes", node_id))
        self.nodes.pop(node_id, None)
        self._changed()

    # ------------------------------------------------------------ identities

    async def put_user(
        self,
        uid: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
        description: str = "",
        create: bool = True,
    ) -> UserRecord:
        """Create (``create``) or change a user (``password``) or service account
        (``public_key``); a change may give only a ``description``."""
        check_principal_id(uid)
        if len(description) > 1000:
            raise ValidationError("/description", "at most 1000 characters")
        existing = self.users.get(uid)
        if not create and existing is not None and password is None and public_key is None:
            return await self._save_user(
                UserRecord(
                    uid,
                    existing.kind,
                    description or existing.description,
                    existing.password_hash,
                    existing.public_key,
                )
            )
        if (password is None) == (public_key is None):
            raise ValidationError(
                "/password", "give a password (a user) or a public_key (a service account)"
            )
        if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise ValidationError("/password", f"must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
        if public_key is not None:
            try:
                check_public_key(public_key)
            except ValueError as e:
                raise ValidationError("/public_key", str(e)) from None
        if create and existing is not None:
            raise IamConflict(f"{uid} exists already")
        if not create and existing is None:
            raise IamNotFound(f"no user {uid}")
        if f"group:{uid}" in self.grants or uid in self.groups:
            raise IamConflict(f"{uid} is a group's id")
        record = UserRecord(
            uid,
            "user" if password is not None else "service",
            description or (existing.description if existing else ""),
            await asyncio.to_thread(hash_password, password) if password is not None else None,
            public_key,
        )
        return await self._save_user(record)

    async def _save_user(self, record: UserRecord) -> UserRecord:
        await self.store.put(key("users", record.uid), encode(record.to_json()))
        self.users[record.uid] = record
        self._changed()
        return record

    async def change_password(self, uid: str, current: str, new: str) -> UserRecord:
        """A user's own password change: ``current`` must be right (a stolen token alone
        cannot take the account over)."""
        user = self.users.get(uid)
        stored = user.password_hash if user is not None and user.kind == "user" else None
        if not await asyncio.to_thread(verify_password, stored, current) or user is None:
            raise Denied("the current password is wrong")
        return await self.put_user(uid, password=new, create=False)

    async def delete_user(self, uid: str) -> None:
        if uid not in self.users:
            raise IamNotFound(f"no user {uid}")
        self._check_not_last_superuser(removing_user=uid)
        await self.store.delete(key("users", uid))
        await self.store.delete(key("grants", f"user:{uid}"))
        for gid, group in list(self.groups.items()):
            if uid in group.members:
                await self._save_group(GroupRecord(gid, group.description, group.members - {uid}))
        self.users.pop(uid, None)
        self.grants.pop(f"user:{uid}", None)
        self._changed()

    async def put_group(self, gid: str, description: str = "") -> GroupRecord:
        check_principal_id(gid, "/gid")
        if gid in self.groups:
            raise IamConflict(f"group {gid} exists already")
        if gid in self.users:
            raise IamConflict(f"{gid} is a user's id")
        return await self._save_group(GroupRecord(gid, description[:1000]))

    async def _save_group(self, group: GroupRecord) -> GroupRecord:
        await self.store.put(key("groups", group.gid), encode(group.to_json()))
        self.groups[group.gid] = group
        self._changed()
        return group

    async def delete_group(self, gid: str) -> None:
        if gid not in self.groups:
            raise IamNotFound(f"no group {gid}")
        self._check_not_last_superuser(removing_group=gid)
        await self.store.delete(key("groups", gid))
        await self.store.delete(key("grants", f"group:{gid}"))
        self.groups.pop(gid, None)
        self.grants.pop(f"group:{gid}", None)
        self._changed()

    async def set_member(self, gid: str, uid: str, member: bool) -> GroupRecord:
        group = self.groups.get(gid)
        if group is None:
            raise IamNotFound(f"no group {gid}")
        if uid not in self.users:
            raise IamNotFound(f"no user {uid}")
        if not member:
            self._check_not_last_superuser(leaving=(gid, uid))
        members = group.members | {uid} if member else group.members - {uid}
        return await self._save_group(GroupRecord(gid, group.description, members))

    def principal_key(self, principal: str) -> str:
        """``user:<uid>`` or ``group:<gid>`` of an existing identity (a bare id is a user
        or group, whichever exists)."""
        kind, colon, name = principal.partition(":")
        if not colon:
            kind, name = ("group", principal) if principal in self.groups else ("user", principal)
        if (kind == "user" and name in self.users) or (kind == "group" and name in self.groups):
            return f"{kind}:{name}"
        raise IamNotFound(f"no {kind} {name}")

    async def grant(
        self, principal: str, rid: str, action: str, allow: bool = True
    ) -> frozenset[Grant]:
        """Grant (``allow``) or revoke one rule of ``principal``."""
        pkey = self.principal_key(principal)
        try:
            act = Action(action)
        except ValueError:
            raise ValidationError(
                "/action", f"{action!r} is not one of {', '.join(a.value for a in Action)}"
            ) from None
        grant = Grant(parse_rid(rid), act)
        current = self.grants.get(pkey, frozenset())
        updated = current | {grant} if allow else current - {grant}
        if not allow and grant == SUPERUSER_GRANT:
            self._check_not_last_superuser(revoking=pkey)
        await self.store.put(key("grants", pkey), encode(grants_to_json(updated)))
        self.grants[pkey] = updated
        self._changed()
        return updated

    # ------------------------------------------------------------ ACLs by name

    async def put_acl(self, rid: str, description: str = "") -> str:
        """Make the ACL ``rid`` (DC/OS makes one before granting on it); its canonical id."""
        canonical = str(parse_rid(rid))
        if len(description) > 1000:
            raise ValidationError("/description", "at most 1000 characters")
        if canonical in self.acls:
            raise IamConflict(f"ACL {canonical} exists already")
        record = {"rid": canonical, "description": description}
        await self.store.put(key("acls", quote(canonical, safe="")), encode(record))
        self.acls[canonical] = description
        self._changed()
        return canonical

    async def delete_acl(self, rid: str) -> None:
        """Remove the ACL ``rid`` and every grant on it."""
        target = parse_rid(rid)
        canonical = str(target)
        on_it = [p for p, gs in self.grants.items() if any(g.rid == target for g in gs)]
        if canonical not in self.acls and not on_it:
            raise IamNotFound(f"no ACL {canonical}")
        for pkey in on_it:
            for grant in [g for g in self.grants[pkey] if g.rid == target]:
                await self.grant(pkey, canonical, grant.action.value, allow=False)
        await self.store.delete(key("acls", quote(canonical, safe="")))
        self.acls.pop(canonical, None)
        self._changed()

    def acl_rids(self) -> dict[str, str]:
        """Every ACL: made by name, or implied by a grant; rid -> description."""
        found = {str(g.rid): "" for gs in self.grants.values() for g in gs}
        return dict(sorted({**found, **self.acls}.items()))

    def acl_json(self) -> list[dict[str, Any]]:
        return [
            {"principal": p, "rid": str(g.rid), "action": g.action.value}
            for p in sorted(self.grants)
            for g in sorted(self.grants[p])
        ]

    def _superusers(
        self,
        grants: dict[str, frozenset[Grant]],
        groups: dict[str, GroupRecord],
        users: Iterable[str],
    ) -> set[str]:
        out = set()
        for uid in users:
            keys = [f"user:{uid}"] + [f"group:{g}" for g, r in groups.items() if uid in r.members]
            if any(SUPERUSER_GRANT in grants.get(k, ()) for k in keys):
                out.add(uid)
        return out

    def _check_not_last_superuser(
        self,
        *,
        removing_user: str | None = None,
        removing_group: str | None = None,
        leaving: tuple[str, str] | None = None,
        revoking: str | None = None,
    ) -> None:
        """Refuse a change after which no user could administer the cluster."""
        grants = dict(self.grants)
        groups = dict(self.groups)
        users = [u for u, r in self.users.items() if r.kind in ("user", "service")]
        if removing_user is not None:
            users.remove(removing_user)
        if removing_group is not None:
            groups.pop(removing_group, None)
        if leaving is not None:
            gid, uid = leaving
            g = groups[gid]
            groups[gid] = GroupRecord(gid, g.description, g.members - {uid})
        if revoking is not None:
            grants[revoking] = grants.get(revoking, frozenset()) - {SUPERUSER_GRANT}
        if not self._superusers(grants, groups, users):
            raise IamConflict(
                "this would leave no superuser; grant pallet:superuser full to another first"
            )

    async def rotate_keys(self, keep: int = 1) -> None:
        """A new signing key; ``keep=0`` revokes every token issued so far."""
        self.ring = self.ring.rotated(keep)
        sealed = self.box.seal(encode(self.ring.to_json()), _KEYRING)
        await self.store.put(_KEYRING, sealed.encode())
        self._master_token = None
        self._changed()
