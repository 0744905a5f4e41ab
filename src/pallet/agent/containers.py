"""Tasks with an image: their root filesystem, bundle and runc commands; does I/O.

For each such task the agent keeps ``<containers dir>/<task id>/``: ``rootfs`` (the
overlayfs of the image's layers, ``images.overlay``), ``upper`` and ``work`` (what the
task writes), ``config.json`` (``ocispec``), ``hosts``, ``hostname``, ``resolv.conf``.
The task's main process is ``runc run --keep`` in the foreground: the agent's child,
so its exit status (the container's, or 128 + the signal that killed it) reaches the
agent, and like any task it survives an agent restart and is adopted by pid. ``--keep``
leaves the stopped container, and so its cgroups, until the agent has read them (an OOM
kill is counted there) and runs ``runc delete``.

runc creates the container's cgroups at ``pallet/<agent id>/<task id>`` below its own
cgroup in every hierarchy, which is the agent's (runc is its child): the same
directories the isolator created with the task's CPU and memory limits, so the limits,
usage and OOM counting of command tasks apply unchanged; runc adds the PIDs limit and
the device rules.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pallet.agent.bridge import BridgeNetwork, NetworkError, PortMapping
from pallet.agent.cgroups import own_hierarchies
from pallet.agent.images.config import Image, ImageError
from pallet.agent.images.overlay import RootFs, mount_overlay, unmount
from pallet.agent.images.store import ImageStore
from pallet.agent.isolation import Isolator
from pallet.agent.ocispec import (
    CONTAINER_SANDBOX,
    DEFAULT_PATH,
    BindMount,
    ContainerProcess,
    ImageUser,
    UserNotFound,
    capabilities_of,
    container_argv,
    resolve_image_user,
    runtime_config,
    working_dir,
)
from pallet.agent.users import TaskUser
from pallet.model import PalletError, TaskSpec
from pallet.model.limits import pids_max_of
from pallet.model.net import is_ip

__all__ = ["DEFAULT_PIDS_LIMIT", "ContainerError", "Containers", "container_id"]

log = logging.getLogger(__name__)

DEFAULT_PIDS_LIMIT = 4096
"""Processes and threads a container may have at once (``--container-pids-limit``)."""
_RUNC_MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_NOT_ID = re.compile(r"[^\w+.-]")


class ContainerError(PalletError):
    """A container could not be prepared; the message is the task's failure reason."""


def container_id(task_id: str) -> str:
    """runc's id for a task (runc allows letters, digits, ``_+-.``; task ids also ``:``)."""
    return _NOT_ID.sub("_", task_id)


def runc_message(line: str) -> str:
    """runc's error line without its log decoration."""
    found = _RUNC_MESSAGE.findall(line)
    return found[-1].encode().decode("unicode_escape") if found else line


