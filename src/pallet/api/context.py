"""What every route needs: the master's ``Control``, the caches, the settings and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fastapi import Request

from pallet.api.marathon import InfoSettings
from pallet.api.marathon.support import Allowances
from pallet.api.render import Renderer
from pallet.control import Control

if TYPE_CHECKING:
    import ssl

    from pallet.auth.audit import AuditLog
    from pallet.auth.ca import CertificateAuthority
    from pallet.auth.secretstore import SecretStore
    from pallet.auth.service import AuthService

__all__ = ["ApiContext", "context"]


@dataclass(slots=True)
class ApiContext:
    control: Control
    info: InfoSettings
    renderer: Renderer = field(init=False)
    log_timeout: float = 10.0
    discovery: dict[str, Any] = field(default_factory=dict)
    """Soft state of the DNS server and load balancers (``routes_discovery``)."""
    leading: bool = True
    """Whether this master leads (a follower redirects requests to the leader)."""
    abdicate: Callable[[], Awaitable[None]] | None = None
    """Give up leadership (``DELETE /v2/leader``); None where there is no election."""
    allowances: Allowances = field(default_factory=Allowances)
    """What the operator allows beyond the defaults (host paths, privileged containers)."""
    auth: AuthService | None = None
    """Identities and tokens; None while authentication is off (the default)."""
    audit: AuditLog | None = None
    ca: CertificateAuthority | None = None
    """The cluster's CA, which signs agents' certificates (with TLS on)."""
    agent_tls: ssl.SSLContext | None = None
    """How the master checks agents' log servers (None: plain HTTP)."""
    secrets: SecretStore | None = None
    """The cluster's secrets; None: this master has no secrets key (secrets are off)."""

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.control.state)

    def use(self, control: Control) -> None:
        """Serve from ``control`` from now on (a new term of leadership, or a follower's
        idle one): its state, fresh caches."""
        self.control = control
        self.renderer = Renderer(control.state)

    def led_by(self, leader: str | None, leading: bool) -> None:
        """Note who leads (``host:port``, None: nobody) and whether it is this master."""
        self.leading = leading
        self.info = replace(self.info, leader=leader, elected=leading)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.pallet
    return ctx
