"""HAProxy configurations from what discovery found: the edge LB (Marathon-LB's layout) and
an agent's VIP proxy (TCP); pure text.

Edge, as Marathon-LB lays it out: ``marathon_http_in`` on the HTTP port routes by vhost
(and path prefix), ``marathon_https_in`` does the same with TLS where certificates are
given, one frontend per service port, one backend per app port named
``<app path joined by _>_<port>``, and ``stats`` serving ``/haproxy?stats`` and
``/_haproxy_health_check``. Every backend retries a failed connection or an empty
answer on another server (``retry-on``, ``option redispatch``), so a task killed during
a rolling upgrade costs its client nothing; old workers finish their requests after a
reload (``hard-stop-after`` bounds that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pallet.discovery.labels import LbService, VipTarget

__all__ = [
    "EdgeSettings",
    "edge_config",
    "edge_servers",
    "split_servers",
    "vip_config",
    "vip_servers",
]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _safe(text: str) -> str:
    return _SAFE.sub("_", text)


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """Where the edge LB listens and keeps its sockets."""

    bind: str
    state_dir: str
    http_port: int = 80
    https_port: int = 443
    stats_port: int = 9090
    ssl_certs: tuple[str, ...] = ()
    """Certificates for the HTTPS frontend besides the apps' ``HAPROXY_{n}_SSL_CERT``."""
    version: int = 0


def _global(state_dir: str, description: str) -> list[str]:
    return [
        "global",
        "  master-worker",
        f"  pidfile {state_dir}/haproxy.pid",
        f"  stats socket {state_dir}/admin.sock mode 600 level admin expose-fd listeners",
        f"  description {description}",
        "  maxconn 4096",
        "  hard-stop-after 60s",
        "  tune.ssl.default-dh-param 2048",
        "",
        "defaults",
        "  timeout connect 2s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  timeout http-request 15s",
        "  timeout http-keep-alive 5s",
        "  timeout queue 10s",
        "  retries 3",
        "  option redispatch 1",
        "  option dontlognull",
        "",
    ]


def _servers(backends: Sequence[tuple[str, str, int]], sticky: bool) -> list[str]:
    out = []
    for task_id, address, port in backends:
        name = _safe(task_id)
        cookie = f" cookie {name}" if sticky else ""
        out.append(f"  server {name} {address}:{port} check inter 2s fall 2 rise 1{cookie}")
    return out


def _backend(s: LbService) -> list[str]:
    lines = [f"backend {s.name}", f"  mode {s.mode}", f"  balance {s.balance}"]
    if s.mode == "http":
        lines += [
            "  option forwardfor",
            "  retry-on conn-failure empty-response response-timeout",
            "  http-request set-header X-Forwarded-Port %[dst_port]",
            "  http-request add-header X-Forwarded-Proto https if { ssl_fc }",
        ]
        if s.sticky:
            lines.append("  cookie mesosphere_server_id insert indirect nocache")
    return [*lines, *_servers(s.backends, s.sticky and s.mode == "http"), ""]


def _routes(services: Sequence[LbService], tls: bool) -> list[str]:
    """ACLs and ``use_backend`` lines of the shared HTTP(S) frontend; longest paths first
    so ``/api/v2`` wins over ``/api``."""
    lines: list[str] = []
    ordered = sorted(
        (s for s in services if s.vhosts and s.mode == "http"),
        key=lambda s: (-len(s.path), s.name),
    )
    for s in ordered:
        hosts = " ".join(h.lower() for h in s.vhosts)
        acl = f"host_{s.name}"
        lines.append(f"  acl {acl} hdr(host),field(1,:),lower -m str {hosts}")
        condition = acl
        if s.path:
            lines.append(f"  acl path_{s.name} path_beg {s.path}")
            condition += f" path_{s.name}"
        if s.redirect_to_https and not tls:
            lines.append(f"  redirect scheme https code 301 if {condition} !{{ ssl_fc }}")
        lines.append(f"  use_backend {s.name} if {condition}")
    return lines


def edge_config(services: Sequence[LbService], settings: EdgeSettings) -> str:
    """The whole ``haproxy.cfg`` of an edge LB."""
    lines = _global(settings.state_dir, f"pallet-edge-v{settings.version}")
    lines += [
        "listen stats",
        f"  bind {settings.bind}:{settings.stats_port}",
        "  mode http",
        "  stats enable",
        "  stats uri /haproxy?stats",
        "  monitor-uri /_haproxy_health_check",
        "",
    ]
    vhosted = [s for s in services if s.vhosts]
    lines += [
        "frontend marathon_http_in",
        f"  bind {settings.bind}:{settings.http_port}",
        "  mode http",
        *_routes(vhosted, tls=False),
        "",
    ]
    certs = list(
        dict.fromkeys([*settings.ssl_certs, *(s.ssl_cert for s in services if s.ssl_cert)])
    )
    if certs:
        crts = " ".join(f"crt {c}" for c in certs)
        lines += [
            "frontend marathon_https_in",
            f"  bind {settings.bind}:{settings.https_port} ssl {crts}",
            "  mode http",
            *_routes(vhosted, tls=True),
            "",
        ]
    for s in services:
        if not s.port:
            continue
        lines += [
            f"frontend {s.name}",
            f"  bind {s.bind_addr or settings.bind}:{s.port}",
            f"  mode {s.mode}",
            f"  use_backend {s.name}",
            "",
        ]
    seen: set[str] = set()
    for s in services:
        if s.name not in seen:
            seen.add(s.name)
            lines += _backend(s)
    return "\n".join(lines) + "\n"


def vip_config(vips: Sequence[VipTarget], state_dir: str, version: int = 0) -> str:
    """An agent's VIP proxy: one TCP frontend per VIP address and port."""
    lines = _global(state_dir, f"pallet-vip-v{version}")
    for v in vips:
        name = _vip_backend(v)
        lines += [
            f"frontend {name}",
            f"  bind {v.address}:{v.port}",
            "  mode tcp",
            f"  default_backend {name}",
            "",
            f"backend {name}",
            "  mode tcp",
            "  balance roundrobin",
            *_servers(v.backends, sticky=False),
            "",
        ]
    return "\n".join(lines) + "\n"


def _vip_backend(v: VipTarget) -> str:
    return f"vip_{_safe(v.address)}_{v.port}"


def edge_servers(services: Sequence[LbService]) -> set[tuple[str, str]]:
    """(backend, server) of every server ``edge_config`` writes."""
    return {(s.name, _safe(task)) for s in services for task, _, _ in s.backends}


def vip_servers(vips: Sequence[VipTarget]) -> set[tuple[str, str]]:
    """(backend, server) of every server ``vip_config`` writes."""
    return {(_vip_backend(v), _safe(task)) for v in vips for task, _, _ in v.backends}


def split_servers(text: str) -> tuple[str, dict[tuple[str, str], str]]:
    """A configuration without its server lines (nor its version ``description``), and
    each (backend, server) with the rest of its line: two configurations with the same
    first part differ only in servers, which the runtime API can change without a reload."""
    kept: list[str] = []
    servers: dict[tuple[str, str], str] = {}
    backend = ""
    for line in text.splitlines():
        if line.startswith(("backend ", "frontend ", "listen ", "global", "defaults")):
            backend = line.split()[1] if line.startswith("backend ") else ""
        stripped = line.strip()
        if backend and stripped.startswith("server "):
            _, name, rest = stripped.split(" ", 2)
            servers[(backend, name)] = rest
        elif not stripped.startswith("description "):
            kept.append(line)
    return "\n".join(kept), servers
