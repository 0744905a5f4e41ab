"""What a task runs in besides its command: the URIs fetched into its sandbox, its
container (image, volumes, network and ports), its local persistent volumes, as the master
sends them in a ``TaskSpec``; pure. Each checks its fields and reads its JSON like the other messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pallet.model.errors import ValidationError
from pallet.model.images import ImageReference, parse_image
from pallet.model.net import network_name_problem
from pallet.model.paths import dest_path_problem
from pallet.model.wire import fields_of as _fields
from pallet.model.wire import read_bool as _bool
from pallet.model.wire import read_int as _int
from pallet.model.wire import read_list as _list
from pallet.model.wire import read_obj as _obj
from pallet.model.wire import read_str as _str

__all__ = [
    "VOLUME_TYPES",
    "ContainerPort",
    "ContainerSpec",
    "FetchUri",
    "PersistentVolume",
    "VolumeSpec",
]

_VOLUME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._#-]{0,254}")


@dataclass(frozen=True, slots=True)
class FetchUri:
    """One URI to fetch into the sandbox before the task starts (Marathon's ``fetch``
    item, Mesos' ``CommandInfo.URI``; ``dest_path`` is ``destPath``, relative to the
    sandbox)."""

    uri: str
    extract: bool = True
    executable: bool = False
    cache: bool = False
    dest_path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri or "\x00" in self.uri:
            raise ValidationError("/fetch/uri", "a fetch URI must be a non-empty string")
        for name in ("extract", "executable", "cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"/fetch/{name}", f"{name} must be true or false")
        if self.dest_path is not None:
            problem = dest_path_problem(self.dest_path)
            if problem:
                raise ValidationError("/fetch/destPath", problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "extract": self.extract,
            "executable": self.executable,
            "cache": self.cache,
            "dest_path": self.dest_path,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> FetchUri:
        doc = _obj(raw, path, _fields(cls))
        dest = doc.get("dest_path")
        return cls(
            uri=_str(doc.get("uri"), f"{path}/uri", 1024),
            extract=_bool(doc.get("extract", True), f"{path}/extract"),
            executable=_bool(doc.get("executable", False), f"{path}/executable"),
            cache=_bool(doc.get("cache", False), f"{path}/cache"),
            dest_path=None if dest is None else _str(dest, f"{path}/dest_path", 1024),
        )


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A host directory mounted into the container (Marathon's host volume): at
    ``container_path`` (absolute, or relative to the sandbox), read-only unless ``RW``."""

    container_path: str
    host_path: str
    mode: str = "RW"

    def __post_init__(self) -> None:
        if not isinstance(self.host_path, str) or not self.host_path.startswith("/"):
            raise ValidationError("/container/volumes/hostPath", "must be an absolute path")
        if not isinstance(self.container_path, str) or not self.container_path:
            raise ValidationError("/container/volumes/containerPath", "must be a path")
        if not self.container_path.startswith("/"):
            problem = dest_path_problem(self.container_path)
            if problem:
                raise ValidationError("/container/volumes/containerPath", problem)
        if self.mode not in ("RO", "RW"):
            raise ValidationError("/container/volumes/mode", "must be RO or RW")

    def to_json(self) -> dict[str, Any]:
        return {
            "container_path": self.container_path,
            "host_path": self.host_path,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> VolumeSpec:
        doc = _obj(raw, path, _fields(cls))
        return cls(
            container_path=_str(doc.get("container_path"), f"{path}/container_path", 4096),
            host_path=_str(doc.get("host_path"), f"{path}/host_path", 4096),
            mode=_str(doc.get("mode", "RW"), f"{path}/mode", 2),
        )


VOLUME_TYPES = ("root", "path", "mount")
"""Mesos' disk sources a persistent volume may be on: the agent's own disk (its work
dir), or a disk the operator gave the agent, shared (``path``) or used whole (``mount``)."""


@dataclass(frozen=True, slots=True)
class PersistentVolume:
    """A local persistent volume (Marathon's ``persistent: {type, size}``): ``size`` MiB
    reserved for one instance slot of a resident app and mounted at ``container_path``
    (one level, relative to the sandbox). ``id`` names it on its node once the master
    reserved it (``""`` in an app's definition). ``type``: ``root`` (the node's disk),
    ``path`` or ``mount`` (an operator's disk of the agent, ``Node.disks``); ``source``
    is that disk's root on the node once reserved there."""

    container_path: str
    size: int
    id: str = ""
    type: str = "root"
    source: str = ""
    max_size: int = 0
    """A mount volume's ``maxSize``: it takes no disk larger (0: any)."""

    def __post_init__(self) -> None:
        path = self.container_path
        if not isinstance(path, str) or not path or "/" in path or path in (".", ".."):
            raise ValidationError(
                "/container/volumes/containerPath",
                "a persistent volume's containerPath is one relative path segment (no '/')",
            )
        if "\x00" in path:
            raise ValidationError("/container/volumes/containerPath", "must not contain NUL")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ValidationError("/container/volumes/persistent/size", "must be >= 1 (MiB)")
        if self.id and not (isinstance(self.id, str) and _VOLUME_ID.fullmatch(self.id)):
            raise ValidationError("/container/volumes/persistent/id", f"bad volume id {self.id!r}")
        if self.type not in VOLUME_TYPES:
            raise ValidationError(
                "/container/volumes/persistent/type", "must be root, path or mount"
            )
        if self.max_size and (self.type != "mount" or self.max_size < self.size):
            raise ValidationError(
                "/container/volumes/persistent/maxSize",
                "only for a mount volume, and at least its size",
            )
        if self.source and (
            self.type == "root" or not self.source.startswith("/") or "\x00" in self.source
        ):
            raise ValidationError(
                "/container/volumes/persistent/source", "an absolute path, for path and mount only"
            )

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "container_path": self.container_path,
            "size": self.size,
            "id": self.id,
        }
        if self.type != "root":
            doc.update(type=self.type, source=self.source)
        if self.max_size:
            doc["max_size"] = self.max_size
        return doc

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> PersistentVolume:
        doc = _obj(raw, path, _fields(cls))
        return cls(
            container_path=_str(doc.get("container_path"), f"{path}/container_path", 255),
            size=_int(doc.get("size"), f"{path}/size", 1, 10**12),
            id=_str(doc.get("id", ""), f"{path}/id", 255),
            type=_str(doc.get("type", "root"), f"{path}/type", 10),
            source=_str(doc.get("source", ""), f"{path}/source", 4096),
            max_size=_int(doc.get("max_size", 0), f"{path}/max_size", 0, 10**12),
        )


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """A port the container listens on (Marathon's ``portMappings`` item): the task's host
    port of the same index is forwarded to it; ``container_port`` 0 means the same
    number as the host port, as in Marathon."""

    container_port: int = 0
    protocol: str = "tcp"

    def __post_init__(self) -> None:
        if not isinstance(self.container_port, int) or not 0 <= self.container_port <= 65535:
            raise ValidationError("/container/portMappings/containerPort", "must be 0-65535")
        if self.protocol not in ("tcp", "udp", "udp,tcp"):
            raise ValidationError("/container/portMappings/protocol", "must be tcp, udp or udp,tcp")

    def to_json(self) -> dict[str, Any]:
        return {"container_port": self.container_port, "protocol": self.protocol}

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> ContainerPort:
        doc = _obj(raw, path, _fields(cls))
        return cls(
            container_port=_int(doc.get("container_port", 0), f"{path}/container_port", 0, 65535),
            protocol=_str(doc.get("protocol", "tcp"), f"{path}/protocol", 10),
        )


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Marathon's ``container`` as the agent runs it: the engine (``MESOS`` or ``DOCKER``;
    both run under runc, and differ only where Marathon's rules do) and the image."""

    type: str = "MESOS"
    image: str | None = None
    force_pull: bool = False
    privileged: bool = False
    volumes: tuple[VolumeSpec, ...] = ()
    network: str = "host"
    """``host`` (the node's network), ``bridge`` (a namespace on the agent's bridge) or
    ``container`` (a namespace with an address of its own on the named network
    ``network_name``)."""
    port_mappings: tuple[ContainerPort, ...] = ()
    """With ``bridge`` or ``container``: where the task's host ports go, in order."""
    network_name: str = ""
    """With ``container``: the agent's named network the task joins."""

    def __post_init__(self) -> None:
        if self.network not in ("host", "bridge", "container"):
            raise ValidationError("/networks", f"unknown network {self.network!r}")
        if self.network == "container":
            problem = network_name_problem(self.network_name)
            if problem:
                raise ValidationError("/networks/name", f"{self.network_name!r} {problem}")
        elif self.network_name:
            raise ValidationError("/networks/name", "only a container network has a name")
        object.__setattr__(
            self,
            "port_mappings",
            tuple(
                p if isinstance(p, ContainerPort) else ContainerPort.from_json(p)
                for p in self.port_mappings
            ),
        )
        object.__setattr__(
            self,
            "volumes",
            tuple(
                v if isinstance(v, VolumeSpec) else VolumeSpec.from_json(v) for v in self.volumes
            ),
        )
        if self.type not in ("MESOS", "DOCKER"):
            raise ValidationError("/container/type", f"unknown container type {self.type!r}")
        if self.image is not None:
            parse_image(self.image)
        if not isinstance(self.force_pull, bool):
            raise ValidationError("/container/docker/forcePullImage", "must be true or false")

    @property
    def reference(self) -> ImageReference | None:
        return None if self.image is None else parse_image(self.image)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "image": self.image,
            "force_pull": self.force_pull,
            "privileged": self.privileged,
            "volumes": [v.to_json() for v in self.volumes],
            "network": self.network,
            "port_mappings": [p.to_json() for p in self.port_mappings],
            "network_name": self.network_name,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> ContainerSpec:
        doc = _obj(raw, path, _fields(cls))
        image = doc.get("image")
        return cls(
            type=_str(doc.get("type", "MESOS"), f"{path}/type", 20),
            image=None if image is None else _str(image, f"{path}/image", 1024),
            force_pull=_bool(doc.get("force_pull", False), f"{path}/force_pull"),
            privileged=_bool(doc.get("privileged", False), f"{path}/privileged"),
            volumes=tuple(
                VolumeSpec.from_json(v, f"{path}/volumes/{i}")
                for i, v in enumerate(_list(doc.get("volumes", []), f"{path}/volumes", 100))
            ),
            network=_str(doc.get("network", "host"), f"{path}/network", 20),
            port_mappings=tuple(
                ContainerPort.from_json(p, f"{path}/port_mappings/{i}")
                for i, p in enumerate(
                    _list(doc.get("port_mappings", []), f"{path}/port_mappings", 1000)
                )
            ),
            network_name=_str(doc.get("network_name", ""), f"{path}/network_name", 63),
        )
