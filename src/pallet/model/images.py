"""Container image references (``registry/repo:tag@digest``) parsed as Docker does; pure.

The grammar is Docker's (``distribution/reference``): a name of lower-case path
components, optionally after a registry (a first component with a ``.`` or a ``:``, or
``localhost``), then an optional ``:tag`` and an optional ``@algorithm:hex`` digest.
A name without a registry is on Docker Hub (``docker.io``), a one-component Hub name is
under ``library/``, and a reference with neither tag nor digest means ``:latest``.
The API uses this to refuse a reference that does not parse (422); the agent to pull.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pallet.model.errors import ValidationError

__all__ = ["DEFAULT_REGISTRY", "ImageReference", "parse_image"]

DEFAULT_REGISTRY = "docker.io"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed reference; ``str()`` is its canonical form (registry always written)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def on_loopback(self) -> bool:
        """A registry on this machine (plain HTTP allowed, as Docker allows 127.0.0.0/8)."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else ""
        return host == "localhost" or host.startswith("127.") or self.registry.startswith("[::1]")


def parse_image(text: str, field: str = "/container/docker/image") -> ImageReference:
    """``text`` as an ``ImageReference``; ``ValidationError`` naming ``field`` if it does
    not parse."""

    def bad(why: str) -> ValidationError:
        return ValidationError(field, f"invalid image reference {text!r}: {why}")

    if not isinstance(text, str) or not text or text != text.strip():
        raise bad("it is empty or has surrounding spaces")
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise bad("the digest must read algorithm:hex, e.g. sha256:<64 hex digits>")
    name, tag = rest, None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise bad(f"tag {tag!r} is not 1-128 of letters, digits, '_', '.', '-'")
    if not name:
        raise bad("it has no name")
    if len(name) > _MAX_NAME:
        raise bad(f"the name is longer than {_MAX_NAME} characters")
    parts = name.split("/")
    registry = DEFAULT_REGISTRY
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.fullmatch(first):
            raise bad(f"registry {first!r} is not a host name with an optional port")
        registry, parts = first, parts[1:]
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            raise bad(
                f"{part!r}: a name is lower-case letters and digits, separated by '.', '_', "
                "'__' or '-'"
            )
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        parts = ["library", *parts]
    if tag is None and not digest:
        tag = "latest"
    return ImageReference(registry, "/".join(parts), tag, digest or None)
