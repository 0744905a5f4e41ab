"""``pallet image``: container images for clusters without a public registry.

``pallet image load FILE`` copies an image archive (what ``docker save`` writes, or an
OCI archive) into a registry the agents pull from, with skopeo; ``pallet image registry``
runs Debian's ``docker-registry`` (``pallet up --registry`` starts one on 127.0.0.1:5000
for the whole cluster). A laptop or an air-gapped site then runs its images with no
public registry: load them once, and every agent pulls from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import typer

from pallet.model import ValidationError

__all__ = ["app", "archive_format", "archive_name"]

app = typer.Typer(
    help="Images: load an image archive into the cluster's registry, or run one.",
    no_args_is_help=True,
)

DEFAULT_REGISTRY = "127.0.0.1:5000"


def archive_format(path: Path) -> str:
    """``docker-archive`` (``docker save``: ``manifest.json`` at the top) or
    ``oci-archive`` (``oci-layout`` and ``index.json``); ValidationError otherwise."""
    try:
        with tarfile.open(path) as tar:
            names = {m.name.lstrip("./") for m in tar.getmembers()[:10_000]}
    except (OSError, tarfile.TarError) as e:
        raise ValidationError("FILE", f"{path} is not a readable tar archive: {e}") from None
    if "manifest.json" in names:
        return "docker-archive"
    if "oci-layout" in names and "index.json" in names:
        return "oci-archive"
    raise ValidationError(
        "FILE", f"{path} holds neither a `docker save` image nor an OCI image layout"
    )


def archive_name(path: Path, kind: str) -> str | None:
    """The name the archive gives its image (``RepoTags`` of ``docker save``, the
    ``ref.name`` annotation of an OCI index), if it gives exactly one."""
    with tarfile.open(path) as tar:
        member = "manifest.json" if kind == "docker-archive" else "index.json"
        found = next((m for m in tar.getmembers() if m.name.lstrip("./") == member), None)
        data = tar.extractfile(found) if found is not None else None
        if data is None:
            return None
        doc = json.loads(data.read())
    if kind == "docker-archive":
        tags = [t for entry in doc for t in entry.get("RepoTags") or []]
    else:
        tags = [
            annotations.get("io.containerd.image.name")
            or annotations.get("org.opencontainers.image.ref.name")
            for m in doc.get("manifests", [])
            if (annotations := m.get("annotations") or {})
        ]
        tags = [t for t in tags if t]
    return tags[0] if len(tags) == 1 else None


@app.command()
def load(
    file: Path = typer.Argument(..., help="An image archive: `docker save` output or OCI."),
    name: str | None = typer.Option(
        None, help="Repository and tag to store it as (default: the archive's own tag)."
    ),
    registry: str = typer.Option(
        DEFAULT_REGISTRY, help="The registry the agents pull from (pallet up --registry)."
    ),
) -> None:
    """Copy an image archive into the cluster's registry; print the reference apps use."""
    from pallet.model.images import parse_image

    if not file.is_file():
        raise ValidationError("FILE", f"{file} does not exist")
    if shutil.which("skopeo") is None:
        raise ValidationError("skopeo", "pallet image load needs skopeo (Debian package)")
    kind = archive_format(file)
    given = name or archive_name(file, kind)
    if given is None:
        raise ValidationError("--name", f"{file} does not name its image: give --name REPO:TAG")
    source = parse_image(given, "--name")
    target = parse_image(
        f"{registry}/{source.repository.removeprefix('library/')}:{source.tag or 'latest'}",
        "--registry",
    )
    argv = ["skopeo", "copy", "--quiet"]
    if target.on_loopback:
        argv.append("--dest-tls-verify=false")
    done = subprocess.run(
        [*argv, f"{kind}:{file}", f"docker://{target}"], capture_output=True, text=True
    )
    if done.returncode != 0:
        from pallet.agent.images.pull import registry_answer

        raise ValidationError("FILE", f"cannot load {file}: {registry_answer(done.stderr, target)}")
    typer.echo(f"loaded {target}")


@app.command()
def registry(
    port: int = typer.Option(5000, help="Port to listen on."),
    bind: str = typer.Option("127.0.0.1", help="Address to listen on."),
    directory: Path = typer.Option(Path("pallet-registry"), "--dir", help="Where images are kept."),
) -> None:
    """Run Debian's docker-registry in the foreground, for the agents to pull from."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise ValidationError("docker-registry", "needs Debian's docker-registry package")
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory.resolve() / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"{bind}:{port}", "secret": os.urandom(16).hex()},
    }
    path = directory / "config.yml"
    path.write_text(json.dumps(config))  # YAML is a superset of JSON
    os.execv(binary, [binary, "serve", str(path)])


if __name__ == "__main__":  # `pallet up --registry` starts `python -m pallet.cli.image`
    app()
