"""Pulling an image from a registry by driving skopeo; does I/O (a child process).

Why skopeo and not our own client: the OCI distribution protocol is more than a few GETs
(the bearer token dance, basic auth, Docker and OCI manifests and their conversion,
manifest lists and indexes resolved to this node's platform, digests verified as blobs
arrive, retries of broken downloads). skopeo (Debian's, maintained with podman) does all
of it through one stable command line, and its ``--dest-shared-blob-dir`` makes it write
blobs straight into the agent's content-addressed blob directory, skipping the ones
already there: each layer is downloaded and stored once per agent. See docs/design.md.

A pull copies ``docker://<ref>`` into a throwaway OCI layout whose blobs live in the
shared directory, then reads the manifest and config from there. skopeo writes each
blob into the layout directory as ``oci-put-blob*`` while it downloads, then syncs it
and renames it into the blob directory once its digest is checked: the store reads
those files as they grow (``partial_blobs``), so unpacking keeps pace with the download. Registries on loopback
(and those the operator lists) may answer plain HTTP, as Docker allows for 127.0.0.0/8.
Credentials come from a Docker-style auth file (``--registry-auth-file``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pallet.agent.images.config import ImageError
from pallet.model.images import ImageReference

__all__ = ["Pulled", "Puller", "partial_blobs"]

_MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_POLL = 0.02
_PARTIAL = "oci-put-blob"
"""The prefix of the files skopeo (containers/image's OCI layout writer) downloads into."""


@dataclass(frozen=True, slots=True)
class Pulled:
    """What a pull left in the blob directory: the manifest and config, read."""

    manifest_digest: str
    manifest: dict[str, Any]
    config_digest: str
    config: dict[str, Any]


class Puller:
    """Pulls with skopeo into ``blobs`` (``<blobs>/sha256/<hex>``)."""

    def __init__(
        self,
        blobs: Path,
        scratch: Path,
        *,
        auth_file: Path | None = None,
        insecure: frozenset[str] = frozenset(),
        skopeo: str = "skopeo",
        timeout: float = 600.0,
    ) -> None:
        self.blobs = blobs
        self.scratch = scratch
        self.auth_file = auth_file
        self.insecure = insecure
        self.skopeo = skopeo
        self.timeout = timeout
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.scratch.mkdir(parents=True, exist_ok=True)

    def command(self, ref: ImageReference, layout: Path) -> list[str]:
        argv = [self.skopeo, "copy", "--quiet"]
        if ref.on_loopback or ref.registry in self.insecure:
            argv.append("--src-tls-verify=false")
        if self.auth_file is not None:
            argv += ["--src-authfile", str(self.auth_file)]
        argv += [
            "--dest-shared-blob-dir",
            str(self.blobs),
            f"docker://{ref}",
            f"oci:{layout}:image",
        ]
        return argv

    def pull(
        self,
        ref: ImageReference,
        cancelled: Callable[[], bool] = lambda: False,
        tick: Callable[[list[Path]], None] = lambda partial: None,
    ) -> Pulled:
        """Copy ``ref``'s manifest, config and layers into the blob directory (only those
        not there yet); ``ImageError`` with the registry's answer if it cannot. ``tick``
        is called every few milliseconds while skopeo works, with the blobs it is
        writing (``partial_blobs``); each ends renamed into the blob directory, whole and
        checked, or deleted."""
        layout = self.scratch / f"pull-{uuid.uuid4().hex}"
        try:
            self._run(
                ref, self.command(ref, layout), cancelled, lambda: tick(partial_blobs(layout))
            )
            index = json.loads((layout / "index.json").read_text())
            (descriptor,) = index["manifests"]
            manifest_digest = str(descriptor["digest"])
            manifest = self.read_json(manifest_digest)
            config_digest = str(manifest["config"]["digest"])
            return Pulled(manifest_digest, manifest, config_digest, self.read_json(config_digest))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ImageError(f"pull {ref}: skopeo left no readable image: {e}") from e
        finally:
            shutil.rmtree(layout, ignore_errors=True)

    def blob(self, digest: str) -> Path:
        algorithm, _, hexa = digest.partition(":")
        if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexa):
            raise ImageError(f"unsupported digest {digest!r}")
        return self.blobs / "sha256" / hexa

    def read_json(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self.blob(digest).read_bytes())
        if not isinstance(doc, dict):
            raise ValueError(f"{digest} is not a JSON object")
        return doc

    def _run(
        self,
        ref: ImageReference,
        argv: list[str],
        cancelled: Callable[[], bool],
        tick: Callable[[], None],
    ) -> None:
        with tempfile.TemporaryFile() as stderr:  # a file: skopeo never blocks on it
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
                )
            except OSError as e:
                raise ImageError(f"pull {ref}: cannot run {self.skopeo}: {e.strerror}") from e
            deadline = time.monotonic() + self.timeout
            try:
                while proc.poll() is None:
                    if cancelled():
                        raise ImageError(f"pull {ref}: cancelled (the task was killed)")
                    if time.monotonic() > deadline:
                        raise ImageError(f"pull {ref}: no answer within {self.timeout:g} s")
                    tick()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(_POLL)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stderr.seek(0)
            err = stderr.read().decode(errors="replace")
        if proc.returncode != 0:
            raise ImageError(f"pull {ref}: {registry_answer(err, ref)}")


def partial_blobs(layout: Path) -> list[Path]:
    """The blobs skopeo is downloading into ``layout`` now."""
    try:
        return [layout / name for name in os.listdir(layout) if name.startswith(_PARTIAL)]
    except FileNotFoundError:
        return []


def registry_answer(stderr: str, ref: ImageReference) -> str:
    """skopeo's error without its log decoration or the part that repeats the source."""
    found = _MESSAGE.findall(stderr)
    text = found[-1].encode().decode("unicode_escape") if found else stderr.strip()
    for prefix in (f"initializing source docker://{ref}: ", f"docker://{ref}: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.splitlines()[-1] if text else "skopeo failed without a message"
