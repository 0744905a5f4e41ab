"""The test images (built from this machine's busybox-static) and a real registry to pull
them from, optionally behind token auth with a small token server of our own.

The layout builder and the registry runner are the product's (``pallet.bench.ocibuild``,
``pallet.bench.registry``); this adds the token server and the images the tests use.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pallet.bench.ocibuild import (
    Dir,
    File,
    Link,
    Whiteout,
    add_blob,
    build_image,
    busybox_layer,
    index_of,
    layer_tar,
)
from pallet.bench.registry import Registry, free_port
from pallet.bench.registry import run_registry as _run_registry

__all__ = [
    "Dir",
    "File",
    "Link",
    "PushedImages",
    "Registry",
    "Whiteout",
    "add_blob",
    "build_image",
    "busybox_layer",
    "free_port",
    "index_of",
    "layer_tar",
    "push_test_images",
    "run_registry",
]


@contextlib.contextmanager
def run_registry(directory: Path, *, token_auth: bool = False) -> Iterator[Registry]:
    """A registry under ``directory``; with ``token_auth``, behind Bearer tokens from a
    token server of our own (user ``pallet``, password ``secret``)."""
    if not token_auth:
        with _run_registry(directory) as reg:
            yield reg
        return
    port = free_port()
    hits: list[str] = []
    server, realm, bundle = _token_server(directory, hits)
    auth = {
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
    try:
        with _run_registry(directory, port=port, auth=auth, auth_file=auth_file) as reg:
            reg.token_hits = hits
            yield reg
    finally:
        server.shutdown()
        server.server_close()


def _token_server(
    directory: Path, hits: list[str]
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