class Containers:
    """The containers of one agent."""

    def __init__(
        self,
        directory: Path,
        store: ImageStore,
        *,
        agent_id: str,
        isolator: Isolator,
        hostname: str,
        pids_limit: int = DEFAULT_PIDS_LIMIT,
        runc: str | None = None,
        network: BridgeNetwork | None = None,
        networks: Mapping[str, BridgeNetwork] | None = None,
    ) -> None:
        self.directory = directory
        self.store = store
        self.agent_id = agent_id
        self.isolator = isolator
        self.hostname = hostname
        self.pids_limit = pids_limit
        self.runc = runc or shutil.which("runc") or "/usr/sbin/runc"
        self.state = directory.parent / "runc"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.mountpoints = make_mountpoints(store.root / "mountpoints")
        self.network = network or BridgeNetwork(
            directory.parent / "network",
            agent_id,
            host_address=hostname if is_ip(hostname) else None,
        )
        self.networks = dict(networks or {})
        """The named container networks of the agent (``--network``), by name."""

    # ------------------------------------------------------------ paths

    def bundle(self, task_id: str) -> Path:
        return self.directory / task_id

    def rootfs(self, task_id: str) -> RootFs:
        return RootFs(self.bundle(task_id))

    def upper_dir(self, task_id: str) -> Path:
        return self.rootfs(task_id).upper

    def cgroups_path(self, task_id: str) -> str:
        """runc's ``cgroupsPath``: v1 takes a path relative to runc's own cgroup in each
        hierarchy; v2 joins a relative path to the *parent* of its own, so it gets the
        absolute path of the task's directory in the unified tree."""
        if self.isolator.kind == "cgroup-v2":
            unified = self.isolator.paths(task_id)["unified"]
            with contextlib.suppress(ValueError):
                return "/" + str(unified.relative_to("/sys/fs/cgroup"))
        return f"pallet/{self.agent_id}/{task_id}"

    def pod_cgroups_path(self, task_id: str, key: str) -> str:
        """``cgroupsPath`` of a pod's container ``key``, whose ``runc run`` the pod's
        supervisor starts inside the task's cgroups. v1: a child of the task's cgroup in
        the agent's hierarchies (relative to runc's own cgroup, the task's), so the pod's
        limits hold it and its usage adds up to the pod's; in the other hierarchies the
        same name below the agent's cgroup. v2 keeps no process in an inner cgroup: the
        container shares the task's (Marathon's ``legacySharedCgroups``)."""
        if self.isolator.kind == "cgroup-v2":
            return self.cgroups_path(task_id)
        return f"pallet-{self.agent_id}-{container_id(key)}"

    # ------------------------------------------------------------ launching

    def image_of(self, spec: TaskSpec, cancelled: Callable[[], bool]) -> Image:
        """Pull (once per agent) and unpack ``spec``'s image; ContainerError says why not."""
        assert spec.container is not None
        ref = spec.container.reference
        assert ref is not None
        try:
            return self.store.ensure(ref, force=spec.container.force_pull, cancelled=cancelled)
        except ImageError as e:
            raise ContainerError(str(e)) from e

    def mount(self, spec: TaskSpec, image: Image) -> RootFs:
        """Mount the task's root filesystem (the image's layers under its own upper)."""
        return self.mount_key(spec.task_id, image)

    def mount_key(self, key: str, image: Image) -> RootFs:
        """Mount the root filesystem of the container ``key`` (a task id, or a pod
        container's ``pods.pod_container_key``)."""
        rootfs = self.rootfs(key)
        self.store.use(key, image.reference)
        try:
            mount_overlay([self.mountpoints, *self.store.layer_dirs(image)], rootfs)
        except ImageError as e:
            self.store.release(key)
            raise ContainerError(str(e)) from e
        return rootfs

    def user(self, spec: TaskSpec, image: Image, rootfs: RootFs) -> TaskUser:
        """Who the container runs as: the app's user, else the image's, else root,
        looked up in the image's own passwd and group files."""
        name = spec.user or image.config.user
        try:
            found = resolve_image_user(
                name,
                _read(rootfs.mountpoint / "etc/passwd"),
                _read(rootfs.mountpoint / "etc/group"),
            )
        except UserNotFound as e:
            raise ContainerError(f"{e} {image.reference}") from e
        home = "/"
        return TaskUser(name or "root", found.uid, found.gid, found.groups, home)

    def prepare(
        self,
        spec: TaskSpec,
        image: Image,
        user: TaskUser,
        sandbox: Path,
        task_env: Mapping[str, str],
        persistent: Sequence[tuple[str, str]] = (),
    ) -> list[str]:
        """Write the bundle of a task whose root filesystem is mounted; return the
        command that runs it (``runc run``). ``persistent``: (directory, containerPath)
        of its persistent volumes, mounted inside the sandbox."""
        assert spec.container is not None
        tid = spec.task_id
        bundle = self.bundle(tid)
        argv = container_argv(spec.cmd, spec.args, image.config.entrypoint, image.config.cmd)
        if not argv:
            raise ContainerError(
                f"image {image.reference} has no Entrypoint or Cmd, and the app sets no cmd or args"
            )
        env = {"PATH": DEFAULT_PATH, "HOME": "/", **image.config.env_map(), **task_env}
        cwd = working_dir(image.config.working_dir, spec.container.type)
        if cwd != CONTAINER_SANDBOX:
            with contextlib.suppress(OSError):
                (self.rootfs(tid).mountpoint / cwd.lstrip("/")).mkdir(parents=True, exist_ok=True)
        netns, address = None, None
        if spec.container.network != "host":
            network = self.network_of(spec)
            mappings = [
                PortMapping(p.container_port, host, p.protocol)
                for p, host in zip(spec.container.port_mappings, spec.ports, strict=True)
            ]
            try:
                address = network.attach(tid, mappings)
            except NetworkError as e:
                raise ContainerError(f"task {tid}: {e}") from e
            netns = network.netns_path(tid)
        files = self.etc_files(bundle, address)
        volumes = []
        for volume in spec.container.volumes:
            if not os.path.exists(volume.host_path):
                raise ContainerError(
                    f"volume hostPath {volume.host_path} does not exist on this node"
                )
            inside = volume.container_path
            if not inside.startswith("/"):
                inside = f"{CONTAINER_SANDBOX}/{inside}"
            volumes.append(BindMount(volume.host_path, inside, readonly=volume.mode == "RO"))
        for directory, inside in persistent:
            volumes.append(BindMount(directory, f"{CONTAINER_SANDBOX}/{inside}"))
        process = ContainerProcess(
            args=argv,
            env=env,
            cwd=cwd,
            user=ImageUser(user.uid, user.gid, tuple(g for g in user.groups if g != user.gid)),
            hostname=self.hostname,
            cgroups_path=self.cgroups_path(tid),
            pids_limit=pids_max_of(spec.labels) or self.pids_limit,
            mounts=(
                BindMount(str(sandbox), CONTAINER_SANDBOX),
                BindMount(str(files["hosts"]), "/etc/hosts", readonly=True),
                BindMount(str(files["hostname"]), "/etc/hostname", readonly=True),
                BindMount(str(files["resolv.conf"]), "/etc/resolv.conf", readonly=True),
                *volumes,
            ),
            nofile=resource.getrlimit(resource.RLIMIT_NOFILE),
            privileged=_own_capabilities() if spec.container.privileged else None,
            netns=netns,
        )
        config = bundle / "config.json"
        temp = config.with_suffix(".tmp")
        temp.unlink(missing_ok=True)
        # 0600: the environment in it may hold the task's secrets (runc reads it as root).
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(runtime_config(process)))
        temp.replace(config)
        return self.command("run", "--keep", "--bundle", str(bundle), container_id(tid))

    def network_of(self, spec: TaskSpec) -> BridgeNetwork:
        """The network a task off the host network joins: the agent's bridge, or the
        named container network (ContainerError when this agent has none of that name)."""
        assert spec.container is not None
        if spec.container.network == "bridge":
            return self.network
        name = spec.container.network_name
        found = self.networks.get(name)
        if found is None:
            have = ", ".join(sorted(self.networks)) or "none"
            raise ContainerError(
                f"container network {name} is not on this agent (its --network: {have})"
            )
        return found

    def addresses(self, task_id: str) -> tuple[str, ...]:
        """The task's own addresses on a named container network (none on the others)."""
        for network in self.networks.values():
            address = network.address(task_id)
            if address is not None:
                return (address,)
        return ()

    def etc_files(self, bundle: Path, address: str | None = None) -> dict[str, Path]:
        files = {
            "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "hostname": f"{self.hostname}\n",
            "resolv.conf": _read(Path("/etc/resolv.conf")) or "nameserver 127.0.0.1\n",
        }
        if address is not None:
            files["hosts"] += f"{address}\t{self.hostname}\n"
        elif not is_ip(self.hostname):
            files["hosts"] += f"127.0.1.1\t{self.hostname}\n"
        out = {}
        for name, text in files.items():
            path = bundle / name
            path.write_text(text)
            path.chmod(0o644)
            out[name] = path
        return out

    def command(self, *args: str) -> list[str]:
        return [self.runc, "--root", str(self.state), *args]

    def exec_argv(self, task_id: str, argv: list[str], user: TaskUser | None = None) -> list[str]:
        """Run ``argv`` in the task's container (its namespaces, cgroups, environment)."""
        extra = ["--user", f"{user.uid}:{user.gid}"] if user is not None else []
        return self.command("exec", *extra, container_id(task_id), *argv)

    # ------------------------------------------------------------ ending

    def cleanup(self, task_id: str) -> None:
        """Delete the stopped container (its cgroups in every hierarchy), unmount and
        remove its root filesystem and bundle. Errors are logged, never raised."""
        cid = container_id(task_id)
        done = subprocess.run(
            self.command("delete", "--force", cid), capture_output=True, text=True
        )
        if done.returncode != 0 and "does not exist" not in done.stderr:
            log.warning("task %s: runc delete: %s", task_id, runc_message(done.stderr.strip()))
        try:
            unmount(self.rootfs(task_id).mountpoint)
        except ImageError as e:
            log.warning("task %s: %s", task_id, e)
        shutil.rmtree(self.bundle(task_id), ignore_errors=True)
        for network in (self.network, *self.networks.values()):
            if network.address(task_id) is not None:
                network.detach(task_id)
        self.store.release(task_id)

    def adopt(self, spec: TaskSpec) -> None:
        """An adopted task runs its image: keep the image from collection."""
        if spec.container is not None and (ref := spec.container.reference) is not None:
            self.store.use(spec.task_id, str(ref))

    def sweep(self, keep: frozenset[str]) -> list[str]:
        """Remove the containers an earlier run left that are not ``keep`` (nor a
        container of a pod instance in ``keep``: ``<task id>+<name>``)."""
        gone = []
        for bundle in sorted(self.directory.iterdir()) if self.directory.is_dir() else []:
            if bundle.name not in keep and bundle.name.partition("+")[0] not in keep:
                self.cleanup(bundle.name)
                gone.append(bundle.name)
        for network in (self.network, *self.networks.values()):
            network.sweep(keep)
        return gone

    def close(self) -> None:
        """Remove ``pallet/<agent id>`` (and ``pallet`` if empty) in the hierarchies only
        runc uses (devices, freezer, blkio ...): the isolator removes its own."""
        for h in own_hierarchies():
            for d in (h.directory / "pallet" / self.agent_id, h.directory / "pallet"):
                with contextlib.suppress(OSError):
                    d.rmdir()
        for network in (self.network, *self.networks.values()):
            network.close()


_MOUNT_DIRS = ("proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc", "mnt/mesos/sandbox")
_MOUNT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def make_mountpoints(directory: Path) -> Path:
    """A layer of the empty directories and files runc mounts over, topmost below every
    task's upper dir, shared by all: without it runc creates them in each task's upper
    dir (40 KiB of directory blocks per task instead of the 12 that overlayfs needs)."""
    for name in _MOUNT_DIRS:
        (directory / name).mkdir(parents=True, exist_ok=True)
    for name in _MOUNT_FILES:
        (directory / name).touch()
    return directory


def _own_capabilities() -> tuple[str, ...]:
    """The capabilities this agent may hand on (its bounding set)."""
    for line in _read(Path("/proc/self/status")).splitlines():
        if line.startswith("CapBnd:"):
            return capabilities_of(int(line.split()[1], 16))
    return ()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
