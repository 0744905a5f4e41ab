"""Everything a task needs before its process starts: who it runs as, its sandbox, its
persistent volumes, its fetched URIs and, with an image, its root filesystem and runc bundle; does I/O.

The order is Mesos': the image is pulled and the container's root filesystem mounted
(its user is looked up in the image), the sandbox is created and owned by the task's
user, the URIs are fetched into it, and the bundle is written. What went wrong is the
``LaunchError`` the task fails with; a kill meanwhile (``cancelled()``) stops it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pallet.agent.containers import ContainerError, Containers
from pallet.agent.environment import with_secrets
from pallet.agent.fetcher import Fetcher, FetchError
from pallet.agent.logs import LogStream
from pallet.agent.secretfiles import Fetch, SecretDeliveryError, deliver_secrets
from pallet.agent.users import TaskUser, TaskUsers, UnknownUser, dynamic_user
from pallet.agent.volumes import PersistentVolumes, VolumeError
from pallet.model import PalletError, TaskSpec, ValidationError, check_task_id
from pallet.model.limits import pids_max_of

__all__ = ["LaunchError", "Staged", "Stager"]

log = logging.getLogger(__name__)


_LOGS = (LogStream.STDOUT.value, LogStream.STDERR.value)
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC


class LaunchError(PalletError):
    """A task could not be started; the message says what failed."""


@dataclass(frozen=True, slots=True)
class Staged:
    """A task ready to start: its sandbox, its user, and for a container the command
    that runs it (``runc run``); None for a command task."""

    sandbox: Path
    user: TaskUser
    runc: list[str] | None = None
    env: dict[str, str] | None = None
    """A command task's environment when it has secrets (None: the executor's own)."""


class Stager:
    """Stages the tasks of one agent."""

    def __init__(
        self,
        sandbox_root: Path,
        *,
        task_user: str | None,
        fetcher: Callable[[], Fetcher],
        containers: Callable[[], Containers],
        environment: Callable[[TaskSpec], Mapping[str, str]],
        volumes: PersistentVolumes | None = None,
    ) -> None:
        self.sandbox_root = sandbox_root
        _searchable_only(sandbox_root)
        self.volumes = volumes or PersistentVolumes(sandbox_root.parent / "volumes")
        self.task_user = task_user
        self.allowed_users: frozenset[str] | None = None
        """The users an app's ``user`` may name besides ``task_user`` (the agent's
        ``--allow-task-user``; ``*`` any); None: any."""
        self.dynamic_users = False
        """A task whose app names no user runs as its app's own user (``dynamic_user``),
        not as ``task_user`` (``--dynamic-task-users``)."""
        self._fetcher = fetcher
        self._containers = containers
        self._environment = environment
        self.secrets: Fetch | None = None
        """Asks the master for a task's secret values (set by the daemon once connected)."""
        self.users = TaskUsers()

    def sandbox(self, task_id: str) -> Path:
        return self.sandbox_root / check_task_id(task_id)

    def user_of(self, spec: TaskSpec) -> TaskUser:
        """Who a command task runs as (its ``user``, else the agent's task user, else the
        agent's own); ``UnknownUser`` if this node has no such user, cannot switch, or
        the operator does not allow it."""
        self.check_allowed(spec.user)
        if spec.user is None and self.dynamic_users:
            return dynamic_user(spec.app_id or spec.task_id)
        return self.users.resolve(spec.user or self.task_user)

    def check_allowed(self, name: str | None) -> None:
        """``UnknownUser`` when an app names a user the operator does not allow here."""
        allowed = self.allowed_users
        if name is None or allowed is None or "*" in allowed or name == self.task_user:
            return
        if name not in allowed:
            others = ", ".join(sorted(allowed - {self.task_user or ""})) or "none"
            raise UnknownUser(
                f"user {name!r} is not allowed on this node (the operator allows "
                f"{self.task_user or 'the agent user'} and: {others}; --allow-task-user)"
            )

    def make_sandbox(self, task_id: str, user: TaskUser) -> Path:
        """Create the task's sandbox and its ``stdout``/``stderr``, owned by ``user`` (as
        Mesos chowns a sandbox to the task's user) and closed to every other user (0700:
        no task reads a sibling's files or output); LaunchError says what failed."""
        sandbox = self.sandbox(task_id)
        directory = os.fspath(sandbox)
        switch = not user.is_agent
        try:
            try:
                os.mkdir(directory, 0o700)
            except FileNotFoundError:
                sandbox.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                pass
            os.chmod(directory, 0o700)  # made under a umask, or made before
            for name in _LOGS:
                fd = os.open(f"{directory}/{name}", _LOG_FLAGS, 0o666)
                try:
                    if switch:
                        os.fchown(fd, user.uid, user.gid)
                finally:
                    os.close(fd)
            if switch:
                os.chown(directory, user.uid, user.gid)
        except OSError as e:
            raise LaunchError(
                f"task {task_id}: cannot create sandbox {sandbox}: {e.strerror}"
            ) from e
        return sandbox

    def stage(self, spec: TaskSpec, cancelled: Callable[[], bool]) -> Staged:
        tid = spec.task_id
        try:
            pids_max_of(spec.labels)  # the master refuses a bad one; a job's is checked here
            self.check_allowed(spec.user)  # a container's too
        except ValidationError as e:
            raise LaunchError(f"task {tid}: label {e.field.rsplit('/', 1)[-1]}: {e.message}") from e
        except UnknownUser as e:
            raise LaunchError(f"task {tid}: {e}") from e
        if spec.container is None or spec.container.image is None:
            try:
                user = self.user_of(spec)
            except UnknownUser as e:
                raise LaunchError(f"task {tid}: {e}") from e
            sandbox = self.make_sandbox(tid, user)
            secret_env = self._secrets(spec, sandbox, user)
            self._attach(spec, sandbox, user, link=True)
            self._fetch(spec, sandbox, user, cancelled)
            if not spec.secrets:
                return Staged(sandbox, user)
            return Staged(sandbox, user, env=with_secrets(self._environment(spec), secret_env))
        containers = self._containers()
        try:
            image = containers.image_of(spec, cancelled)
        except ContainerError as e:
            raise LaunchError(str(e)) from e
        if cancelled():
            raise LaunchError(f"task {tid}: killed while its image was pulled")
        try:
            rootfs = containers.mount(spec, image)
        except ContainerError as e:
            raise LaunchError(str(e)) from e
        try:
            user = containers.user(spec, image, rootfs)
            sandbox = self.make_sandbox(tid, user)
            secret_env = self._secrets(spec, sandbox, user)
            directories = self._attach(spec, sandbox, user, link=False)
            self._fetch(spec, sandbox, user, cancelled)
            mounts = [
                (str(d), v.container_path)
                for d, v in zip(directories, spec.persistent_volumes, strict=True)
            ]
            env = with_secrets(self._environment(spec), secret_env)
            argv = containers.prepare(spec, image, user, sandbox, env, persistent=mounts)
        except (ContainerError, LaunchError) as e:
            containers.cleanup(tid)
            raise LaunchError(str(e)) from e
        except BaseException:
            containers.cleanup(tid)
            raise
        return Staged(sandbox, user, argv)

    def _secrets(self, spec: TaskSpec, sandbox: Path, user: TaskUser) -> dict[str, str]:
        """Fetch the task's secrets, write its secret files, return its secret variables."""
        try:
            return deliver_secrets(spec, self.secrets, sandbox, user)
        except SecretDeliveryError as e:
            raise LaunchError(str(e)) from e

    def _attach(self, spec: TaskSpec, sandbox: Path, user: TaskUser, *, link: bool) -> list[Path]:
        if not spec.persistent_volumes:
            return []
        try:
            return self.volumes.attach(spec, sandbox, user, link=link)
        except VolumeError as e:
            raise LaunchError(str(e)) from e

    def _fetch(
        self, spec: TaskSpec, sandbox: Path, user: TaskUser, cancelled: Callable[[], bool]
    ) -> None:
        if spec.fetch:
            try:
                self._fetcher().fetch(spec.fetch, sandbox, user, cancelled)
            except FetchError as e:
                raise LaunchError(str(e)) from e
        if cancelled():
            raise LaunchError(f"task {spec.task_id}: killed while it was being prepared")


def _searchable_only(directory: Path) -> None:
    """Let other users pass through ``directory`` to a sandbox they own, not list it
    (0711): a task cannot enumerate its siblings."""
    try:
        directory.chmod(0o711)
    except OSError as e:
        log.warning("cannot make %s unlistable to tasks: %s", directory, e.strerror)
