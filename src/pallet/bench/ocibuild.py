"""OCI image layouts built from files of this machine (Debian's static busybox, its own
Python, or any bytes), for benchmarks and tests that need images without a public registry; does I/O
(writes the layout).

``build_image`` adds an image to a layout: each layer is a mapping of path -> ``File``/
``Dir``/``Link``/``Whiteout`` (or the bytes of a tar), gzipped, with its config, manifest
and index entry; ``index_of`` adds a manifest list. skopeo copies a layout into a
registry (``registry.push``) or an agent's store (``pallet image load``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUSYBOX",
    "Dir",
    "Entry",
    "File",
    "Link",
    "Whiteout",
    "add_blob",
    "build_image",
    "busybox_layer",
    "index_of",
    "layer_tar",
    "python_layer",
]

BUSYBOX = Path("/bin/busybox")
APPLETS = [
    "sh",
    "httpd",
    "ip",
    "cat",
    "echo",
    "env",
    "false",
    "head",
    "id",
    "kill",
    "ls",
    "mkdir",
    "nc",
    "pwd",
    "rm",
    "sleep",
    "touch",
    "true",
    "wget",
    "dd",
    "seq",
    "yes",
    "grep",
    "stat",
    "chmod",
    "sync",
    "wc",
    "tail",
    "test",
    "hostname",
]
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\napp:x:1000:\nextra:x:1500:app\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Whiteout:
    """An OCI whiteout of the named path (``opaque``: of everything below a directory)."""

    opaque: bool = False


Entry = File | Dir | Link | Whiteout


def busybox_layer() -> dict[str, Entry]:
    layer: dict[str, Entry] = {
        "bin": Dir(),
        "bin/busybox": File(BUSYBOX.read_bytes(), 0o755),
        "etc": Dir(),
        "etc/passwd": File(PASSWD.encode()),
        "etc/group": File(GROUP.encode()),
        "tmp": Dir(0o1777),
        "home": Dir(),
    }
    for applet in APPLETS:
        layer[f"bin/{applet}"] = Link("busybox")
    return layer


PYTHON = Path("/usr/bin/python3.11")
"""Debian 12's own Python; its stdlib is under /usr/lib/python3.11."""
_PYTHON_LIBS = (  # what ``ldd /usr/bin/python3.11`` names on Debian 12
    "lib/x86_64-linux-gnu/libm.so.6",
    "lib/x86_64-linux-gnu/libz.so.1",
    "lib/x86_64-linux-gnu/libexpat.so.1",
    "lib/x86_64-linux-gnu/libc.so.6",
    "lib64/ld-linux-x86-64.so.2",
)
_STDLIB_LEFT_OUT = frozenset(
    {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "dist-packages"}
)


def python_layer() -> dict[str, Entry]:
    """A layer with this machine's Python 3.11: the interpreter, the libraries it links,
    and the standard library with its compiled modules (the optimized variants, tests,
    IDLE, Tk and the static library left out), about 30 MiB unpacked."""
    layer: dict[str, Entry] = {"usr": Dir(), "usr/bin": Dir(), "lib": Dir(), "lib64": Dir()}
    layer["lib/x86_64-linux-gnu"] = Dir()
    layer["usr/bin/python3.11"] = File(PYTHON.read_bytes(), 0o755)
    layer["usr/bin/python3"] = Link("python3.11")
    for name in _PYTHON_LIBS:
        layer[name] = File(Path("/", name).resolve().read_bytes(), 0o755)
    root = Path("/usr/lib/python3.11")
    layer["usr/lib"] = Dir()
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        rel = here.relative_to("/")
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _STDLIB_LEFT_OUT and not (here == root and d.startswith("config-"))
        )
        layer[str(rel)] = Dir()
        for name in sorted(files):
            path = here / name
            if ".opt-" in name:
                continue
            if path.is_symlink():
                layer[str(rel / name)] = Link(os.readlink(path))
            else:
                layer[str(rel / name)] = File(path.read_bytes(), path.stat().st_mode & 0o777)
    return layer


def layer_tar(entries: Mapping[str, Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, entry in entries.items():
            if isinstance(entry, Whiteout):
                head, _, tail = name.rpartition("/")
                wh = f"{head}/.wh..wh..opq" if entry.opaque else f"{head}/.wh.{tail}"
                info = tarfile.TarInfo(wh.lstrip("/"))
                tar.addfile(info, io.BytesIO(b""))
                continue
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if isinstance(entry, Dir):
                info.type, info.mode = tarfile.DIRTYPE, entry.mode
                tar.addfile(info)
            elif isinstance(entry, Link):
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                info.size, info.mode, info.uid, info.gid = (
                    len(entry.data),
                    entry.mode,
                    entry.uid,
                    entry.gid,
                )
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def add_blob(layout: Path, data: bytes, media: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}


def build_image(
    layout: Path,
    layers: Sequence[Mapping[str, Entry] | bytes],
    config: Mapping[str, Any] | None = None,
    *,
    tag: str = "latest",
    architecture: str = "amd64",
    compress: bool = True,
) -> dict[str, Any]:
    """Add an image to the OCI layout ``layout`` (created if need be) under ``tag``;
    a layer given as bytes is an uncompressed tar already. Returns its manifest's
    descriptor."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors, diff_ids = [], []
    for layer in layers:
        raw = layer if isinstance(layer, bytes) else layer_tar(layer)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if compress:
            data, media = (
                gzip.compress(raw, 1, mtime=0),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        else:
            data, media = raw, "application/vnd.oci.image.layer.v1.tar"
        descriptors.append(add_blob(layout, data, media))
    doc = {
        "architecture": architecture,
        "os": "linux",
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg = add_blob(layout, json.dumps(doc).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": descriptors,
    }
    desc = add_blob(
        layout, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"
    )
    desc["platform"] = {"architecture": architecture, "os": "linux"}
    desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index_path = layout / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    index["manifests"] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
    ] + [desc]
    index_path.write_text(json.dumps(index))
    return desc


def index_of(layout: Path, tag: str, manifests: Sequence[dict[str, Any]]) -> None:
    """Add an image index (a manifest list) of ``manifests`` under ``tag``."""
    index_doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{k: v for k, v in m.items() if k != "annotations"} for m in manifests],
    }
    desc = add_blob(
        layout, json.dumps(index_doc).encode(), "application/vnd.oci.image.index.v1+json"
    )
    desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    index["manifests"].append(desc)
    index_path.write_text(json.dumps(index))
