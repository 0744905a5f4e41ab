"""Before a daemon announces anything: can it listen where it was told to, and if not, who
holds the address; does I/O (binds a socket for a moment, reads the process table).

    pallet master --port 8080   ->  error: --port: 127.0.0.1:8080 is in use by pid 4242
                                    (python3 -m pallet.cli.master ...); stop it or pick
                                    another port with --port
"""

from __future__ import annotations

import contextlib
import errno
import socket

from pallet.model.errors import ValidationError

__all__ = ["AddressInUse", "check_listen", "holder_of", "valid_port"]


class AddressInUse(ValidationError):
    """An address a daemon must listen on is taken (or may not be used)."""


def valid_port(port: int, flag: str, allow_any: bool = False) -> None:
    """1-65535 (0 too when ``allow_any``: the kernel picks one)."""
    low = 0 if allow_any else 1
    if not low <= port <= 65535:
        choice = "0 (any free port) or " if allow_any else ""
        raise ValidationError(flag, f"{port} is not a port; give {choice}1-65535")


def holder_of(port: int) -> str | None:
    """The process listening on TCP ``port`` (any address), as ``pid N (command)``, when
    this user may see it."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            with contextlib.suppress(psutil.Error):
                command = " ".join(psutil.Process(c.pid).cmdline())[:120]
                return f"pid {c.pid} ({command})"
            return f"pid {c.pid}"
    return None


def check_listen(host: str, port: int, flag: str, what: str) -> None:
    """Raise ``AddressInUse`` naming ``flag`` unless ``what`` can listen on host:port.
    Port 0 (any) always can."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressInUse(flag, f"cannot resolve {host!r} for {what}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            where = f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                holder = holder_of(port)
                by = f" by {holder}" if holder else ""
                raise AddressInUse(
                    flag,
                    f"{where} is in use{by}; stop it or give {what} another port with {flag}",
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise AddressInUse(
                    flag, f"{host} is not an address of this machine, so {what} cannot listen there"
                ) from None
            if exc.errno == errno.EACCES:
                raise AddressInUse(
                    flag, f"{where}: only root may listen on ports below 1024; pick another"
                ) from None
            raise AddressInUse(flag, f"cannot listen on {where}: {exc.strerror}") from None
