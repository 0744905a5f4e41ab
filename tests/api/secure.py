"""A master's API with authentication on, over a memory store and a fake clock, and helpers
to log in and grant (shared by the security route tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from argon2.profiles import CHEAPEST

from pallet.api import create_api
from pallet.auth import passwords
from pallet.auth.audit import AuditLog
from pallet.auth.secretbox import SecretBox, new_key_line
from pallet.auth.secretstore import SecretStore
from pallet.auth.service import AuthService, AuthSettings
from pallet.control import Control

from .conftest import INFO, FakeClock

PASSWORD = "correct horse battery"
BOOTSTRAP = "bootstrap-secret-for-tests"


@dataclass
class Secure:
    api: httpx.AsyncClient
    auth: AuthService
    audit: AuditLog
    clock: FakeClock
    control: Control

    def client(self, token: str | None, scheme: str = "token=") -> httpx.AsyncClient:
        """The same API, sending ``token`` (``token=`` as DC/OS, or ``Bearer ``)."""
        headers = {"Authorization": f"{scheme}{token}"} if token is not None else {}
        return httpx.AsyncClient(
            transport=self.api._transport, base_url="http://master", headers=headers
        )

    async def login(self, uid: str = "admin", password: str = PASSWORD) -> str:
        r = await self.api.post("/v1/auth/login", json={"uid": uid, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    async def user(self, uid: str, *grants: tuple[str, str]) -> httpx.AsyncClient:
        """A new user with ``grants``, logged in: a client sending its token."""
        await self.auth.put_user(uid, password=PASSWORD)
        for rid, action in grants:
            await self.auth.grant(uid, rid, action)
        return self.client(await self.login(uid))


async def make_secure(control: Control, clock: FakeClock) -> AsyncIterator[Secure]:
    passwords.use_parameters(CHEAPEST)  # the default's cost is by design; not what is tested
    box = SecretBox.from_text(new_key_line())
    auth = AuthService(
        control.store,
        box,
        INFO.cluster_id,
        AuthSettings(superuser_password=PASSWORD, bootstrap_secret=BOOTSTRAP),
        clock=clock,
    )
    await auth.load()
    audit = AuditLog(control.store, clock=clock)
    secrets = SecretStore(control.store, box, clock=clock)
    app = create_api(control, INFO, manage_control=False, auth=auth, audit=audit, secrets=secrets)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as api:
        yield Secure(api, auth, audit, clock, control)
