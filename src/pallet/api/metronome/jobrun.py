"""What a Metronome job's tasks run in besides their command: ``run.user``, ``artifacts``,
``docker`` or ``ucr`` images, host ``volumes`` and ``networks``; pure.

Each is checked by the rules an app's ``user``, ``fetch``, ``container`` and
``networks`` meet (``marathon.support``: the same fetch schemes, host paths and
privileged containers the operator allows) plus Metronome's own, and becomes the same
launch parts an app's task gets (``FetchUri``, ``ContainerSpec`` through
``JobRunSpec.container``). What Pallet cannot run is a 422 naming its path: docker
``parameters``, ``appc`` images, ``container`` networks. Secret volumes are files in the
sandbox (``jobspec`` checks them with the run's ``secrets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pallet.api.marathon.errors import Violation
from pallet.api.marathon.support import (
    PRIVILEGED,
    Allowances,
    fetch_violations,
    host_volume_violations,
    unsupported_message,
)
from pallet.model.errors import ValidationError
from pallet.model.images import parse_image
from pallet.model.jobs import JobImage, JobNetwork
from pallet.model.launch import FetchUri, VolumeSpec

__all__ = [
    "ArtifactIn",
    "DockerIn",
    "NetworkIn",
    "UcrIn",
    "launch_parts",
    "launch_violations",
]

MAX_URI = 1024
"""Characters of an artifact's URI (what the agent protocol carries)."""
MAX_ARTIFACTS = 1000
MAX_VOLUMES = 100
MAX_PATH = 4096
MAX_USER = 255

_HOST_VOLUME = frozenset({"containerPath", "hostPath", "mode"})
_SECRET_VOLUME = frozenset({"containerPath", "secret"})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class ArtifactIn(_In):
    uri: str
    executable: bool = False
    extract: bool = True
    cache: bool = False


class ParameterIn(_In):
    key: str
    value: str


class DockerIn(_In):
    image: str
    force_pull_image: bool = Field(False, alias="forcePullImage")
    privileged: bool = False
    parameters: list[ParameterIn] = []


class UcrImageIn(_In):
    id: str
    kind: Literal["docker", "appc"] = "docker"
    force_pull: bool = Field(False, alias="forcePull")


class UcrIn(_In):
    image: UcrImageIn
    privileged: bool = False


class NetworkIn(_In):
    mode: Literal["host", "container/bridge", "container"]
    name: str | None = None
    labels: dict[str, str] = {}


def _no(path: str, what: str) -> Violation:
    return Violation(path, unsupported_message(what))


def _image(text: str, path: str) -> list[Violation]:
    try:
        parse_image(text, path)
    except ValidationError as exc:
        return [Violation(exc.field, exc.message)]
    return []


def _container_violations(
    docker: DockerIn | None, ucr: UcrIn | None, gpus: int, allow: Allowances
) -> list[Violation]:
    out: list[Violation] = []
    if docker is not None and ucr is not None:
        out.append(Violation("/run", "Either Docker or UCR should be provided, but not both"))
    if docker is not None:
        out += _image(docker.image, "/run/docker/image")
        if docker.parameters:
            out.append(_no("/run/docker/parameters", "docker parameters"))
        if docker.privileged and not allow.privileged:
            out.append(_no("/run/docker/privileged", PRIVILEGED))
        if gpus:
            out.append(Violation("/run/gpus", "GPUs are not supported with Docker"))
    if ucr is not None:
        out += _image(ucr.image.id, "/run/ucr/image/id")
        if ucr.image.kind != "docker":
            out.append(_no("/run/ucr/image/kind", f"{ucr.image.kind} images (docker images only)"))
        if ucr.privileged and not allow.privileged:
            out.append(_no("/run/ucr/privileged", PRIVILEGED))
    return out


def _volume_violations(
    volumes: Sequence[dict[str, Any]], has_image: bool, allow: Allowances
) -> list[Violation]:
    out: list[Violation] = []
    if len(volumes) > MAX_VOLUMES:
        return [Violation("/run/volumes", f"error.maxItems: at most {MAX_VOLUMES}")]
    for i, volume in enumerate(volumes):
        at = f"/run/volumes({i})"
        keys = set(volume)
        if keys == _SECRET_VOLUME:
            continue  # a file in the sandbox: ``jobspec`` checks it with the run's secrets
        if keys != _HOST_VOLUME:
            out.append(
                Violation(
                    at,
                    "expected a host volume {containerPath, hostPath, mode} "
                    "or a secret volume {containerPath, secret}",
                )
            )
            continue
        bad = [k for k in sorted(keys) if not isinstance(volume[k], str)]
        for key in bad:
            out.append(Violation(f"{at}/{key}", "error.expected.jsstring"))
        if bad:
            continue
        too_long = [k for k in ("containerPath", "hostPath") if len(volume[k]) > MAX_PATH]
        for key in too_long:
            out.append(Violation(f"{at}/{key}", f"error.maxLength: at most {MAX_PATH} characters"))
        if not too_long:
            out += host_volume_violations(at, volume, has_image, allow)
    return out


