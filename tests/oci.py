"""Test images built from this machine's own files, and a real registry to pull them from.

``build_image`` writes an OCI image layout (layers as gzipped tars, a config, a manifest,
an index) from a list of layers, each a mapping of path -> ``File``/``Dir``/``Link``/
``Whiteout``; ``busybox_layer`` is Debian's static busybox with its applets. ``Registry``
runs Debian's ``docker-registry`` on a free 127.0.0.1 port (optionally behind token
auth, with a small token server of its own) and ``push`` copies a layout into it with
skopeo, as Docker (``v2s2``) or OCI manifests, or every platform of an index.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
APPLETS = [
    "sh",
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
    index = (
        json.loads(index_path.read_text())
        if index_path.exists()
        else {"schemaVersion": 2, "manifests": []}
    )
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running ``docker-registry`` on 127.0.0.1."""

    host: str
    process: subprocess.Popen[bytes]
    auth_file: Path | None = None
    token_hits: list[str] = field(default_factory=list)

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    def push(
        self,
        layout: Path,
        tag: str,
        name: str,
        *,
        docker: bool = False,
        all_platforms: bool = False,
    ) -> None:
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if docker:
            argv += ["--format", "v2s2"]
        if all_platforms:
            argv.append("--all")
        if self.auth_file is not None:
            argv += ["--dest-authfile", str(self.auth_file)]
        subprocess.run([*argv, f"oci:{layout}:{tag}", f"docker://{self.ref(name)}"], check=True)


@contextlib.contextmanager
def run_registry(directory: Path, *, token_auth: bool = False) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, storing under ``directory``;
    with ``token_auth``, behind Bearer tokens from a token server of our own (user
    ``pallet``, password ``secret``)."""
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test"},
    }
    token_server = None
    auth_file = None
    hits: list[str] = []
    if token_auth:
        token_server, realm, bundle = _token_server(directory, f"127.0.0.1:{port}", hits)
        config["auth"] = {
            "token": {
                "realm": realm,
                "service": "pallet-test-registry",
                "issuer": "pallet-test-issuer",
                "rootcertbundle": str(bundle),
            }
        }
        auth_file = directory / "auth.json"
        creds = base64.b64encode(b"pallet:secret").decode()
        auth_file.write_text(json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": creds}}}))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yml"
    path.write_text(json.dumps(config))  # YAML is a superset of JSON
    with open(directory / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "registry.log").read_text())
            time.sleep(0.05)
        yield Registry(f"127.0.0.1:{port}", process, auth_file, hits)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if token_server is not None:
            token_server.shutdown()
            token_server.server_close()


def _token_server(
    directory: Path, service_host: str, hits: list[str]
) -> tuple[http.server.ThreadingHTTPServer, str, Path]:
    """A Docker token server: checks Basic ``pallet:secret`` and answers a JWT (ES256)
    whose ``x5c`` is a certificate the registry trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pallet-test-issuer")])
    now = time.time()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(now - 3600, datetime.UTC))
        .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = directory / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def token(scope: str) -> str:
        access = []
        if scope:
            kind, repo, actions = scope.split(":")
            access = [{"type": kind, "name": repo, "actions": actions.split(",")}]
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        claims = {
            "iss": "pallet-test-issuer",
            "sub": "pallet",
            "aud": "pallet-test-registry",
            "exp": int(time.time()) + 300,
            "nbf": int(time.time()) - 10,
            "iat": int(time.time()),
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        der = key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            from urllib.parse import parse_qs, urlsplit

            query = parse_qs(urlsplit(self.path).query)
            expected = "Basic " + base64.b64encode(b"pallet:secret").decode()
            if self.headers.get("Authorization") != expected:
                hits.append("refused")
                self.send_response(401)
                self.end_headers()
                return
            scopes = query.get("scope", [""])
            hits.append(scopes[0])
            body = json.dumps({"token": token(scopes[0]), "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    return server, realm, bundle


@dataclass(frozen=True)
class PushedImages:
    """References of the images ``push_test_images`` pushed."""

    busybox: str
    """Entrypoint ["/bin/echo"], Cmd ["hello", "from", "busybox"], Env PATH and IMAGE,
    WorkingDir /home, as a Docker (schema 2) manifest."""
    busybox_oci: str
    """The same image as an OCI manifest."""
    shell: str
    """Cmd ["sh"], no Entrypoint, User app (1000), three layers: a file of the second
    layer is whited out by the third, and a directory made opaque."""
    multi: str
    """A manifest list: linux/amd64 says "amd64" (Entrypoint echo), linux/arm64 "arm64"."""
    sleeper: str
    """Entrypoint ["/bin/sh", "-c"], Cmd: says who and where it runs, then sleeps."""


def push_test_images(registry: Registry, directory: Path) -> PushedImages:
    base = busybox_layer()
    layout = directory / "layout"
    build_image(
        layout,
        [base],
        {
            "Entrypoint": ["/bin/echo"],
            "Cmd": ["hello", "from", "busybox"],
            "Env": ["PATH=/bin", "IMAGE=busybox"],
            "WorkingDir": "/home",
        },
        tag="busybox",
    )
    second = {
        "opt": Dir(),
        "opt/keep": File(b"kept\n"),
        "opt/gone": File(b"should be hidden\n"),
        "var": Dir(),
        "var/old": Dir(),
        "var/old/a": File(b"old\n"),
    }
    third = {
        "opt/gone": Whiteout(),
        "var/old/x": Whiteout(opaque=True),
        "var/old/b": File(b"new\n"),
    }
    build_image(layout, [base, second, third], {"Cmd": ["sh"], "User": "app"}, tag="shell")
    amd = build_image(layout, [base], {"Entrypoint": ["/bin/echo", "amd64"]}, tag="amd")
    arm = build_image(
        layout, [base], {"Entrypoint": ["/bin/echo", "arm64"]}, tag="arm", architecture="arm64"
    )
    index_of(layout, "multi", [amd, arm])
    build_image(
        layout,
        [base],
        {
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ['echo "entrypoint as $(id -u) in $(pwd)"; exec sleep 600'],
            "Env": ["PATH=/bin", "IMAGE=sleeper"],
        },
        tag="sleeper",
    )
    registry.push(layout, "busybox", "busybox:1", docker=True)
    registry.push(layout, "busybox", "busybox-oci:1")
    registry.push(layout, "shell", "shell:1")
    registry.push(layout, "multi", "multi:1", all_platforms=True)
    registry.push(layout, "sleeper", "sleeper:1")
    return PushedImages(
        busybox=registry.ref("busybox:1"),
        busybox_oci=registry.ref("busybox-oci:1"),
        shell=registry.ref("shell:1"),
        multi=registry.ref("multi:1"),
        sleeper=registry.ref("sleeper:1"),
    )
