"""An image as the agent keeps it: its manifest's layers and its config (Entrypoint, Cmd,
Env, WorkingDir, User), read from OCI JSON documents; pure.

skopeo writes every image it pulls as OCI (a Docker schema 2 image is converted on the
way; its layers and their digests stay the same), so only OCI shapes are read here, and
the layer media types that can reach us: plain tar, gzip and zstd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pallet.model import PalletError

__all__ = ["COMPRESSIONS", "Image", "ImageConfig", "ImageError", "Layer", "read_image"]

_LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}
COMPRESSIONS = frozenset(_LAYER_TYPES.values())


class ImageError(PalletError):
    """An image could not be pulled, read or unpacked; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """What an image asks to run (Docker's ``config`` of the image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    def env_map(self) -> dict[str, str]:
        out = {}
        for item in self.env:
            name, sep, value = item.partition("=")
            if name and sep:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer: its compressed blob's digest and size, how it is compressed
    (``""``, ``"gzip"``, ``"zstd"``), and the digest of its uncompressed tar (diff id)."""

    digest: str
    size: int
    compression: str
    diff_id: str


@dataclass(frozen=True, slots=True)
class Image:
    """A pulled image: the reference it was pulled by, its manifest and config digests,
    its layers bottom first, its config, and when it was pulled (epoch seconds)."""

    reference: str
    manifest_digest: str
    config_digest: str
    layers: tuple[Layer, ...]
    config: ImageConfig
    pulled_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
            "layers": [
                {
                    "digest": x.digest,
                    "size": x.size,
                    "compression": x.compression,
                    "diff_id": x.diff_id,
                }
                for x in self.layers
            ],
            "config": {
                "entrypoint": list(self.config.entrypoint),
                "cmd": list(self.config.cmd),
                "env": list(self.config.env),
                "working_dir": self.config.working_dir,
                "user": self.config.user,
            },
            "pulled_at": self.pulled_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Image:
        c = doc["config"]
        return cls(
            reference=str(doc["reference"]),
            manifest_digest=str(doc["manifest_digest"]),
            config_digest=str(doc["config_digest"]),
            layers=tuple(
                Layer(str(x["digest"]), int(x["size"]), str(x["compression"]), str(x["diff_id"]))
                for x in doc["layers"]
            ),
            config=ImageConfig(
                tuple(c["entrypoint"]),
                tuple(c["cmd"]),
                tuple(c["env"]),
                str(c["working_dir"]),
                str(c["user"]),
            ),
            pulled_at=float(doc.get("pulled_at", 0.0)),
        )


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"the image config's {what} is not a list of strings")
    return tuple(value)


def read_image(
    reference: str,
    manifest_digest: str,
    manifest: Mapping[str, Any],
    config_digest: str,
    config: Mapping[str, Any],
    pulled_at: float = 0.0,
) -> Image:
    """The ``Image`` an OCI manifest and image config describe; ``ImageError`` if they
    are not what an image's should be (for instance, layers and diff ids disagree)."""
    layers_doc = manifest.get("layers")
    if not isinstance(layers_doc, list):
        raise ImageError(f"{reference}: the manifest lists no layers")
    rootfs = config.get("rootfs") or {}
    diff_ids = _strings(rootfs.get("diff_ids"), "rootfs.diff_ids")
    if len(diff_ids) != len(layers_doc):
        raise ImageError(
            f"{reference}: the manifest has {len(layers_doc)} layers but the config "
            f"{len(diff_ids)} diff ids"
        )
    layers = []
    for doc, diff_id in zip(layers_doc, diff_ids, strict=True):
        media = doc.get("mediaType", "")
        if media not in _LAYER_TYPES:
            raise ImageError(f"{reference}: layer media type {media!r} is not supported")
        layers.append(
            Layer(str(doc["digest"]), int(doc.get("size", 0)), _LAYER_TYPES[media], diff_id)
        )
    run = config.get("config") or {}
    image_config = ImageConfig(
        entrypoint=_strings(run.get("Entrypoint"), "Entrypoint"),
        cmd=_strings(run.get("Cmd"), "Cmd"),
        env=_strings(run.get("Env"), "Env"),
        working_dir=str(run.get("WorkingDir") or ""),
        user=str(run.get("User") or ""),
    )
    return Image(reference, manifest_digest, config_digest, tuple(layers), image_config, pulled_at)
