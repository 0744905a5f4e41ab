"""Where this process's cgroups live on disk: ``/proc/self/cgroup`` joined with
``/proc/self/mountinfo``, for cgroup v1 hierarchies and the v2 tree. The parsers are
pure; ``own_hierarchies`` reads ``/proc``.

A cgroup path in ``/proc/self/cgroup`` is relative to the hierarchy's root, and a
mount may show only a subtree of it (its ``root`` field in mountinfo, as in containers
that bind-mount their own cgroup), so the directory is ``mount point + (path - root)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Hierarchy", "Mount", "locate", "own_hierarchies", "parse_mountinfo"]

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    """One cgroup filesystem mount from mountinfo."""

    root: str
    point: str
    fstype: str
    options: frozenset[str]


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """One hierarchy this process belongs to, and its cgroup there.

    ``controllers`` are the v1 controllers bound to the hierarchy (``{"cpu"}``,
    ``{"cpu", "cpuacct"}``); for v2 they are left empty here and read from
    ``cgroup.controllers`` by whoever needs them."""

    version: int
    controllers: frozenset[str]
    cgroup: str
    directory: Path


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts listed in ``/proc/<pid>/mountinfo``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 4 or sep < 5:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(fields[sep + 3].split(","))
        mounts.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fstype, options))
    return mounts


def _relative(cgroup: str, root: str) -> str | None:
    """``cgroup`` below mount ``root``, or None if the mount does not show it."""
    if root == "/":
        return cgroup.lstrip("/")
    if cgroup == root:
        return ""
    if cgroup.startswith(root.rstrip("/") + "/"):
        return cgroup[len(root.rstrip("/")) + 1 :]
    return None


def locate(proc_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """Join ``/proc/self/cgroup`` with mountinfo. Hierarchies that are not mounted, or
    whose mount does not show this process's cgroup, are left out."""
    mounts = parse_mountinfo(mountinfo)
    found = []
    for line in proc_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy_id, names, cgroup = parts
        if hierarchy_id == "0" and names == "":
            version, controllers = 2, frozenset[str]()
            candidates = [m for m in mounts if m.fstype == "cgroup2"]
        else:
            version, controllers = 1, frozenset(filter(None, names.split(",")))
            candidates = [m for m in mounts if m.fstype == "cgroup" and controllers <= m.options]
        for mount in sorted(candidates, key=lambda m: len(m.root)):
            rest = _relative(cgroup, mount.root)
            if rest is not None:
                directory = Path(mount.point, rest) if rest else Path(mount.point)
                found.append(Hierarchy(version, controllers, cgroup, directory))
                break
    return found


def own_hierarchies(proc_self: str | Path = "/proc/self") -> list[Hierarchy]:
    """The hierarchies of the calling process (``proc_self`` is replaceable for tests)."""
    base = Path(proc_self)
    try:
        return locate((base / "cgroup").read_text(), (base / "mountinfo").read_text())
    except OSError:
        return []
