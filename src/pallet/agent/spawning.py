"""Starting a task's main process: a command behind the launch gate (it joins its cgroups
before it runs a single instruction of the task, and can gain no privilege by exec), or a
container's ``runc run``; does I/O.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pallet.agent.isolation import IsolationError, Isolator
from pallet.agent.procfs import read_start_time
from pallet.agent.users import TaskUser

__all__ = ["gated", "pidfd_of", "spawn_gated", "spawn_runc", "switch_user"]

log = logging.getLogger(__name__)

# The session leader waits for "go" on stdin (sent once it is in its cgroups), gives the
# task /dev/null as stdin and runs it. Exit 125 means the agent never said go.
_WAIT = 'IFS= read -r _gate; exec </dev/null; [ "$_gate" = go ] || exit 125; '
_GATE = _WAIT + 'exec "$@"'
"""The gate that execs ``argv`` (a task's ``args``, a health check)."""
_SHELL_GATE = _WAIT + "unset _gate; "
"""The gate of a task's ``cmd``, with the command written on the same line: one shell is
the gate and the command's shell, as ``/bin/sh -c cmd`` (``$0``, no arguments, the
command's first line is line 1, so "/bin/sh: 1: x: not found" reads the same)."""
_LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
"""How a task's ``stdout``/``stderr`` are opened for it (``os.open``: a Python file object
costs three more system calls each, and the child gets the descriptor, not the object)."""


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
    # A task of the agent's own user is started by the launcher thread (whose
    # no_new_privs it inherits, so it needs no setpriv). Another user's goes through
    # setpriv, which sets the flag itself: it is started from this thread, without the
    # hand-over to the launcher and back (two thread switches a task); from the launcher
    # too only where setpriv is missing (Popen then switches the user, and the flag is
    # the thread's).
    launcher = _launcher() if user.is_agent or _setpriv() is None else None
    words, switch = gated(argv, user, inherited=launcher is not None)
    directory = os.fspath(sandbox)
    out = os.open(f"{directory}/stdout", _LOG_FLAGS, 0o666)
    try:
        err = os.open(f"{directory}/stderr", _LOG_FLAGS, 0o666)
    except BaseException:
        os.close(out)
        raise
    gate_r, gate_w = os.pipe()
    try:

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                words,
                stdin=gate_r,
                stdout=out,
                stderr=err,
                cwd=directory,
                env=dict(env),
                start_new_session=True,
                **switch,
            )

        popen = start() if launcher is None else launcher.submit(start).result()
    except BaseException:
        os.close(gate_w)
        raise
    finally:
        for fd in (gate_r, out, err):
            os.close(fd)
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
    between fork and exec); none when it is the agent's own user. Only for a machine
    without setpriv: they make CPython fork the whole agent instead of ``vfork``-ing it
    (see ``gated``)."""
    if user.is_agent:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}


def gated(
    argv: Sequence[str], user: TaskUser, *, inherited: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """``argv`` behind the launch gate, as ``user``: the words to run and the extra
    ``Popen`` arguments. The gate is a shell that waits for a line "go" on its stdin
    (written once the process has joined its cgroups), then runs ``argv``; any other
    line, or none, exits 125 without running it. It starts under setpriv, which sets
    ``no_new_privs`` (so neither the gate nor anything the task runs gains privileges by
    exec) and switches to ``user``'s groups, gid and uid; with ``inherited`` (started by
    the launcher thread, which holds the flag) a task of the agent's user needs neither.

    setpriv rather than ``Popen``'s ``user``/``group``/``extra_groups`` for the switch:
    CPython starts a child with ``vfork`` only when none of those is given, else with a
    full ``fork``, which copies the agent's page tables for every task (that doubled an
    agent's CPU per launch). The result is the same: real, effective and saved ids all
    the user's, its groups only, no capabilities left after the exec."""
    if inherited and user.is_agent:  # started by the launcher thread: nothing to set
        return _gate(argv), {}
    # Else setpriv, or without it Popen's arguments (a fork, and no_new_privs only when
    # ``inherited``: started by the launcher thread).
    setpriv = _setpriv()
    if not setpriv:
        return _gate(argv), switch_user(user)
    if user.is_agent:
        return [setpriv, "--no-new-privs", *_gate(argv)], {}
    groups = ["--groups", ",".join(map(str, user.groups))] if user.groups else ["--clear-groups"]
    words = [setpriv, f"--regid={user.gid}", f"--reuid={user.uid}", *groups, "--no-new-privs"]
    return [*words, *_gate(argv)], {}


def _gate(argv: Sequence[str]) -> list[str]:
    """``argv`` behind the gate shell: a ``cmd`` (``/bin/sh -c cmd``) in the gate itself,
    anything else exec'd by it."""
    if len(argv) == 3 and argv[0] == "/bin/sh" and argv[1] == "-c":
        return ["/bin/sh", "-c", _SHELL_GATE + argv[2], "/bin/sh"]
    return ["/bin/sh", "-c", _GATE, "sh", *argv]


@functools.cache
def _launcher() -> ThreadPoolExecutor | None:
    """The thread that starts command tasks run as the agent's own user, with
    ``no_new_privs`` set on itself (``prctl``, once): the kernel keeps that flag per thread
    and every child inherits it, so those tasks need no setpriv in front of the gate (its
    exec cost each task more CPU than the agent's whole launch of it). Only tasks are
    started from it: runc, mount helpers and the like run from the agent's other threads,
    without the flag. None where the flag cannot be set (setpriv is used then)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="pallet-launch")
    try:
        if pool.submit(_set_no_new_privs).result():
            return pool
    except Exception as e:  # any failure means: use setpriv
        log.info("no_new_privs cannot be set on a launcher thread (%s): using setpriv", e)
    pool.shutdown(wait=False)
    return None


def _set_no_new_privs() -> bool:
    """Set ``PR_SET_NO_NEW_PRIVS`` on the calling thread; True if it is set now."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return bool(libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1)


_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39


@functools.cache
def _setpriv() -> str | None:
    """util-linux's ``setpriv`` (``no_new_privs`` is inherited by every child and cannot
    be cleared, so a setuid ``su``, ``sudo`` or ``mount`` cannot raise a task's user).
    A program, not Python in the forked child, so no Python runs between fork and exec.
    None, with one warning, on a machine without it."""
    for directory in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        found = shutil.which("setpriv", path=directory)
        if found:
            return found
    log.warning(
        "setpriv (util-linux) not found: tasks run WITHOUT no_new_privs, so setuid "
        "programs can raise their privileges"
    )
    return None
