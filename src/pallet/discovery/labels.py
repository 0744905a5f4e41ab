"""Marathon-LB's ``HAPROXY_*`` labels and DC/OS's ``VIP_<n>`` port labels: checked, and
read into what a load balancer serves; pure.

Marathon-LB (``HAPROXY_{n}_*`` describe the app's port ``n``): ``HAPROXY_GROUP`` (which
LBs serve the app, comma-separated; an LB of group ``*`` serves all), ``_VHOST``
(comma-separated host names routed on the HTTP port), ``_PATH`` (a path prefix),
``_PORT`` (the bind port, else the servicePort), ``_MODE`` (``http``/``tcp``; ``http``
when a vhost is set), ``_BALANCE``, ``_STICKY``, ``_REDIRECT_TO_HTTPS``, ``_SSL_CERT``,
``_BIND_ADDR``, ``_ENABLED``. Marathon-LB's template labels splice raw HAProxy text into
the config; Pallet refuses them (and every ``HAPROXY_`` label it does not honour) with a
422 rather than ignore them.

VIPs: ``VIP_<n>: "/web:80"`` on ``portDefinitions[i].labels`` (or a port mapping's)
names the VIP ``web.marathon.l4lb.thisdcos.directory:80``; ``"1.2.3.4:80"`` is an
address VIP. Named VIPs get a stable address from their name (``vip_address``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pallet.discovery.names import VIP_DOMAIN
from pallet.discovery.services import Endpoint, PortInfo, Service

__all__ = [
    "BALANCE_ALGORITHMS",
    "LabelError",
    "LbService",
    "VipTarget",
    "label_violations",
    "lb_services",
    "vip_address",
    "vip_targets",
]

BALANCE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "random")
_PER_PORT = {
    "VHOST",
    "PATH",
    "PORT",
    "MODE",
    "BALANCE",
    "STICKY",
    "REDIRECT_TO_HTTPS",
    "SSL_CERT",
    "BIND_ADDR",
    "ENABLED",
}
_APP_LEVEL = {"HAPROXY_GROUP"}
_PORT_LABEL = re.compile(r"^HAPROXY_(\d+)_([A-Z_]+)$")
_HOSTNAME = re.compile(
    r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_GROUP = re.compile(r"^(\*|[A-Za-z0-9_.-]+)$")
_VIP_LABEL = re.compile(r"^VIP_\d+$")
_VIP_NAME = re.compile(
    r"^/?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?(/[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)*$"
)
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
DEFAULT_GROUP = "external"
VIP_NETWORK = ipaddress.ip_network("127.11.0.0/16")
"""Where named VIPs get their addresses on loopback (DC/OS uses 11.0.0.0/8 on a dummy
interface of every agent)."""


@dataclass(frozen=True, slots=True)
class LabelError:
    """One bad label: its path in the app definition and why."""

    path: str
    message: str


def _flag(value: str) -> bool | None:
    low = value.strip().lower()
    return True if low in _TRUE else False if low in _FALSE else None


def _port_label_error(key: str, value: str, port_count: int) -> str | None:
    m = _PORT_LABEL.match(key)
    if m is None:
        return f"unsupported Marathon-LB label {key}: Pallet honours HAPROXY_GROUP and HAPROXY_{{n}}_{{{','.join(sorted(_PER_PORT))}}}"
    index, name = int(m.group(1)), m.group(2)
    if name not in _PER_PORT:
        return (
            f"unsupported Marathon-LB label {key}: Pallet does not splice HAProxy templates; "
            f"it honours HAPROXY_{{n}}_{{{','.join(sorted(_PER_PORT))}}}"
        )
    if index >= port_count:
        return f"the app has {port_count} port(s): there is no port {index}"
    if name == "VHOST":
        hosts = value.split(",")
        bad = [h for h in hosts if not _HOSTNAME.match(h)]
        if bad or not value:
            return f"{value!r} is not a comma-separated list of host names (no spaces)"
    elif name == "PATH":
        if not _PATH.match(value):
            return f"{value!r} is not a URL path: it starts with / and has no spaces"
    elif name == "PORT":
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            return f"{value!r} is not a port between 1 and 65535"
    elif name == "MODE":
        if value not in ("http", "tcp"):
            return f"{value!r}: the mode is http or tcp"
    elif name == "BALANCE":
        if value not in BALANCE_ALGORITHMS:
            return f"{value!r}: the balance is one of {', '.join(BALANCE_ALGORITHMS)}"
    elif name in ("STICKY", "REDIRECT_TO_HTTPS", "ENABLED"):
        if _flag(value) is None:
            return f"{value!r} is not true or false"
    elif name == "SSL_CERT":
        if not value.startswith("/") or any(c.isspace() for c in value):
            return f"{value!r} is not an absolute path to a PEM file"
    elif name == "BIND_ADDR":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"{value!r} is not an IP address"
    return None


def _vip_error(value: str) -> str | None:
    name, sep, port = value.rpartition(":")
    if not sep or not name:
        return f"{value!r}: a VIP is /name:port or address:port (the port is missing)"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"{value!r}: {port!r} is not a port between 1 and 65535"
    try:
        ipaddress.IPv4Address(name)
        return None
    except ValueError:
        pass
    if not _VIP_NAME.match(name):
        return f"{value!r}: {name!r} is neither an IPv4 address nor a /name"
    return None


def label_violations(
    app_labels: Mapping[str, str],
    ports: Iterable[tuple[str, Mapping[str, str]]],
) -> list[LabelError]:
    """Every bad Marathon-LB app label and VIP port label. ``ports``: each port's path
    prefix (``/portDefinitions(0)``) and labels."""
    port_list = list(ports)
    out: list[LabelError] = []
    for key, value in sorted(app_labels.items()):
        if not key.startswith("HAPROXY_"):
            continue
        path = f"/labels/{key}"
        if key in _APP_LEVEL:
            groups = value.split(",")
            if not value or not all(_GROUP.match(g) for g in groups):
                out.append(LabelError(path, f"{value!r} is not a comma-separated list of groups"))
            continue
        problem = _port_label_error(key, value, len(port_list))
        if problem:
            out.append(LabelError(path, problem))
    for prefix, labels in port_list:
        for key, value in sorted(labels.items()):
            if _VIP_LABEL.match(key):
                problem = _vip_error(value)
                if problem:
                    out.append(LabelError(f"{prefix}/labels/{key}", problem))
    return out


# ------------------------------------------------------------------ edge LB


@dataclass(frozen=True, slots=True)
class LbService:
    """One app port as Marathon-LB serves it."""

    app_id: str
    index: int
    port: int
    """The bind port (``HAPROXY_{n}_PORT``, else the servicePort; 0: vhost routing only)."""
    groups: tuple[str, ...]
    mode: str
    vhosts: tuple[str, ...] = ()
    path: str = ""
    balance: str = "roundrobin"
    sticky: bool = False
    redirect_to_https: bool = False
    ssl_cert: str = ""
    bind_addr: str = ""
    backends: tuple[tuple[str, str, int], ...] = ()
    """(task id, address, host port) of each ready task."""

    @property
    def name(self) -> str:
        """The backend's name, Marathon-LB's: the app id's path joined by ``_``, then the port."""
        return "_".join(p for p in self.app_id.split("/") if p) + f"_{self.port}"


