"""The agent's side of a pod instance: its volumes and per-container log directories in
the sandbox, and for containers with an image their root filesystems and runc bundles;
does I/O.

The instance's main process stays the pod's supervisor (``model.pods``), in the task's
cgroups. A command container is a process the supervisor starts; a container with an
image is a ``runc run`` the supervisor starts, in a bundle the agent wrote beforehand:
the image's layers under its own upper dir (``containers/<task id>+<name>``), the
instance's sandbox at ``/mnt/mesos/sandbox``, the host's network (every container of the
pod shares it, as Marathon's host-networked pods do), and its volume mounts. runc needs
root, so a pod with an image runs its supervisor as the agent's user, and its command
containers switch to the pod's user themselves (``setpriv``).

Volumes live in the sandbox (ephemeral: ``volumes/<name>``; a relative host volume: that
path) or on the node (an absolute host volume, which must exist): an image container gets
them bind-mounted (read-only when asked), a command container as a symlink at its
relative ``mountPath`` in the sandbox, which the pod's command containers share.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pallet.agent.containers import ContainerError, Containers, container_id
from pallet.agent.exits import sandbox_bytes
from pallet.agent.fetcher import Fetcher, FetchError
from pallet.agent.images.config import ImageError
from pallet.agent.logs import LogStream
from pallet.agent.ocispec import (
    CONTAINER_SANDBOX,
    DEFAULT_PATH,
    BindMount,
    ContainerProcess,
    ImageUser,
    container_argv,
    runtime_config,
    working_dir,
)
from pallet.agent.staging import LaunchError, Staged, Stager
from pallet.agent.users import TaskUser, UnknownUser, agent_user
from pallet.model import TaskSpec, ValidationError
from pallet.model.images import parse_image
from pallet.model.limits import pids_max_of
from pallet.model.pods import PodContainer, PodMount, container_log, pod_argv, volume_source

__all__ = ["PodStager", "has_images", "pod_container_key"]

log = logging.getLogger(__name__)


def pod_container_key(task_id: str, name: str) -> str:
    """The bundle and runc id of a pod's container with an image (``+`` is in no task
    id, so it names no other task's container)."""
    return f"{task_id}+{name}"


def has_images(spec: TaskSpec) -> bool:
    return any(c.image is not None for c in spec.containers)


