"""The OCI runtime config (``config.json``) the agent writes for runc, and the rules that
combine an image's Entrypoint/Cmd/Env/WorkingDir/User with the app's; pure.

What to run, as Marathon hands it to Mesos (``cmd`` is a shell command; ``args`` are
arguments, not a program, when there is a container) and as both Mesos containerizers
then run it:

=================  =====================================================
app sets           the container runs
=================  =====================================================
``cmd``            ``/bin/sh -c <cmd>`` (the image's Entrypoint and Cmd ignored)
``args``           the image's Entrypoint + ``args`` (``args`` alone if it has none)
neither            the image's Entrypoint + Cmd
=================  =====================================================

Environment: the image's ``Env``, then the task's variables and the app's ``env`` (which
win), with ``MESOS_SANDBOX`` the sandbox's path inside the container. Working directory:
the image's ``WorkingDir``, else the sandbox (``MESOS``) or ``/`` (``DOCKER``, as the
Docker containerizer leaves it). User: the app's ``user``, else the image's ``User``,
else root, resolved in the image's own ``/etc/passwd`` and ``/etc/group``.

Isolation: new mount, PID, IPC and UTS namespaces (the host's network), the task's
cgroups (nested under the agent's, with its CPU and memory limits and a PIDs limit),
Docker's default capabilities (none effective for a non-root user), runc's default
device rules, masked and read-only ``/proc`` paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pallet.model import PalletError

__all__ = [
    "CAPABILITY_BITS",
    "CONTAINER_SANDBOX",
    "DEFAULT_PATH",
    "BindMount",
    "ContainerProcess",
    "ImageUser",
    "UserNotFound",
    "capabilities_of",
    "container_argv",
    "resolve_image_user",
    "runtime_config",
    "working_dir",
]

CONTAINER_SANDBOX = "/mnt/mesos/sandbox"
"""Where the task's sandbox is mounted in its container (as Mesos mounts it)."""
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DOCKER_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# Linux capabilities by bit number (capability.h); a privileged container gets every one
# the agent itself holds (its bounding set), so runc can apply them.
CAPABILITY_BITS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)


def capabilities_of(mask: int) -> tuple[str, ...]:
    """The names of the capabilities set in ``mask`` (``CapBnd`` of /proc/<pid>/status)."""
    return tuple(name for bit, name in enumerate(CAPABILITY_BITS) if mask >> bit & 1)


_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
_READONLY = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


class UserNotFound(PalletError):
    """The user a container should run as is not in its image."""


@dataclass(frozen=True, slots=True)
class ImageUser:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class BindMount:
    source: str
    destination: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class ContainerProcess:
    """Everything ``runtime_config`` needs about one container."""

    args: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    user: ImageUser
    hostname: str
    cgroups_path: str
    pids_limit: int
    mounts: tuple[BindMount, ...] = ()
    nofile: tuple[int, int] = (1048576, 1048576)
    netns: str | None = None
    """A network namespace to join (bridge networking); None: the host's network."""
    privileged: tuple[str, ...] | None = None
    """When set, a privileged container (Docker's ``--privileged``; only when the operator
    allows it): these capabilities (the agent's own), every device, /sys writable and
    /proc unmasked."""
    extra: Mapping[str, Any] = field(default_factory=dict)


def container_argv(
    cmd: str | None,
    args: Sequence[str],
    entrypoint: Sequence[str],
    image_cmd: Sequence[str],
) -> tuple[str, ...]:
    """What the container runs (the table in the module docstring); empty when neither
    the app nor the image says."""
    if cmd is not None:
        return ("/bin/sh", "-c", cmd)
    if args:
        return (*entrypoint, *args)
    return (*entrypoint, *image_cmd)


def working_dir(image_dir: str, container_type: str) -> str:
    if image_dir:
        return image_dir
    return CONTAINER_SANDBOX if container_type == "MESOS" else "/"


def resolve_image_user(spec: str, passwd: str, group: str) -> ImageUser:
    """``spec`` (``name``, ``uid``, ``name:group``, ``uid:gid`` ...; empty is root) in an
    image's ``/etc/passwd`` and ``/etc/group`` texts. A numeric uid needs no entry (its
    group is then 0, as Docker does); a name must have one."""
    if not spec:
        return ImageUser(0, 0)
    name, _, group_spec = spec.partition(":")
    users = _table(passwd, 7)
    groups = _table(group, 4)
    entry = next((u for u in users if u[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((u for u in users if u[2] == name), None)
    if entry is None and not name.isdigit():
        raise UserNotFound(f"user {name!r} does not exist in the image")
    uid = int(name) if entry is None else _int(entry[2])
    gid = 0 if entry is None else _int(entry[3])
    user_name = entry[0] if entry is not None else None
    if group_spec:
        match = next((g for g in groups if g[0] == group_spec), None)
        if match is None and not group_spec.isdigit():
            raise UserNotFound(f"group {group_spec!r} does not exist in the image")
        gid = int(group_spec) if match is None else _int(match[2])
    extra = tuple(
        sorted(
            {
                _int(g[2])
                for g in groups
                if user_name is not None and user_name in g[3].split(",") and _int(g[2]) != gid
            }
        )
    )
    return ImageUser(uid, gid, extra)


def _table(text: str, width: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split(":")
            if len(parts) >= width - 1:
                rows.append(parts + [""] * (width - len(parts)))
    return rows


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def runtime_config(p: ContainerProcess) -> dict[str, Any]:
    """The OCI runtime spec (runc 1.1) for ``p``; the root filesystem is ``rootfs``
    beside the config."""
    root = p.user.uid == 0
    caps = list(p.privileged if p.privileged is not None else _DOCKER_CAPS)
    privileged = p.privileged is not None
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"],
        },
    ]
    for m in p.mounts:
        options = ["rbind", "nosuid", "nodev", "ro" if m.readonly else "rw"]
        mounts.append(
            {"destination": m.destination, "type": "bind", "source": m.source, "options": options}
        )
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": p.user.uid, "gid": p.user.gid, "additionalGids": list(p.user.groups)},
            "args": list(p.args),
            "env": [f"{k}={v}" for k, v in p.env.items()],
            "cwd": p.cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps if root else [],
                "permitted": caps if root else [],
                "inheritable": [],
                "ambient": [],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": p.nofile[1], "soft": p.nofile[0]}],
            # as for command tasks: no setuid program raises the task's user (a privileged
            # container, which the operator allowed, keeps Docker's default)
            "noNewPrivileges": not privileged,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": p.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": p.cgroups_path,
            "resources": {
                "devices": [{"allow": privileged, "access": "rwm"}],
                "pids": {"limit": p.pids_limit},
            },
            "namespaces": [
                *({"type": t} for t in ("pid", "ipc", "uts", "mount")),
                *([{"type": "network", "path": p.netns}] if p.netns else []),
            ],
            "maskedPaths": [] if privileged else list(_MASKED),
            "readonlyPaths": [] if privileged else list(_READONLY),
            **p.extra,
        },
    }
