"""Starting a task's main process: a command behind the launch gate (it joins its cgroups
before it runs a single instruction of the task, and can gain no privilege by exec), or a
container's ``runc run``; does I/O.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pallet.agent.isolation import IsolationError, Isolator
from pallet.agent.procfs import read_start_time
from pallet.agent.users import TaskUser

__all__ = ["gated", "no_new_privs", "pidfd_of", "spawn_gated", "spawn_runc", "switch_user"]

log = logging.getLogger(__name__)

# The session leader waits for "go" on stdin (sent once it is in its cgroups), gives the
# task /dev/null as stdin and execs it. Exit 125 means the agent never said go.
_GATE = 'IFS= read -r go; exec </dev/null; [ "$go" = go ] || exit 125; exec "$@"'


def spawn_gated(
    task_id: str,
    argv: Sequence[str],
    sandbox: Path,
    env: Mapping[str, str],
    user: TaskUser,
    isolator: Isolator,
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start a command task: fork the gated session leader (as ``user``), put it in the
    task's cgroups, release it; return its start time and it. ``IsolationError`` if it
    could not join its cgroups (it is killed before it runs anything)."""
    gate_r, gate_w = os.pipe()
    try:
        with open(sandbox / "stdout", "ab") as out, open(sandbox / "stderr", "ab") as err:
            popen = subprocess.Popen(
                gated(argv),
                stdin=gate_r,
                stdout=out,
                stderr=err,
                cwd=sandbox,
                env=dict(env),
                start_new_session=True,
                **switch_user(user),
            )
    except BaseException:
        os.close(gate_w)
        raise
    finally:
        os.close(gate_r)
    try:
        isolator.join(task_id, popen.pid)
    except IsolationError:
        os.close(gate_w)
        popen.kill()
        popen.wait()
        raise
    # Read while the process surely lives (it waits at the gate); exec keeps it.
    start_time = read_start_time(popen.pid) or 0
    with contextlib.suppress(BrokenPipeError):  # already killed: wait() will see it
        os.write(gate_w, b"go\n")
    os.close(gate_w)
    return start_time, popen


def spawn_runc(argv: list[str], sandbox: Path, bundle: Path) -> subprocess.Popen[bytes]:
    """Start a container: ``runc run`` in its own session, its output (the container's)
    in the sandbox's log files. runc itself puts the container in its cgroups."""
    with open(sandbox / "stdout", "ab") as out, open(sandbox / "stderr", "ab") as err:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=bundle,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            start_new_session=True,
        )


def pidfd_of(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel (wait() polls instead), or already gone


def switch_user(user: TaskUser) -> dict[str, Any]:
    """``Popen`` arguments that run the child as ``user`` (groups, gid, then uid, set
    between fork and exec); none when it is the agent's own user."""
    if user.is_agent:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}


def gated(argv: Sequence[str]) -> list[str]:
    """``argv`` behind the launch gate: a shell that waits for a line "go" on its stdin
    (written once the process has joined its cgroups), then execs ``argv``; any other
    line, or none, exits 125 without running it. The gate itself starts under
    ``no_new_privs``, so neither it nor anything the task runs gains privileges by exec."""
    return [*no_new_privs(), "/bin/sh", "-c", _GATE, "sh", *argv]


@functools.cache
def no_new_privs() -> tuple[str, ...]:
    """The words that exec a command with ``PR_SET_NO_NEW_PRIVS`` set: util-linux's
    ``setpriv --no-new-privs`` (the flag is inherited by every child and cannot be
    cleared, so a setuid ``su``, ``sudo`` or ``mount`` cannot raise a task's user). Done
    by a program, not by Python in the forked child, so no Python runs between fork and
    exec. Empty, with one warning, on a machine without setpriv."""
    for directory in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        found = shutil.which("setpriv", path=directory)
        if found:
            return (found, "--no-new-privs")
    log.warning(
        "setpriv (util-linux) not found: tasks run WITHOUT no_new_privs, so setuid "
        "programs can raise their privileges"
    )
    return ()