def _groups(labels: Mapping[str, str]) -> tuple[str, ...]:
    raw = labels.get("HAPROXY_GROUP")
    return tuple(g for g in raw.split(",") if g) if raw else ()


def _serves(lb_groups: Iterable[str], app_groups: tuple[str, ...]) -> bool:
    wanted = set(lb_groups)
    return "*" in wanted or bool(wanted & set(app_groups))


def _backends(endpoints: Iterable[Endpoint], index: int) -> tuple[tuple[str, str, int], ...]:
    return tuple(
        (e.task_id, e.ip, e.ports[index]) for e in endpoints if e.ready and index < len(e.ports)
    )


def lb_services(services: Iterable[Service], lb_groups: Iterable[str]) -> list[LbService]:
    """What an LB of ``lb_groups`` serves: each port of each app in one of its groups
    (apps without ``HAPROXY_GROUP`` only on an LB of group ``*``), with its ready tasks."""
    groups = tuple(lb_groups)
    out = []
    for s in services:
        app_groups = _groups(s.labels)
        if not _serves(groups, app_groups):
            continue
        for p in s.ports:
            if p.protocol != "tcp" and "tcp" not in p.protocol.split(","):
                continue
            out.append(_lb_service(s, p, app_groups))
    return [x for x in out if x.port or x.vhosts]


