"""Debian's ``docker-registry`` on a free 127.0.0.1 port, for benchmarks and tests that pull
images without a public registry; spawns a process.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Registry", "free_port", "run_registry"]


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
        """Copy the image ``tag`` of the OCI layout ``layout`` to ``name`` here (as a Docker
        schema 2 manifest with ``docker``; every platform of an index with ``all_platforms``)."""
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if docker:
            argv += ["--format", "v2s2"]
        if all_platforms:
            argv.append("--all")
        if self.auth_file is not None:
            argv += ["--dest-authfile", str(self.auth_file)]
        subprocess.run([*argv, f"oci:{layout}:{tag}", f"docker://{self.ref(name)}"], check=True)


@contextlib.contextmanager
def run_registry(
    directory: Path,
    *,
    port: int | None = None,
    auth: Mapping[str, Any] | None = None,
    auth_file: Path | None = None,
) -> Iterator[Registry]:
    """A registry storing under ``directory`` until the block ends (``auth``: its ``auth``
    configuration; ``auth_file``: credentials that clients and ``push`` use)."""
    port = port or free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "pallet"},
    }
    if auth is not None:
        config["auth"] = dict(auth)
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
        yield Registry(f"127.0.0.1:{port}", process, auth_file)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
