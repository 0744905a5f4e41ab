"""What every route needs: the master's ``Control``, the caches, the settings and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from pallet.api.convert import SpecCache
from pallet.api.marathon import InfoSettings
from pallet.api.render import Renderer
from pallet.control import Control

__all__ = ["ApiContext", "context"]


@dataclass(slots=True)
class ApiContext:
    control: Control
    info: InfoSettings
    specs: SpecCache = field(default_factory=SpecCache)
    renderer: Renderer = field(init=False)
    log_timeout: float = 10.0
    discovery: dict[str, Any] = field(default_factory=dict)
    """Soft state of the DNS server and load balancers (``routes_discovery``)."""

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.control.state, self.specs)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.pallet
    return ctx
