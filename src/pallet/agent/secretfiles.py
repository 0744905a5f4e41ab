"""Putting a task's secrets where it reads them: its environment, and files in its sandbox
(0400, owned by the task's user); does I/O (writes the sandbox).

The values come from the master for one task at its launch (``Fetch``) and go nowhere
else: not in the launch spec, the checkpoint or a log line. A file is created below the
sandbox one component at a time without following links (a fresh sandbox has none, but
a persistent volume or an earlier file of the same task could be one), with ``O_EXCL``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pallet.agent.users import TaskUser
from pallet.model import PalletError, TaskSpec

__all__ = ["Fetch", "SecretDeliveryError", "deliver_secrets", "write_secret_file"]

Fetch = Callable[[TaskSpec], Mapping[str, str]]
"""The values of a task's secrets by source path, asked of the master (blocking)."""

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class SecretDeliveryError(PalletError):
    """A task's secrets could not be fetched or put in place; the task fails to launch."""


def write_secret_file(sandbox: Path, relative: str, value: str, user: TaskUser) -> None:
    """``value`` in ``<sandbox>/<relative>``, mode 0400, owned by ``user``; the directories
    on the way are made (0700, owned by ``user``) and none may be a link."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SecretDeliveryError(f"{relative!r} is not a path inside the sandbox")
    fd = os.open(sandbox, _DIR)
    try:
        for name in parts[:-1]:
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
                if not user.is_agent:
                    os.chown(name, user.uid, user.gid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise SecretDeliveryError(f"{relative}: {name} is a link or a file") from None
                raise
            os.close(fd)
            fd = child
        try:
            out = os.open(parts[-1], _FILE, 0o400, dir_fd=fd)
        except FileExistsError:
            raise SecretDeliveryError(f"{relative} exists already in the sandbox") from None
        try:
            os.write(out, value.encode())
            os.fchmod(out, 0o400)
            if not user.is_agent:
                os.fchown(out, user.uid, user.gid)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def deliver_secrets(
    spec: TaskSpec, fetch: Fetch | None, sandbox: Path, user: TaskUser
) -> dict[str, str]:
    """Fetch ``spec``'s secrets, write its secret files, and return its secret
    environment variables (name -> value)."""
    if not spec.secrets:
        return {}
    if fetch is None:
        raise SecretDeliveryError(f"task {spec.task_id}: this agent cannot fetch secrets")
    try:
        values = fetch(spec)
    except PalletError as e:
        raise SecretDeliveryError(f"task {spec.task_id}: {e}") from e
    env = {}
    for ref in spec.secrets:
        if ref.source not in values:
            raise SecretDeliveryError(f"task {spec.task_id}: no value for secret {ref.source}")
        if ref.env is not None:
            env[ref.env] = values[ref.source]
        elif ref.file is not None:
            try:
                write_secret_file(sandbox, ref.file, values[ref.source], user)
            except OSError as e:
                raise SecretDeliveryError(
                    f"task {spec.task_id}: cannot write secret file {ref.file}: {e.strerror}"
                ) from e
    return env
