"""Image references, image configs, and how an image's Entrypoint/Cmd/User combine with
the app's cmd/args/user (pure rules, table-driven)."""

from __future__ import annotations

import dataclasses

import pytest

from pallet.agent.images.config import ImageError, read_image
from pallet.agent.ocispec import (
    ContainerProcess,
    ImageUser,
    UserNotFound,
    container_argv,
    resolve_image_user,
    runtime_config,
    working_dir,
)
from pallet.model import ValidationError
from pallet.model.images import parse_image


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("mesosphere/inky", "docker.io/mesosphere/inky:latest"),
        ("quay.io/prometheus/node-exporter:v1.7.0", "quay.io/prometheus/node-exporter:v1.7.0"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("localhost/a/b/c:t", "localhost/a/b/c:t"),
        (
            "registry.example.com:443/team/app@sha256:" + "a" * 64,
            "registry.example.com:443/team/app@sha256:" + "a" * 64,
        ),
        ("app:v1@sha256:" + "b" * 64, "docker.io/library/app:v1@sha256:" + "b" * 64),
    ],
)
def test_references_parse_as_docker_reads_them(text: str, canonical: str) -> None:
    assert str(parse_image(text)) == canonical


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Busybox", "lower-case"),
        ("busybox:", "tag ''"),
        ("busybox:bad tag", "tag"),
        ("bad host:5000/app", "not a host name"),
        ("app@sha256:xyz", "digest"),
        ("a//b", "lower-case"),
        (" busybox", "spaces"),
    ],
)
def test_bad_references_name_the_field_and_say_why(text: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_image(text)
    assert info.value.field == "/container/docker/image"
    assert why in info.value.message


def test_loopback_registries_may_speak_http() -> None:
    assert parse_image("127.0.0.1:5000/a").on_loopback
    assert parse_image("localhost:5000/a").on_loopback
    assert not parse_image("registry.example.com/a").on_loopback
    assert not parse_image("busybox").on_loopback


# (app cmd, app args, image Entrypoint, image Cmd) -> argv, as Marathon hands them to
# Mesos and both containerizers run them
@pytest.mark.parametrize(
    ("cmd", "args", "entrypoint", "image_cmd", "argv"),
    [
        (None, (), ("/bin/echo",), ("hello",), ("/bin/echo", "hello")),  # image alone
        (None, ("hi",), ("/bin/echo",), ("hello",), ("/bin/echo", "hi")),  # args replace Cmd
        (None, ("ls", "/"), (), ("sh",), ("ls", "/")),  # no Entrypoint: args run as is
        ("echo $X", (), ("/bin/echo",), ("hello",), ("/bin/sh", "-c", "echo $X")),  # cmd wins
        ("true", (), (), (), ("/bin/sh", "-c", "true")),
        (None, (), (), ("sh",), ("sh",)),
        (None, (), (), (), ()),  # nothing to run: the agent fails the task
    ],
)
def test_what_a_container_runs(
    cmd: str | None,
    args: tuple[str, ...],
    entrypoint: tuple[str, ...],
    image_cmd: tuple[str, ...],
    argv: tuple[str, ...],
) -> None:
    assert container_argv(cmd, args, entrypoint, image_cmd) == argv


def test_working_dir_is_the_images_else_the_sandbox_or_root() -> None:
    assert working_dir("/app", "MESOS") == "/app"
    assert working_dir("", "MESOS") == "/mnt/mesos/sandbox"
    assert working_dir("", "DOCKER") == "/"


PASSWD = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nextra:x:1500:app,other\nweb:x:33:\n"


@pytest.mark.parametrize(
    ("spec", "user"),
    [
        ("", ImageUser(0, 0)),
        ("root", ImageUser(0, 0)),
        ("app", ImageUser(1000, 1000, (1500,))),
        ("1000", ImageUser(1000, 1000, (1500,))),
        ("4242", ImageUser(4242, 0)),  # a uid without an entry: group 0, as Docker
        ("app:web", ImageUser(1000, 33, (1500,))),
        ("app:77", ImageUser(1000, 77, (1500,))),
        ("4242:4242", ImageUser(4242, 4242)),
    ],
)
def test_users_resolve_in_the_images_own_files(spec: str, user: ImageUser) -> None:
    assert resolve_image_user(spec, PASSWD, GROUP) == user


def test_unknown_users_and_groups_in_the_image_are_named() -> None:
    with pytest.raises(UserNotFound, match="user 'ghost'"):
        resolve_image_user("ghost", PASSWD, GROUP)
    with pytest.raises(UserNotFound, match="group 'nogroup'"):
        resolve_image_user("app:nogroup", PASSWD, GROUP)


def test_an_image_reads_from_its_manifest_and_config() -> None:
    manifest = {
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "1" * 64,
                "size": 10,
            },
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "2" * 64},
        ]
    }
    config = {
        "config": {"Entrypoint": ["/e"], "Cmd": ["c"], "Env": ["A=1", "B=x=y"], "User": "app"},
        "rootfs": {"diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
    }
    image = read_image("r", "sha256:m", manifest, "sha256:c", config)
    assert [x.compression for x in image.layers] == ["gzip", ""]
    assert image.config.env_map() == {"A": "1", "B": "x=y"}
    assert type(image).from_json(image.to_json()) == image
    with pytest.raises(ImageError, match="2 layers but the config 1 diff ids"):
        read_image("r", "m", manifest, "c", {"rootfs": {"diff_ids": ["sha256:" + "a" * 64]}})
    bad = {"layers": [{"mediaType": "application/x-unknown", "digest": "d"}]}
    with pytest.raises(ImageError, match="not supported"):
        read_image("r", "m", bad, "c", {"rootfs": {"diff_ids": ["x"]}})


def test_the_runtime_config_isolates_and_limits() -> None:
    process = ContainerProcess(
        args=("/bin/sh",),
        env={"A": "1"},
        cwd="/",
        user=ImageUser(1000, 1000, (1500,)),
        hostname="node-1",
        cgroups_path="pallet/agent/task",
        pids_limit=64,
    )
    config = runtime_config(process)
    linux = config["linux"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount"}
    assert linux["cgroupsPath"] == "pallet/agent/task"
    assert linux["resources"]["pids"] == {"limit": 64}
    assert config["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1500]}
    caps = config["process"]["capabilities"]
    assert caps["effective"] == [] and "CAP_CHOWN" in caps["bounding"]  # non-root: none
    root = runtime_config(dataclasses.replace(process, user=ImageUser(0, 0)))
    assert "CAP_CHOWN" in root["process"]["capabilities"]["effective"]
