"""A client of a ``pallet up`` cluster logged in as its superuser, from the files ``up``
keeps in ``<state>/secure`` (the cluster CA and the superuser's password); for ``up``
itself, the benchmarks and the end-to-end tests. Does I/O (files, HTTP)."""

from __future__ import annotations

import ssl
from collections.abc import Generator
from pathlib import Path

import httpx

__all__ = ["secure_dir", "superuser_client"]


def secure_dir(state: Path) -> Path:
    """Where ``pallet up --secure`` keeps the CA, bootstrap secret and passwords."""
    return state / "secure"


def superuser_client(url: str, state_dir: Path, secure: bool, timeout: float = 2.0) -> httpx.Client:
    """A client of the master at ``url`` of the ``pallet up`` cluster whose state is in
    ``state_dir``; secured, it trusts the cluster CA and logs in as the superuser (again
    whenever its token is refused)."""
    if not secure:
        return httpx.Client(base_url=url, timeout=timeout, follow_redirects=True)
    directory = secure_dir(state_dir.resolve())
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    password = (directory / "admin-password").read_text().strip()
    login = _SuperuserLogin(password)
    return httpx.Client(
        base_url=url,
        timeout=timeout,
        verify=context,
        auth=login,
        follow_redirects=True,  # a follower sends the call to the leader
        event_hooks={"request": [login.on_request]},
    )


class _SuperuserLogin(httpx.Auth):
    requires_response_body = True

    def __init__(self, password: str) -> None:
        self.password = password
        self.token = ""

    def on_request(self, request: httpx.Request) -> None:
        """The token goes on every hop of a redirect too (httpx drops it when the leader
        is at another origin; each hop is a master with the cluster CA's certificate)."""
        if self.token:
            request.headers["Authorization"] = f"token={self.token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.on_request(request)
        response = yield request
        if response.status_code == 401:
            login = httpx.Request(
                "POST",
                request.url.copy_with(path="/v1/auth/login", query=None),
                json={"uid": "admin", "password": self.password},
            )
            answer = yield login
            if answer.status_code == 200:
                self.token = answer.json()["token"]
                request.headers["Authorization"] = f"token={self.token}"
                yield request
