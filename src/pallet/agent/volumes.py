"""Local persistent volumes on an agent: a directory each under ``<work dir>/volumes``
(``root`` volumes) or ``<disk root>/pallet-volumes`` (``path`` and ``mount`` volumes, on
the operator's disks: ``--disk-path``, ``--disk-mount``), made at the first launch of
the instance slot that owns it, put into each of its tasks' sandboxes, kept across task
and agent restarts, deleted once the master no longer reserves it; does I/O.

A command task finds the volume at ``<sandbox>/<containerPath>`` as a symlink (it runs
in the host's mount namespace); a container gets it bind-mounted at
``$MESOS_SANDBOX/<containerPath>`` (``volume_mounts``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from pallet.agent.users import TaskUser
from pallet.model import PersistentVolume, TaskSpec

__all__ = ["PersistentVolumes", "VolumeError"]

log = logging.getLogger(__name__)


class VolumeError(Exception):
    """A volume could not be made or put into a sandbox; the message says why."""


DISK_VOLUMES = "pallet-volumes"
"""The directory of an operator's disk that holds its volumes."""


class PersistentVolumes:
    def __init__(self, root: Path, disk_roots: Iterable[str] = ()) -> None:
        """``disk_roots``: the operator's disks of the agent (``Node.disks``)."""
        self.root = root
        self.disk_roots = tuple(disk_roots)

    def _base(self, volume: PersistentVolume) -> Path:
        return Path(volume.source) / DISK_VOLUMES if volume.source else self.root

    def path(self, volume: PersistentVolume) -> Path:
        """The volume's directory (its id is checked by ``PersistentVolume``)."""
        return self._base(volume) / volume.id

    def _bases(self) -> list[Path]:
        return [self.root, *(Path(r) / DISK_VOLUMES for r in self.disk_roots)]

    def attach(self, spec: TaskSpec, sandbox: Path, user: TaskUser, *, link: bool) -> list[Path]:
        """Make the task's volumes that do not exist yet (owned by its user) and, with
        ``link``, symlink each into the sandbox; returns their directories, in order."""
        out = []
        for volume in spec.persistent_volumes:
            directory = self.path(volume)
            base = self._base(volume)
            try:
                if volume.source and volume.source not in self.disk_roots:
                    raise VolumeError(
                        f"task {spec.task_id}: persistent volume {volume.container_path}: "
                        f"the disk {volume.source} is not this agent's (--disk-path, --disk-mount)"
                    )
                if not directory.is_dir():
                    base.mkdir(parents=True, exist_ok=True)
                    fresh = base / f".new-{volume.id}"
                    shutil.rmtree(fresh, ignore_errors=True)
                    fresh.mkdir(mode=0o755)
                    if not user.is_agent:
                        os.chown(fresh, user.uid, user.gid)
                    fresh.rename(directory)
                    log.info("task %s: created persistent volume %s", spec.task_id, volume.id)
                inside = sandbox / volume.container_path
                if link:
                    if inside.is_symlink() and os.readlink(inside) == str(directory):
                        pass
                    else:
                        inside.symlink_to(directory, target_is_directory=True)
                else:
                    inside.mkdir(exist_ok=True)
            except OSError as e:
                raise VolumeError(
                    f"task {spec.task_id}: persistent volume {volume.container_path}: "
                    f"{e.strerror or e}"
                ) from e
            out.append(directory)
        return out

    def ids(self) -> set[str]:
        """The volumes on this node."""
        return set(self._where())

    def _where(self) -> dict[str, Path]:
        found = {}
        for base in self._bases():
            if base.is_dir():
                found.update({p.name: p for p in base.iterdir() if not p.name.startswith(".")})
        return found

    def prune(self, reserved: Iterable[str], in_use: Iterable[str] = ()) -> list[str]:
        """Delete the volumes the master no longer reserves (Mesos' DESTROY), but never
        one a task of this agent still uses; returns the ids deleted."""
        keep = set(reserved) | set(in_use)
        where = self._where()
        gone = sorted(set(where) - keep)
        for volume_id in gone:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(where[volume_id])
            log.info("destroyed persistent volume %s (no longer reserved)", volume_id)
        return gone