def _lb_service(s: Service, p: PortInfo, groups: tuple[str, ...]) -> LbService:
    def label(name: str) -> str:
        return s.labels.get(f"HAPROXY_{p.index}_{name}", "")

    if _flag(label("ENABLED") or "true") is False:
        return LbService(s.app_id, p.index, 0, groups, "tcp")
    port = int(label("PORT") or p.service_port or 0)
    vhosts = tuple(h for h in label("VHOST").split(",") if h)
    mode = label("MODE") or ("http" if vhosts else "tcp")
    return LbService(
        app_id=s.app_id,
        index=p.index,
        port=port,
        groups=groups,
        mode=mode,
        vhosts=vhosts,
        path=label("PATH"),
        balance=label("BALANCE") or "roundrobin",
        sticky=_flag(label("STICKY") or "false") is True,
        redirect_to_https=_flag(label("REDIRECT_TO_HTTPS") or "false") is True,
        ssl_cert=label("SSL_CERT"),
        bind_addr=label("BIND_ADDR"),
        backends=_backends(s.endpoints, p.index),
    )


# ------------------------------------------------------------------ VIPs


@dataclass(frozen=True, slots=True)
class VipTarget:
    """One VIP: its name (empty for an address VIP), address, port and ready backends."""

    name: str
    address: str
    port: int
    backends: tuple[tuple[str, str, int], ...]
    apps: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{VIP_DOMAIN}" if self.name else ""

    @property
    def key(self) -> str:
        return f"{self.address}:{self.port}"


def vip_name(label_value: str) -> str:
    """``/prod/web`` -> ``prodweb`` (DC/OS drops the slashes of a named VIP)."""
    return label_value.replace("/", "").lower()


def vip_address(name: str, taken: set[str] | None = None) -> str:
    """A named VIP's address in ``VIP_NETWORK``, from a hash of its name (the same on
    every agent); the next free one if another name already hashed there."""
    size = VIP_NETWORK.num_addresses - 2
    slot = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % size
    for step in range(size):
        address = str(VIP_NETWORK.network_address + 1 + (slot + step) % size)
        if not taken or address not in taken:
            return address
    raise ValueError("the VIP network is full")


def vip_targets(services: Iterable[Service]) -> list[VipTarget]:
    """Every VIP the apps' port labels name, with the ready tasks behind it (several
    apps may share one VIP, as in DC/OS)."""
    found: dict[tuple[str, str, int], tuple[list[tuple[str, str, int]], list[str]]] = {}
    for s in services:
        for p in s.ports:
            for key, value in p.labels.items():
                if not _VIP_LABEL.match(key) or _vip_error(value):
                    continue
                target, _, port_text = value.rpartition(":")
                try:
                    ipaddress.IPv4Address(target)
                    name, address = "", target
                except ValueError:
                    name, address = vip_name(target), ""
                backends, apps = found.setdefault((name, address, int(port_text)), ([], []))
                backends.extend(_backends(s.endpoints, p.index))
                apps.append(s.app_id)
    taken = {address for (_, address, _) in found if address}
    named: dict[str, str] = {}
    out = []
    for (name, address, port), (backends, apps) in sorted(found.items()):
        if name:
            if name not in named:
                named[name] = vip_address(name, taken)
                taken.add(named[name])
            address = named[name]
        out.append(
            VipTarget(name, address, port, tuple(sorted(set(backends))), tuple(sorted(set(apps))))
        )
    return out