class PodStager:
    """Prepares and cleans up the pod instances of one agent."""

    def __init__(
        self,
        stager: Stager,
        *,
        containers: Callable[[], Containers],
        fetcher: Callable[[], Fetcher],
        container_environment: Callable[[TaskSpec], Mapping[str, str]],
    ) -> None:
        self._stager = stager
        self._containers = containers
        self._fetcher = fetcher
        self._environment = container_environment

    # ------------------------------------------------------------ the sandbox

    def prepare_sandbox(self, spec: TaskSpec, sandbox: Path, user: TaskUser) -> None:
        """Each container's log directory, the instance's volumes and the command
        containers' mounts; LaunchError says what is missing. The agent is root and the
        sandbox holds what the pod's artifacts unpacked: no path is followed through a
        symlink there (one could point anywhere on the node)."""
        tid = spec.task_id
        try:
            for c in spec.containers:
                _no_symlink(sandbox, container_log(c.name, "stdout"))
                _no_symlink(sandbox, container_log(c.name, "stderr"))
                directory = sandbox / container_log(c.name, "")
                directory.mkdir(parents=True, exist_ok=True)
                _own(directory.parent, user)
                _own(directory, user)
                for stream in (LogStream.STDOUT.value, LogStream.STDERR.value):
                    path = sandbox / container_log(c.name, stream)
                    path.touch()
                    _own(path, user)
            for mount in _mounts(spec.containers):
                source = Path(volume_source(mount, str(sandbox)))
                if mount.host is not None and mount.host.startswith("/"):
                    if not source.exists():
                        raise LaunchError(
                            f"task {tid}: volume {mount.name}: host path {mount.host} does not "
                            "exist on this node"
                        )
                    continue
                _no_symlink(sandbox, str(source.relative_to(sandbox)))
                _make_dirs(source, sandbox, user)
            for c in spec.containers:
                if c.image is None:
                    for mount in c.mounts:
                        target = Path(volume_source(mount, str(sandbox)))
                        _no_symlink(sandbox, mount.path, last_may_be=target)
                        _link(sandbox / mount.path, target, sandbox)
                        _own_parents(sandbox / mount.path, sandbox, user)
        except OSError as e:
            raise LaunchError(f"task {tid}: cannot prepare the pod's sandbox: {e}") from e

    # ------------------------------------------------------------ images

    def stage(self, spec: TaskSpec, cancelled: Callable[[], bool]) -> tuple[Staged, list[str]]:
        """Stage a pod instance with images: its sandbox, artifacts, volumes and every
        image container's bundle; return it staged (to run as the agent's user) and the
        supervisor's command line. On failure nothing is left mounted."""
        tid = spec.task_id
        try:
            pids_max_of(spec.labels)  # the master refuses a bad one
            user = self._stager.user_of(spec)
        except ValidationError as e:
            raise LaunchError(f"task {tid}: label {e.field.rsplit('/', 1)[-1]}: {e.message}") from e
        except UnknownUser as e:
            raise LaunchError(f"task {tid}: {e}") from e
        sandbox = self._stager.make_sandbox(tid, user)
        if spec.fetch:
            try:
                self._fetcher().fetch(spec.fetch, sandbox, user, cancelled)
            except FetchError as e:
                raise LaunchError(str(e)) from e
        self.prepare_sandbox(spec, sandbox, user)
        words: dict[str, Sequence[str]] = {}
        try:
            for c in spec.containers:
                if cancelled():
                    raise LaunchError(f"task {tid}: killed while it was being prepared")
                if c.image is not None:
                    words[c.name] = self._bundle(spec, c, sandbox, cancelled)
                elif not user.is_agent:
                    words[c.name] = (*_setpriv(user), *c.words)
        except BaseException:
            self.cleanup(spec)
            raise
        argv = list(pod_argv(spec.containers, spec.kill_grace_seconds, words))
        return Staged(sandbox, agent_user()), argv

    def _bundle(
        self, spec: TaskSpec, c: PodContainer, sandbox: Path, cancelled: Callable[[], bool]
    ) -> list[str]:
        """Pull, mount and write the bundle of ``c``; return its ``runc run``."""
        assert c.image is not None
        containers = self._containers()
        key = pod_container_key(spec.task_id, c.name)
        try:
            image = containers.store.ensure(
                parse_image(c.image, "/image/id"), force=c.force_pull, cancelled=cancelled
            )
        except ImageError as e:
            raise LaunchError(f"task {spec.task_id}: container {c.name}: {e}") from e
        if cancelled():
            raise LaunchError(f"task {spec.task_id}: killed while its images were pulled")
        try:
            rootfs = containers.mount_key(key, image)
        except ContainerError as e:
            raise LaunchError(f"task {spec.task_id}: container {c.name}: {e}") from e
        try:
            found = containers.user(spec, image, rootfs)
        except ContainerError as e:
            raise LaunchError(f"task {spec.task_id}: container {c.name}: {e}") from e
        if c.shell is not None:
            argv = container_argv(c.shell, (), (), ())
        elif c.override_entrypoint:
            argv = c.argv
        else:
            argv = container_argv(None, c.argv, image.config.entrypoint, image.config.cmd)
        if not argv:
            raise LaunchError(
                f"task {spec.task_id}: container {c.name}: image {image.reference} has no "
                "Entrypoint or Cmd, and the container no exec.command"
            )
        env = {
            "PATH": DEFAULT_PATH,
            "HOME": "/",
            **image.config.env_map(),
            **self._environment(spec),
            **c.env,
        }
        cwd = working_dir(image.config.working_dir, "MESOS")
        if cwd != CONTAINER_SANDBOX:
            with contextlib.suppress(OSError):
                (rootfs.mountpoint / cwd.lstrip("/")).mkdir(parents=True, exist_ok=True)
        bundle = containers.bundle(key)
        files = containers.etc_files(bundle)
        volumes = tuple(
            BindMount(
                volume_source(m, str(sandbox)),
                m.path if m.path.startswith("/") else f"{CONTAINER_SANDBOX}/{m.path}",
                readonly=m.read_only,
            )
            for m in c.mounts
        )
        process = ContainerProcess(
            args=tuple(argv),
            env=env,
            cwd=cwd,
            user=ImageUser(found.uid, found.gid, found.groups),
            hostname=containers.hostname,
            cgroups_path=containers.pod_cgroups_path(spec.task_id, key),
            pids_limit=pids_max_of(spec.labels) or containers.pids_limit,
            mounts=(
                BindMount(str(sandbox), CONTAINER_SANDBOX),
                BindMount(str(files["hosts"]), "/etc/hosts", readonly=True),
                BindMount(str(files["hostname"]), "/etc/hostname", readonly=True),
                BindMount(str(files["resolv.conf"]), "/etc/resolv.conf", readonly=True),
                *volumes,
            ),
            nofile=resource.getrlimit(resource.RLIMIT_NOFILE),
        )
        config = bundle / "config.json"
        temp = config.with_suffix(".tmp")
        temp.write_text(json.dumps(runtime_config(process)))
        temp.replace(config)
        return containers.command("run", "--keep", "--bundle", str(bundle), container_id(key))

    # ------------------------------------------------------------ the rest of its life

    def exec_key(self, spec: TaskSpec, check_index: int) -> str | None:
        """The runc id a COMMAND health check runs in: that of the container the check
        belongs to when it has an image; None: on the node, as the pod's user."""
        owners = [c for c in spec.containers if c.health_checked]
        if 0 <= check_index < len(owners) and owners[check_index].image is not None:
            return pod_container_key(spec.task_id, owners[check_index].name)
        return None

    def adopt(self, spec: TaskSpec) -> None:
        """An adopted instance runs its images: keep them from collection."""
        if not has_images(spec):
            return
        store = self._containers().store
        for c in spec.containers:
            if c.image is not None:
                store.use(pod_container_key(spec.task_id, c.name), str(parse_image(c.image)))

    def disk_bytes(self, spec: TaskSpec) -> int:
        """What the instance's image containers wrote to their root filesystems."""
        if not has_images(spec):
            return 0
        containers = self._containers()
        return sum(
            sandbox_bytes(containers.upper_dir(pod_container_key(spec.task_id, c.name)))
            for c in spec.containers
            if c.image is not None
        )

    def cleanup(self, spec: TaskSpec) -> None:
        """Delete the instance's stopped containers and their root filesystems (errors
        are logged, never raised)."""
        if not has_images(spec):
            return
        containers = self._containers()
        for c in spec.containers:
            if c.image is not None:
                containers.cleanup(pod_container_key(spec.task_id, c.name))

    def sweep(self, keep: frozenset[str]) -> list[str]:
        """Delete the pod containers an earlier run left whose instance is not ``keep``:
        before the task cgroups are swept, as they hold the containers' own."""
        containers = self._containers()
        gone = []
        directory = containers.directory
        for bundle in sorted(directory.iterdir()) if directory.is_dir() else []:
            tid, plus, _ = bundle.name.partition("+")
            if plus and tid not in keep:
                containers.cleanup(bundle.name)
                gone.append(bundle.name)
        return gone


