"""Task users: resolving names, switching to them, sandboxes they own, clear failures."""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path

import pytest

from pallet.agent import Executor, LaunchError
from pallet.agent.users import (
    TaskUsers,
    UnknownUser,
    lookup_user,
    resolve_task_user,
    unreachable_by,
)

from .conftest import make_spec, wait_for

NOBODY = pwd.getpwnam("nobody")


def test_a_known_user_resolves_with_its_groups() -> None:
    user = lookup_user("nobody")
    assert (user.uid, user.gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert NOBODY.pw_gid in user.groups


def test_an_unknown_user_is_named_in_the_error() -> None:
    with pytest.raises(UnknownUser, match="user 'no-such-user-x' does not exist on this node"):
        lookup_user("no-such-user-x")


def test_no_name_is_the_agents_own_user() -> None:
    me = resolve_task_user(None)
    assert (me.uid, me.gid) == (os.geteuid(), os.getegid()) and me.is_agent


def test_a_found_user_is_kept_for_its_ttl_and_a_missing_one_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    real = pwd.getpwnam

    def getpwnam(name: str) -> pwd.struct_passwd:
        asked.append(name)
        return real(name)

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    now = [100.0]
    users = TaskUsers(ttl=10.0, clock=lambda: now[0])
    first = users.resolve("nobody")
    now[0] += 9.0
    assert users.resolve("nobody") == first and asked == ["nobody"]  # one lookup a launch was
    now[0] += 1.0
    assert users.resolve("nobody") == first and asked == ["nobody", "nobody"]  # expired
    for _ in range(2):
        with pytest.raises(UnknownUser):
            users.resolve("no-such-user-x")
    assert asked.count("no-such-user-x") == 2  # a missing user is not remembered
    assert users.resolve(None).is_agent


def test_unreachable_names_the_first_closed_directory() -> None:
    nobody = lookup_user("nobody")
    with tempfile.TemporaryDirectory(dir="/tmp") as top:  # /tmp is open to all
        base = Path(top)
        (base / "a" / "b").mkdir(parents=True)
        base.chmod(0o755)
        (base / "a").chmod(0o700)
        assert unreachable_by(nobody, base / "a" / "b") == base / "a"
        (base / "a").chmod(0o751)  # search without read is enough
        assert unreachable_by(nobody, base / "a" / "b") is None
        assert unreachable_by(nobody, base / "a" / "b" / "not-yet") is None
        base.chmod(0o700)
        assert unreachable_by(nobody, base / "a") == base
        assert unreachable_by(lookup_user("root"), base / "a") is None


@pytest.mark.root
def test_a_task_runs_as_its_user_in_a_sandbox_it_owns(executor: Executor) -> None:
    executor.launch(make_spec("as-nobody.1", user="nobody", cmd="id -u; id -g; touch mine"))
    (end,) = wait_for(lambda: executor.wait(0.1), what="the task ends")  # type: ignore[misc]
    assert end.exit_code == 0, end.message
    sandbox = executor.sandbox("as-nobody.1")
    assert (sandbox / "stdout").read_text().split() == [str(NOBODY.pw_uid), str(NOBODY.pw_gid)]
    for path in (sandbox, sandbox / "stdout", sandbox / "mine"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid), path


@pytest.mark.root
def test_the_agents_task_user_runs_tasks_that_name_none(tmp_path: Path, agent_id: str) -> None:
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id, task_user="nobody")
    try:
        ex.launch(make_spec("default-user.1", cmd="id -un"))
        wait_for(lambda: ex.wait(0.1), what="the task ends")
        assert (ex.sandbox("default-user.1") / "stdout").read_text() == "nobody\n"
        ex.launch(make_spec("own-user.1", cmd="id -un", user="root"))
        wait_for(lambda: ex.wait(0.1), what="the task ends")
        assert (ex.sandbox("own-user.1") / "stdout").read_text() == "root\n"
    finally:
        ex.close()


def test_an_unknown_user_fails_the_launch_with_the_name(executor: Executor) -> None:
    with pytest.raises(LaunchError, match="user 'nobody-here-x' does not exist on this node"):
        executor.launch(make_spec("ghost.1", user="nobody-here-x"))
    assert executor.running() == set()
