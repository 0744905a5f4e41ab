"""A task's secrets on the agent: variables at the app's layer, files 0400 in the sandbox
without following links, values only in the process (not in the spec or checkpoint), and a
relaunch fetching them again."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from pallet.agent import Executor
from pallet.agent.environment import with_secrets
from pallet.agent.secretfiles import SecretDeliveryError, deliver_secrets, write_secret_file
from pallet.agent.users import agent_user
from pallet.model import PalletError, TaskSpec
from pallet.model.secrets import TaskSecret

from .conftest import make_spec

VALUE = "hunter2-secret-value"
REFS = (
    TaskSecret("pw", "db/password", env="DB_PASSWORD"),
    TaskSecret("pw", "db/password", file="conf/pw"),
)


def test_a_secret_file_is_0400_and_its_directories_are_made(tmp_path: Path) -> None:
    write_secret_file(tmp_path, "a/b/pw", VALUE, agent_user())
    path = tmp_path / "a" / "b" / "pw"
    assert path.read_text() == VALUE
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700


def test_a_secret_file_follows_no_link_and_replaces_nothing(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "dir").symlink_to(outside)
    (sandbox / "file").symlink_to(outside / "victim")
    with pytest.raises(SecretDeliveryError, match="link"):
        write_secret_file(sandbox, "dir/pw", VALUE, agent_user())
    with pytest.raises(SecretDeliveryError, match="exists"):  # O_EXCL: a link is taken
        write_secret_file(sandbox, "file", VALUE, agent_user())
    (sandbox / "taken").write_text("mine")
    with pytest.raises(SecretDeliveryError, match="exists"):
        write_secret_file(sandbox, "taken", VALUE, agent_user())
    assert list(outside.iterdir()) == [] and (sandbox / "taken").read_text() == "mine"
    with pytest.raises(SecretDeliveryError):
        write_secret_file(sandbox, "../escape", VALUE, agent_user())


def test_delivery_needs_every_value_and_says_which_is_missing(tmp_path: Path) -> None:
    spec = make_spec("s.1", secrets=REFS)
    assert deliver_secrets(make_spec("plain.1"), None, tmp_path, agent_user()) == {}
    with pytest.raises(SecretDeliveryError, match="cannot fetch"):
        deliver_secrets(spec, None, tmp_path, agent_user())
    with pytest.raises(SecretDeliveryError, match="db/password"):
        deliver_secrets(spec, lambda _: {}, tmp_path, agent_user())

    def refused(_: TaskSpec) -> Mapping[str, str]:
        raise PalletError("the master refused its secrets (404)")

    with pytest.raises(SecretDeliveryError, match="404"):
        deliver_secrets(spec, refused, tmp_path, agent_user())
    env = deliver_secrets(spec, lambda _: {"db/password": VALUE}, tmp_path, agent_user())
    assert env == {"DB_PASSWORD": VALUE} and (tmp_path / "conf" / "pw").read_text() == VALUE


def test_secret_variables_do_not_override_what_pallet_owns() -> None:
    env = with_secrets({"A": "1", "PALLET_TASK_ID": "t"}, {"A": "s", "PALLET_TASK_ID": "x"})
    assert env == {"A": "s", "PALLET_TASK_ID": "t"}


def test_the_spec_holds_references_only() -> None:
    spec = make_spec("s.1", secrets=REFS)
    assert TaskSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert "secrets" not in make_spec("plain.1").to_json()  # the wire is unchanged without
    text = json.dumps(spec.to_json())
    assert "db/password" in text and VALUE not in text


def _run(ex: Executor, spec: TaskSpec) -> None:
    ex.launch_later(spec)
    deadline = time.monotonic() + 20
    outcomes = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = ex.take_launches()
        time.sleep(0.01)
    (outcome,) = outcomes
    assert getattr(outcome, "pid", None), outcome
    while time.monotonic() < deadline:
        if ex.wait(0.5):
            return
    raise AssertionError("the task did not end")


def test_a_task_gets_its_values_at_each_launch(executor: Executor) -> None:
    fetched: list[str] = []

    def fetch(spec: TaskSpec) -> Mapping[str, str]:
        fetched.append(spec.task_id)
        return {"db/password": VALUE}

    executor.stager.secrets = fetch
    cmd = 'echo "env:$DB_PASSWORD"; cat conf/pw; echo; stat -c %a conf/pw'
    for task_id in ("s.1", "s.2"):  # a relaunch is a new task: it fetches again
        spec = make_spec(task_id, cmd=cmd, secrets=REFS, env={"PLAIN": "x"})
        assert executor.needs_preparation(spec)
        _run(executor, spec)
        out = (executor.sandbox(task_id) / "stdout").read_text().splitlines()
        assert out == [f"env:{VALUE}", VALUE, "400"]
        assert VALUE not in json.dumps(spec.to_json())
        assert "DB_PASSWORD" not in executor.environment(spec)  # only in the process
    assert fetched == ["s.1", "s.2"]


def test_a_task_whose_secrets_cannot_be_fetched_fails_to_launch(executor: Executor) -> None:
    def fetch(spec: TaskSpec) -> Mapping[str, str]:
        raise PalletError("the master refused its secrets (404): no task s.1 runs here")

    executor.stager.secrets = fetch
    executor.launch_later(make_spec("s.1", cmd="true", secrets=REFS))
    deadline = time.monotonic() + 20
    outcomes: list[object] = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = list(executor.take_launches())
        time.sleep(0.01)
    (outcome,) = outcomes
    assert "refused its secrets" in getattr(outcome, "message", ""), outcome
    assert not (executor.sandbox("s.1") / "conf").exists()
    assert os.listdir(executor.sandbox("s.1")) in (["stdout", "stderr"], ["stderr", "stdout"])


def test_a_command_check_gets_the_tasks_secret_variables(executor: Executor) -> None:
    import asyncio

    from pallet.agent.checks import probe
    from pallet.agent.runtime import TaskRuntime
    from pallet.model import CheckProtocol, HealthCheckSpec

    executor.stager.secrets = lambda spec: {"db/password": VALUE}
    spec = make_spec("s.1", cmd="sleep 60", secrets=REFS)
    executor.launch_later(spec)
    deadline = time.monotonic() + 20
    while not executor.take_launches() and time.monotonic() < deadline:
        time.sleep(0.01)
    check = HealthCheckSpec(
        protocol=CheckProtocol.COMMAND,
        command=f'test "$DB_PASSWORD" = {VALUE} && test -n "$MESOS_TASK_ID"',
        timeout=10,
    )
    runtime = TaskRuntime(executor)
    assert asyncio.run(probe(check, "", spec, runtime, None)) == (True, "")
    executor.kill("s.1")
