"""Tasks in their box (issue 14), on real processes as root: no_new_privs, a pids limit
(the agent's default and the app's label), sandboxes only their user may enter, cgroup
files a task cannot write, and the users an operator allows."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.agent import Executor, TaskExit, detect_isolator, spawning
from pallet.agent.staging import LaunchError

from .conftest import make_spec, wait_for

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def boxed(tmp_path: Path, agent_id: str) -> Iterator[Executor]:
    """An executor running tasks as nobody, 40 processes each unless the app says."""
    isolator = detect_isolator(agent_id, pids_max=40)
    assert isolator.kind != "none", f"root but no cgroups: {isolator.warning}"
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id, isolator=isolator, task_user="nobody")
    yield ex
    ex.close()


def run(ex: Executor, task_id: str, cmd: str, **fields: object) -> tuple[TaskExit, str]:
    ex.launch(make_spec(task_id, cmd=cmd, **fields))
    (end,) = wait_for(lambda: ex.wait(0.1), 20, f"{task_id} ends")  # type: ignore[misc]
    return end, (ex.sandbox(task_id) / "stdout").read_text()


@pytest.mark.root
def test_a_task_cannot_gain_privileges_and_its_sandbox_is_its_own(boxed: Executor) -> None:
    end, out = run(
        boxed,
        "box.1",
        "grep NoNewPrivs /proc/self/status; cat /etc/shadow >/dev/null 2>&1 || echo no-shadow; "
        "ls .. >/dev/null 2>&1 || echo no-listing",
    )
    assert end.exit_code == 0, end.message
    assert out.split("\n")[:3] == ["NoNewPrivs:\t1", "no-shadow", "no-listing"]
    box = boxed.sandbox("box.1").stat()
    assert (box.st_uid, stat.S_IMODE(box.st_mode)) == (NOBODY.pw_uid, 0o700)
    assert stat.S_IMODE(boxed.sandbox_root.stat().st_mode) == 0o711


@pytest.mark.root
def test_another_users_task_gets_no_new_privs_from_setpriv_not_the_launcher(
    boxed: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """setpriv sets the flag for a task of another user: it is started from the
    launching thread itself, without the hand-over to the launcher thread and back."""

    def no_launcher() -> None:
        raise AssertionError("another user's task went through the launcher thread")

    monkeypatch.setattr(spawning, "_launcher", no_launcher)
    end, out = run(boxed, "direct.1", "grep NoNewPrivs /proc/self/status; id -u")
    assert end.exit_code == 0, end.message
    assert out.split("\n")[:2] == ["NoNewPrivs:\t1", str(NOBODY.pw_uid)]


@pytest.mark.root
def test_without_setpriv_another_users_task_still_gets_no_new_privs(
    boxed: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Popen switches the user then (a fork), and the task inherits the flag from the
    launcher thread it is started from."""
    monkeypatch.setattr(spawning, "_setpriv", lambda: None)
    end, out = run(boxed, "nosetpriv.1", "grep NoNewPrivs /proc/self/status; id -u")
    assert end.exit_code == 0, end.message
    assert out.split("\n")[:2] == ["NoNewPrivs:\t1", str(NOBODY.pw_uid)]


@pytest.mark.root
def test_a_task_cannot_move_itself_out_of_its_cgroups(boxed: Executor) -> None:
    paths = boxed.isolator.paths("escape.1")
    target = next(iter(paths.values())).parent.parent / "cgroup.procs"  # the agent's own
    end, out = run(
        boxed, "escape.1", f"echo $$ > {target} 2>/dev/null && echo escaped || echo refused"
    )
    assert out == "refused\n", end.message


@pytest.mark.root
def test_the_pids_limit_stops_a_fork_bomb(boxed: Executor) -> None:
    bomb = "(i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done); echo stopped"
    boxed.launch(make_spec("bomb.1", cmd=f"{bomb}; sleep 30"))
    pids = boxed.isolator.paths("bomb.1")["pids"]
    wait_for(lambda: "stopped" in (boxed.sandbox("bomb.1") / "stdout").read_text(), 20, "bomb")
    assert (pids / "pids.max").read_text().strip() == "40"  # the agent's default here
    assert "Cannot fork" in (boxed.sandbox("bomb.1") / "stderr").read_text()
    assert (pids / "pids.events").read_text().split()[1] != "0"  # forks were refused
    assert len(boxed.isolator.pids("bomb.1")) <= 40
    boxed.force_kill("bomb.1")
    wait_for(lambda: boxed.wait(0.1), 20, "the bomb ends")
    # the app's label raises (or lowers) it for its own tasks
    boxed.launch(make_spec("own.1", cmd="sleep 30", labels={"PALLET_PIDS_MAX": "7"}))
    assert (boxed.isolator.paths("own.1")["pids"] / "pids.max").read_text().strip() == "7"
    boxed.force_kill("own.1")
    wait_for(lambda: boxed.wait(0.1), 20, "own.1 ends")


