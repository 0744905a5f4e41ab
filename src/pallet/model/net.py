"""Addresses; pure."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pallet.model.errors import ValidationError

__all__ = ["agent_address", "agent_subnet", "is_ip", "is_loopback", "network_name_problem"]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine (127.0.0.0/8, ::1,
    localhost); a name other than localhost counts as reachable from elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def network_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a container network, or None. Marathon's ``strings.Name``:
    1-63 lower-case letters, digits and '-', starting and ending with a letter or digit
    (checked without a backtracking regex)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 63:
        return "must be 1-63 characters"
    ok = name[0] != "-" and name[-1] != "-"
    if not (ok and all(c.isdigit() or "a" <= c <= "z" or c == "-" for c in name)):
        return "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    return None


def agent_subnet(subnet: str, index: int, agents: int) -> str:
    """Agent ``index``'s share of a network's ``subnet`` among ``agents`` on one host: the
    index-th /24 (DC/OS's overlay gave each agent a /24 of 9.0.0.0/8), or the index-th
    of ``agents`` equal parts when the subnet has fewer /24s. ValueError when a part
    would be smaller than a /30."""
    net = ipaddress.ip_network(subnet)
    bits = max(agents - 1, 0).bit_length()
    prefix = max(24, net.prefixlen + bits) if net.version == 4 else net.prefixlen + bits
    if prefix > 30:
        raise ValueError(f"{subnet} is too small for {agents} agents (a /30 each at least)")
    parts = net.subnets(new_prefix=prefix)
    for i, part in enumerate(parts):
        if i == index:
            return str(part)
    raise ValueError(f"{subnet} has no part {index}")  # pragma: no cover (bits suffice)


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address (not a name)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def agent_address(address: str, peer: str | None) -> str:
    """The base URL (``scheme://ip:port``) the master may call an agent at, from what the
    agent registered and the address it connected from (``peer``; None when unknown).

    Only a scheme, an IP literal and a port are kept, so the master builds every URL
    itself and never fetches a path, host or query an agent chose (server-side request
    forgery). The host must be the peer's own address, or loopback when the peer is on
    this machine; an unspecified host (``0.0.0.0``, ``::``) means the peer's address.
    Raises ``ValidationError`` on ``/address`` saying what is wrong."""
    try:
        url = urlsplit(address)
        port = url.port
    except ValueError:
        raise ValidationError("/address", f"{address!r} is not a URL") from None
    if url.scheme not in ("http", "https"):
        raise ValidationError("/address", "must start with http:// or https://")
    if url.username is not None or url.password is not None:
        raise ValidationError("/address", "must not carry a user or password")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValidationError("/address", "must be scheme://host:port with no path or query")
    if port is None or port == 0:
        raise ValidationError("/address", "must name the log server's port")
    host = url.hostname or ""
    ip = ipaddress.ip_address("127.0.0.1") if host == "localhost" else _ip(host)
    if ip is None:
        raise ValidationError("/address", f"host {host!r} must be an IP address")
    seen = _ip(peer) if peer is not None else None
    if seen is not None and ip.is_unspecified:
        ip = seen
    elif seen is not None and ip != seen and not (ip.is_loopback and seen.is_loopback):
        raise ValidationError(
            "/address",
            f"host {ip} is not the address the agent connected from ({seen}); an agent "
            "registers its own address",
        )
    elif ip.is_unspecified or ip.is_multicast:
        raise ValidationError("/address", f"host {ip} cannot be connected to")
    netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return f"{url.scheme}://{netloc}"