def _no_symlink(sandbox: Path, relative: str, last_may_be: Path | None = None) -> None:
    """Raise OSError when a component of ``relative`` below ``sandbox`` is a symlink (but
    a last one that is our own link to ``last_may_be``)."""
    parts = Path(relative).parts
    for i in range(len(parts)):
        path = sandbox.joinpath(*parts[: i + 1])
        if path.is_symlink():
            if i == len(parts) - 1 and last_may_be is not None:
                target = os.readlink(path)
                mine = os.path.relpath(last_may_be, path.parent)
                if target in (mine, str(last_may_be)):
                    return
            raise OSError(f"{relative} is a symlink in the sandbox ({'/'.join(parts[: i + 1])})")


def _mounts(containers: Sequence[PodContainer]) -> list[PodMount]:
    seen: dict[str, PodMount] = {}
    for c in containers:
        for m in c.mounts:
            seen.setdefault(m.name, m)
    return list(seen.values())


def _make_dirs(path: Path, sandbox: Path, user: TaskUser) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _own_parents(path, sandbox, user)


def _own_parents(path: Path, sandbox: Path, user: TaskUser) -> None:
    """Chown ``path`` and its parents below ``sandbox`` to ``user`` (not following a
    symlink: it points at a volume already owned)."""
    if user.is_agent:
        return
    for p in [path, *path.parents]:
        if p == sandbox or sandbox not in p.parents:
            break
        with contextlib.suppress(FileNotFoundError):
            os.chown(p, user.uid, user.gid, follow_symlinks=False)


def _own(path: Path, user: TaskUser) -> None:
    if not user.is_agent:
        os.chown(path, user.uid, user.gid)


def _link(at: Path, target: Path, sandbox: Path) -> None:
    """A symlink ``at`` -> ``target`` (already there when another container of the pod
    mounts the same volume at the same path)."""
    at.parent.mkdir(parents=True, exist_ok=True)
    if str(target).startswith(str(sandbox) + "/"):  # relative: reachable from the sandbox
        target = Path(os.path.relpath(target, at.parent))  # without searching its parents
    if at.is_symlink() and os.readlink(at) == str(target):
        return
    at.symlink_to(target)  # FileExistsError when an artifact took the path


def _setpriv(user: TaskUser) -> tuple[str, ...]:
    """The words that switch to ``user`` before a command container's own."""
    groups = ",".join(str(g) for g in user.groups)
    return (
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--",
    )
