"""Reading an ``etcd://`` store URL into the members and options it names; pure.

    etcd://127.0.0.1:2379                         one member (the port defaults to 2379)
    etcd://h1:2379,h2:2379,h3:2379                several members, tried in turn on failure
    etcd://[::1]:2379?cluster_id=14841639068965178418&timeout=5&history=10000

``cluster_id`` (decimal as etcd's answers carry it, or 0x-hex as ``etcdctl`` prints it) pins the
cluster: a member of any other cluster is refused. ``timeout`` is how many seconds one call
keeps trying the members before it fails (default 10). ``history`` is as for every store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from pallet.store.errors import InvalidArgument

__all__ = ["DEFAULT_PORT", "DEFAULT_TIMEOUT", "EtcdUrl", "parse_etcd_url"]

DEFAULT_PORT = 2379
DEFAULT_TIMEOUT = 10.0
"""Seconds one store call keeps trying etcd's members before it raises ``StoreUnavailable``."""

_USAGE = "use etcd://host:2379[,host2:2379...][?cluster_id=ID&timeout=S&history=N]"
_HOSTNAME = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_IPV6 = re.compile(r"^[0-9a-f:.]+$")


@dataclass(frozen=True, slots=True)
class EtcdUrl:
    """The members (``host:port``, as written once normalised), in the order given."""

    members: tuple[str, ...]
    cluster_id: int | None
    timeout: float
    options: tuple[tuple[str, str], ...]
    """The options this module does not read (``history``), for the caller to check."""

    def endpoints(self) -> tuple[str, ...]:
        return tuple(f"http://{m}" for m in self.members)


def parse_etcd_url(url: str) -> EtcdUrl:
    """``url`` read, or ``InvalidArgument("url", ...)`` saying what is wrong with it."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise InvalidArgument("url", f"{url!r} does not parse ({e}); {_USAGE}") from None
    if parts.scheme != "etcd":
        raise InvalidArgument("url", f"{url!r} is not an etcd:// URL; {_USAGE}")
    if parts.fragment:
        raise InvalidArgument("url", f"{url!r} has a #fragment; {_USAGE}")
    if parts.path not in ("", "/"):
        raise InvalidArgument(
            "url",
            f"{url!r} has a path {parts.path!r}; an etcd store is the whole keyspace: {_USAGE}",
        )
    if not parts.netloc:
        raise InvalidArgument("url", f"{url!r} names no etcd member; {_USAGE}")
    members: list[str] = []
    for text in parts.netloc.split(","):
        member = _member(text.strip(), url)
        if member in members:
            raise InvalidArgument("url", f"{url!r} lists member {member} twice")
        members.append(member)
    cluster_id: int | None = None
    timeout = DEFAULT_TIMEOUT
    others: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "cluster_id":
            cluster_id = _cluster_id(value, url)
        elif name == "timeout":
            timeout = _timeout(value, url)
        else:
            others.append((name, value))
    return EtcdUrl(tuple(members), cluster_id, timeout, tuple(others))


def _member(text: str, url: str) -> str:
    if "@" in text:
        raise InvalidArgument("url", f"{url!r}: credentials in the URL are not supported")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not _IPV6.match(host.lower()):
            raise InvalidArgument("url", f"{url!r}: {text!r} is not a valid [IPv6]:port member")
        host = f"[{host.lower()}]"
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, _, port_text_ = text.partition(":")
        host = host.lower()
        port_text = port_text_
        if not _HOSTNAME.match(host):
            raise InvalidArgument("url", f"{url!r}: {text!r} is not a valid host[:port] member")
    if port_text is None:
        raise InvalidArgument("url", f"{url!r}: {text!r} is not a valid host[:port] member")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise InvalidArgument("url", f"{url!r}: member {text!r} has a bad port")
        port = int(port_text)
    return f"{host}:{port}"


def _cluster_id(value: str, url: str) -> int:
    try:
        cluster = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError:
        cluster = -1
    if not 0 < cluster < 2**64:
        raise InvalidArgument(
            "url", f"{url!r}: cluster_id must be etcd's cluster id (decimal, or 0x-hex)"
        )
    return cluster


def _timeout(value: str, url: str) -> float:
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 3600:
        raise InvalidArgument("url", f"{url!r}: timeout must be seconds, > 0 and <= 3600")
    return timeout