def _network_violations(networks: Sequence[NetworkIn], has_image: bool) -> list[Violation]:
    """Metronome's network rules, then what Pallet does not run (``container``)."""
    out: list[Violation] = []
    modes = {n.mode for n in networks}
    if len(modes) > 1:
        message = (
            "You may not mix host, container, or container/bridge networking. "
            "Only define one kind of network."
        )
        out.append(Violation("/run/networks", message))
    if not has_image and modes - {"host"}:
        out.append(
            Violation("/run/networks", "Only containers may join container or bridge networks")
        )
    if modes - {"container"} and len(networks) > 1:
        message = "Only one host or container/bridge network modes are allowed"
        out.append(Violation("/run/networks", message))
    names = [n.name for n in networks if n.name is not None]
    if len(names) != len(set(names)):
        out.append(Violation("/run/networks", "network names must be unique"))
    for i, network in enumerate(networks):
        at = f"/run/networks({i})"
        if network.mode == "container":
            out.append(_no(f"{at}/mode", "container networks (IP per task)"))
            continue
        hint = "host network" if network.mode == "host" else "container/bridge networks"
        if network.name is not None:
            out.append(Violation(f"{at}/name", f"must be empty for {hint}"))
        if network.mode == "host" and network.labels:
            out.append(Violation(f"{at}/labels", f"must be empty for {hint}"))
    return out


def launch_violations(
    *,
    user: str | None,
    artifacts: Sequence[ArtifactIn],
    docker: DockerIn | None,
    ucr: UcrIn | None,
    volumes: Sequence[dict[str, Any]],
    networks: Sequence[NetworkIn],
    gpus: int,
    allow: Allowances,
) -> list[Violation]:
    """Everything wrong with, or refused of, what a job's tasks run in."""
    out: list[Violation] = []
    if user is not None and (not user or "\x00" in user or len(user) > MAX_USER):
        out.append(Violation("/run/user", f"must be a user name (1-{MAX_USER} characters)"))
    if len(artifacts) > MAX_ARTIFACTS:
        out.append(Violation("/run/artifacts", f"error.maxItems: at most {MAX_ARTIFACTS}"))
    for i, artifact in enumerate(artifacts[:MAX_ARTIFACTS]):
        at = f"/run/artifacts({i})"
        if not artifact.uri or "\x00" in artifact.uri or len(artifact.uri) > MAX_URI:
            out.append(Violation(f"{at}/uri", f"must be a URI of 1-{MAX_URI} characters"))
        else:
            out += fetch_violations(at, artifact.uri)
    has_image = docker is not None or ucr is not None
    out += _container_violations(docker, ucr, gpus, allow)
    out += _volume_violations(volumes, has_image, allow)
    out += _network_violations(networks, has_image)
    return out


def launch_parts(
    *,
    user: str | None,
    artifacts: Sequence[ArtifactIn],
    docker: DockerIn | None,
    ucr: UcrIn | None,
    volumes: Sequence[dict[str, Any]],
    networks: Sequence[NetworkIn],
) -> dict[str, Any]:
    """``JobRunSpec``'s launch fields of a run ``launch_violations`` found nothing wrong
    with."""
    image = None
    if docker is not None:
        image = JobImage(docker.image, False, docker.force_pull_image, docker.privileged)
    elif ucr is not None:
        image = JobImage(ucr.image.id, True, ucr.image.force_pull, ucr.privileged)
    return {
        "user": user,
        "artifacts": tuple(FetchUri(a.uri, a.extract, a.executable, a.cache) for a in artifacts),
        "image": image,
        "volumes": tuple(
            VolumeSpec(v["containerPath"], v["hostPath"], v["mode"])
            for v in volumes
            if "hostPath" in v
        ),
        "networks": tuple(JobNetwork(n.mode, dict(n.labels)) for n in networks),
    }