@pytest.mark.root
def test_bad_labels_and_users_the_operator_forbids_fail_the_launch(boxed: Executor) -> None:
    with pytest.raises(LaunchError, match="PALLET_PIDS_MAX: 'lots' is not a number"):
        boxed.launch(make_spec("bad.1", labels={"PALLET_PIDS_MAX": "lots"}))
    boxed.stager.allowed_users = frozenset({"nobody"})
    with pytest.raises(LaunchError, match="user 'root' is not allowed on this node"):
        boxed.launch(make_spec("root.1", user="root"))
    end, out = run(boxed, "nobody.1", "id -un", user="nobody")  # the default user is fine
    assert out == "nobody\n", end.message
    boxed.stager.allowed_users = frozenset({"*"})
    end, out = run(boxed, "root.2", "id -un", user="root")
    assert out == "root\n", end.message
    assert boxed.running() == set()


@pytest.mark.root
def test_checkpoints_are_private(tmp_path: Path) -> None:
    from pallet.agent.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path / "checkpoints")
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert os.stat(tmp_path).st_uid == 0


@pytest.mark.root
def test_apps_of_their_own_users_cannot_read_each_other(boxed: Executor) -> None:
    from pallet.agent.users import DYNAMIC_FIRST, dynamic_user

    boxed.stager.dynamic_users = True
    boxed.launch(make_spec("victim.1", app_id="/victim", cmd="echo victim-output; sleep 30"))
    wait_for(lambda: "victim-output" in (boxed.sandbox("victim.1") / "stdout").read_text())
    peek = "r=; for p in /proc/[0-9]*; do grep -qs victim-output $p/cwd/stdout && r=read; done"
    peek += "; echo $r"
    end, out = run(boxed, "thief.1", f"{peek}; id -u", app_id="/thief")
    assert out.split() == [str(dynamic_user("/thief").uid)], end.message  # read nothing
    end, out = run(boxed, "friend.1", f"{peek}; id -u", app_id="/victim")  # its own app
    assert out.split() == ["read", str(dynamic_user("/victim").uid)], end.message
    assert dynamic_user("/thief").uid >= DYNAMIC_FIRST
    assert dynamic_user("/thief") == dynamic_user("/thief") != dynamic_user("/victim")
    assert boxed.sandbox("victim.1").stat().st_uid == dynamic_user("/victim").uid
    boxed.force_kill("victim.1")
    wait_for(lambda: boxed.wait(0.1), 20, "victim.1 ends")


@pytest.mark.root
def test_tasks_of_the_agents_own_user_get_no_new_privs_without_setpriv(
    executor: Executor,
) -> None:
    """Tasks run as the agent's user start from the launcher thread, whose no_new_privs
    every child inherits; the agent itself, and what it runs from its other threads (runc,
    mount helpers), keep the right to gain privileges by exec."""
    probe = "grep NoNewPrivs /proc/self/status"
    for task_id, fields in (
        ("own.cmd", {"cmd": f'{probe}; echo "args=$# go=$go zero=$0"'}),
        ("own.args", {"args": ("/bin/sh", "-c", probe)}),
    ):
        executor.launch(make_spec(task_id, env={"go": "kept"}, **fields))
        wait_for(lambda: executor.wait(0.1), 20, f"{task_id} ends")
        assert out_of(executor, task_id)[0] == "NoNewPrivs:\t1", task_id
    # the gate shell is the cmd's own: no arguments, $0 as `/bin/sh -c`, env untouched
    assert out_of(executor, "own.cmd")[1] == "args=0 go=kept zero=/bin/sh"
    with open("/proc/self/status") as f:
        assert "NoNewPrivs:\t0" in f.read()
    status = subprocess.run(  # a child of another agent thread
        ["grep", "NoNewPrivs", "/proc/self/status"], capture_output=True, check=True
    )
    assert status.stdout == b"NoNewPrivs:\t0\n"


def out_of(ex: Executor, task_id: str) -> list[str]:
    return (ex.sandbox(task_id) / "stdout").read_text().split("\n")
