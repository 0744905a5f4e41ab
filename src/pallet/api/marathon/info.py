"""``GET /v2/info`` and ``GET /v2/leader``, filled with Pallet's own settings; pure.

Shape from ``info.raml`` (keys are snake_case there, except ``frameworkId``). The
Python client builds ``http_config``, ``marathon_config`` and ``zookeeper_config``
unconditionally, so all three are always sent. Pallet has no ZooKeeper and no Mesos
master: ``zookeeper_config.zk`` is the URL of Pallet's own store and its timeouts
are the store's; Mesos-only settings are left out rather than invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field

from pallet.api.marathon.jsontypes import MarathonModel

__all__ = [
    "HttpConfig",
    "InfoSettings",
    "LeaderInfo",
    "MarathonConfig",
    "MarathonInfo",
    "ZooKeeperConfig",
    "info_json",
    "leader_json",
]


@dataclass(frozen=True, slots=True)
class InfoSettings:
    """What the master knows about itself; the composition root fills it from config."""

    version: str
    leader: str | None
    elected: bool
    cluster_id: str
    hostname: str
    http_port: int
    store_url: str
    https_port: int = 0
    name: str = "pallet"
    buildref: str = "unknown"
    ha: bool = False
    default_role: str = "*"
    service_port_min: int = 10000
    service_port_max: int = 20000
    webui_url: str | None = None
    store_timeout_ms: int = 10000
    max_versions: int = 50
    task_lost_expunge_initial_delay_ms: int = 300000
    task_lost_expunge_interval_ms: int = 30000


class _SnakeModel(MarathonModel):
    model_config = ConfigDict(
        alias_generator=None, populate_by_name=True, extra="ignore", frozen=True
    )


class HttpConfig(_SnakeModel):
    http_port: int = Field(ge=0)
    https_port: int = Field(ge=0)


class MarathonConfig(_SnakeModel):
    checkpoint: bool
    executor: str
    features: list[str]
    framework_name: str
    ha: bool
    hostname: str
    local_port_min: int
    local_port_max: int
    mesos_role: str
    webui_url: str | None = None
    task_lost_expunge_initial_delay: int
    task_lost_expunge_interval: int


class ZooKeeperConfig(_SnakeModel):
    zk: str
    zk_connection_timeout: int
    zk_max_versions: int
    zk_session_timeout: int
    zk_timeout: int


class MarathonInfo(_SnakeModel):
    name: str
    version: str
    buildref: str
    elected: bool
    leader: str | None = None
    framework_id: str | None = Field(default=None, alias="frameworkId")
    marathon_config: MarathonConfig
    zookeeper_config: ZooKeeperConfig
    http_config: HttpConfig


class LeaderInfo(_SnakeModel):
    leader: str


def info_json(settings: InfoSettings) -> dict[str, Any]:
    """The body of ``GET /v2/info``."""
    s = settings
    return MarathonInfo(
        name=s.name,
        version=s.version,
        buildref=s.buildref,
        elected=s.elected,
        leader=s.leader,
        framework_id=s.cluster_id,
        marathon_config=MarathonConfig(
            # Agents checkpoint their tasks to disk so they survive an agent restart.
            checkpoint=True,
            executor="//cmd",
            features=[],
            framework_name=s.name,
            ha=s.ha,
            hostname=s.hostname,
            local_port_min=s.service_port_min,
            local_port_max=s.service_port_max,
            mesos_role=s.default_role,
            webui_url=s.webui_url,
            task_lost_expunge_initial_delay=s.task_lost_expunge_initial_delay_ms,
            task_lost_expunge_interval=s.task_lost_expunge_interval_ms,
        ),
        zookeeper_config=ZooKeeperConfig(
            zk=s.store_url,
            zk_connection_timeout=s.store_timeout_ms,
            zk_max_versions=s.max_versions,
            zk_session_timeout=s.store_timeout_ms,
            zk_timeout=s.store_timeout_ms,
        ),
        http_config=HttpConfig(http_port=s.http_port, https_port=s.https_port),
    ).to_json()


def leader_json(leader: str) -> dict[str, Any]:
    """The body of ``GET /v2/leader``: ``{"leader": "host:port"}``."""
    return LeaderInfo(leader=leader).to_json()
