"""Who a task runs as: a user name resolved on this node to uid, gid and groups; does I/O
(reads the user database through ``pwd`` and ``grp``).

As on a Mesos agent, a task runs as its app's ``user``, else as the agent's default task
user (``--task-user``), else as the agent's own user. A name this node does not know
fails the task with a clear reason; switching users needs the agent to run as root.
With ``--dynamic-task-users`` a task that names no user runs as a uid and gid of its
app's own (``dynamic_user``, as systemd's DynamicUser, one per app as Android's), so no
app's tasks can read another's.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pallet.model import PalletError

__all__ = [
    "TaskUser",
    "TaskUsers",
    "UnknownUser",
    "agent_user",
    "dynamic_user",
    "lookup_user",
    "resolve_task_user",
    "unreachable_by",
]


class UnknownUser(PalletError):
    """The user a task asks for does not exist here, or this agent cannot become it."""


@dataclass(frozen=True, slots=True)
class TaskUser:
    """A resolved user: what ``setgroups``, ``setgid`` and ``setuid`` need."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @property
    def is_agent(self) -> bool:
        """True when it is the user this agent process runs as (nothing to switch)."""
        return self.uid == os.geteuid() and self.gid == os.getegid()


def lookup_user(name: str) -> TaskUser:
    """``name`` from this node's user database, with its supplementary groups."""
    try:
        entry = pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise UnknownUser(f"user {name!r} does not exist on this node") from None
    try:
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:
        groups = [entry.pw_gid]
    return TaskUser(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(groups), entry.pw_dir)


def agent_user() -> TaskUser:
    """The user this agent process runs as (its ids read each time; its name and home
    from the user database once per uid)."""
    uid = os.geteuid()
    name, home = _own_entry(uid)
    return TaskUser(name, uid, os.getegid(), tuple(os.getgroups()), home)


@functools.lru_cache(maxsize=4)
def _own_entry(uid: int) -> tuple[str, str]:
    """The name and home of the agent's own uid. Looked up once: every task of the
    agent's user asked for it, and ``getpwuid`` reads ``/etc/passwd`` each time."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return str(uid), "/"
    return entry.pw_name, entry.pw_dir


DYNAMIC_FIRST = 0x4000_0000
"""The first uid (and gid) of tasks' own users: far above any user database's."""
DYNAMIC_COUNT = 0x3FFF_0000
"""How many there are (up to 0x7FFF0000): two of 1,000 apps share one about once in
2,000 clusters of that size."""


def dynamic_user(owner: str) -> TaskUser:
    """The uid and gid of ``owner``'s own user (an app id): a hash into the dynamic range,
    the same on every call (health checks, an agent restart, the app's next task, which
    finds its persistent volumes), skipping any uid the user database knows. It has no
    name there: ``id -un`` fails, ``$HOME`` is /."""
    start = int.from_bytes(hashlib.sha256(owner.encode()).digest()[:8], "big")
    for step in range(64):
        uid = DYNAMIC_FIRST + (start + step) % DYNAMIC_COUNT
        try:
            pwd.getpwuid(uid)
        except KeyError:
            break
    return TaskUser(f"uid {uid}", uid, uid, (uid,), "/")


def resolve_task_user(name: str | None) -> TaskUser:
    """The user to run a task as: ``name`` (None: the agent's own user). Raises
    ``UnknownUser`` when it does not exist or this agent cannot switch to it."""
    if name is None:
        return agent_user()
    user = lookup_user(name)
    if not user.is_agent and os.geteuid() != 0:
        raise UnknownUser(
            f"cannot run a task as user {name!r}: the agent runs as {agent_user().name!r}, not root"
        )
    return user


USER_TTL_SECONDS = 10.0
"""How long ``TaskUsers`` keeps a user it found."""


class TaskUsers:
    """``resolve_task_user`` for one agent, each name found kept ``ttl`` seconds: every
    launch asked the user database (``getpwnam`` and ``getgrouplist``: ``/etc/passwd``,
    ``/etc/group`` and ``nsswitch.conf`` read and parsed, a dozen system calls) for the
    same one or two names. A change to the database reaches new tasks within ``ttl``;
    a name not found is asked again at every launch (it may be added any moment).
    Thread-safe."""

    def __init__(
        self, ttl: float = USER_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._found: dict[str, tuple[float, TaskUser]] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None) -> TaskUser:
        """``resolve_task_user(name)``, from what was found less than ``ttl`` ago."""
        if name is None:
            return agent_user()  # its ids read each time, its entry once (``_own_entry``)
        now = self._clock()
        with self._lock:
            kept = self._found.get(name)
        if kept is not None and now < kept[0]:
            return kept[1]
        user = resolve_task_user(name)
        with self._lock:
            self._found[name] = (now + self._ttl, user)
        return user


def unreachable_by(user: TaskUser, path: Path) -> Path | None:
    """The first directory from ``/`` down to ``path`` that ``user`` may not search
    (so it cannot reach its sandbox by its absolute path), or None."""
    if user.uid == 0:
        return None
    path = path.resolve()
    for piece in [*reversed(path.parents), path]:
        try:
            st = piece.stat()
        except FileNotFoundError:
            return None  # the agent creates the rest, searchable by all (mode 0755)
        except OSError:
            return piece
        if st.st_uid == user.uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid in user.groups or st.st_gid == user.gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return piece
    return None
