"""Jobs through control in one process: memory store, fake clock, agents played by the
test. Runs are placed by the same scheduling worker as apps and end as their tasks do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pallet.control import Control, ControlConfig, TaskGoal, TaskState
from pallet.control.jobs_errors import JobConflict, JobExists, JobInvalid
from pallet.control.jobs_layout import owner_of
from pallet.model import Constraint, Operator
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobRunSpec,
    JobSpec,
    RestartPolicy,
    RunStatus,
    ScheduleSpec,
)
from pallet.store import open_store

from .conftest import FakeClock, converge, report, with_nodes

pytestmark = pytest.mark.anyio


def job(job_id: str = "backup", **run: Any) -> JobSpec:
    run.setdefault("cmd", "true")
    run.setdefault("cpus", 0.1)
    run.setdefault("mem", 32.0)
    schedules = run.pop("schedules", ())
    dependencies = run.pop("dependencies", ())
    return JobSpec(job_id, JobRunSpec(**run), schedules=schedules, dependencies=dependencies)


async def settle(ctl: Control, rounds: int = 2) -> None:
    """Job controller passes and scheduling rounds, as the loops would run them."""
    for _ in range(rounds):
        await ctl.job_controller.reconcile()
        await converge(ctl, 1)
    await ctl.job_controller.reconcile()


def tasks_of(ctl: Control, job_id: str, run_id: str) -> list[Any]:
    return sorted(ctl.state.app_tasks(owner_of(job_id, run_id)), key=lambda t: t.id)


async def finish(
    ctl: Control, task_id: str, state: TaskState = TaskState.FINISHED, **f: Any
) -> None:
    await report(ctl, task_id, TaskState.RUNNING)
    await report(ctl, task_id, state, **f)


async def test_run_now_goes_initial_starting_active_success(control: Control) -> None:
    await with_nodes(control, 2)
    await control.jobs.create(job())
    run = await control.jobs.trigger("backup")
    assert run.status is RunStatus.INITIAL
    await settle(control)
    tasks = tasks_of(control, "backup", run.id)
    assert len(tasks) == 1
    assert control.job_book.runs["backup"][run.id].status is RunStatus.STARTING
    assert tasks[0].launch.env["PALLET_JOB_INDEX"] == "0"
    assert tasks[0].launch.env["PALLET_JOB_RUN_ID"] == run.id
    await report(control, tasks[0].id, TaskState.RUNNING)
    await control.job_controller.reconcile()
    assert control.job_book.runs["backup"][run.id].status is RunStatus.ACTIVE
    await report(control, tasks[0].id, TaskState.FINISHED, exit_code=0)
    await control.job_controller.reconcile()
    assert "backup" not in control.job_book.runs
    history = control.job_book.history["backup"]
    assert history.success_count == 1 and history.failure_count == 0
    done = history.runs[0]
    assert done.status is RunStatus.SUCCESS and done.completed_at is not None
    assert [t.status for t in done.tasks] == ["TASK_FINISHED"]
    assert done.tasks[0].exit_code == 0


async def test_job_tasks_count_against_node_resources(control: Control) -> None:
    await with_nodes(control, 1, cpu=1000)
    await control.jobs.create(job(cpus=0.6))
    await control.jobs.trigger("backup")
    await control.jobs.trigger("backup")
    await settle(control)
    owners = [t.app_id for t in control.state.tasks.values()]
    assert len(owners) == 1  # the second 0.6 CPU task does not fit beside the first
    assert control.job_book.unplaced  # and it says why
    reason = next(iter(control.job_book.unplaced.values()))
    assert "cpu" in reason


async def test_constraints_are_honoured(control: Control) -> None:
    await with_nodes(control, 3)
    wanted = control.state.nodes["node-2"].node.hostname
    await control.jobs.create(
        job(constraints=(Constraint("hostname", Operator.IS, wanted),), parallelism=2)
    )
    run = await control.jobs.trigger("backup")
    await settle(control)
    tasks = tasks_of(control, "backup", run.id)
    assert [t.node_id for t in tasks] == ["node-2", "node-2"]


async def test_never_policy_fails_the_run_with_the_task_reason(control: Control) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(job(cmd="false"))
    run = await control.jobs.trigger("backup")
    await settle(control)
    (task,) = tasks_of(control, "backup", run.id)
    await finish(control, task.id, TaskState.FAILED, exit_code=1, message="exited 1")
    await settle(control)
    done = control.job_book.history["backup"].runs[0]
    assert done.status is RunStatus.FAILED
    assert done.reason is not None and "exit code 1" in done.reason
    assert not control.state.tasks  # nothing launched again


async def test_on_failure_restarts_after_backoff_within_the_deadline(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(
        job(restart_policy=RestartPolicy.ON_FAILURE, active_deadline_seconds=60)
    )
    run = await control.jobs.trigger("backup")
    await settle(control)
    (first,) = tasks_of(control, "backup", run.id)
    await finish(control, first.id, TaskState.FAILED, exit_code=3)
    await settle(control)
    assert tasks_of(control, "backup", run.id) == []  # backing off: 1 s
    clock.advance(1.5)
    await settle(control)
    (second,) = tasks_of(control, "backup", run.id)
    assert second.launch.env["PALLET_JOB_INDEX"] == "0"
    await finish(control, second.id)
    await settle(control)
    done = control.job_book.history["backup"].runs[0]
    assert done.status is RunStatus.SUCCESS and done.failures == 1
    assert [t.status for t in done.tasks] == ["TASK_FAILED", "TASK_FINISHED"]


async def test_active_deadline_kills_the_run(control: Control, clock: FakeClock) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(
        job(cmd="sleep 600", restart_policy=RestartPolicy.ON_FAILURE, active_deadline_seconds=30)
    )
    run = await control.jobs.trigger("backup")
    await settle(control)
    (task,) = tasks_of(control, "backup", run.id)
    await report(control, task.id, TaskState.RUNNING)
    clock.advance(31)
    await settle(control)
    assert control.state.tasks[task.id].goal is TaskGoal.KILL
    done = control.job_book.history["backup"].runs[0]
    assert done.status is RunStatus.FAILED and "activeDeadlineSeconds" in (done.reason or "")
    await report(control, task.id, TaskState.KILLED)
    await settle(control)
    assert not control.state.tasks and "backup" not in control.job_book.runs


async def test_stop_kills_and_fails_the_run(control: Control) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(job(cmd="sleep 600"))
    run = await control.jobs.trigger("backup")
    await settle(control)
    (task,) = tasks_of(control, "backup", run.id)
    stopped = await control.jobs.stop("backup", run.id)
    assert stopped.status is RunStatus.FAILED and stopped.reason == "stopped"
    assert control.state.tasks[task.id].goal is TaskGoal.KILL
    assert control.job_book.history["backup"].failure_count == 1


async def test_parallelism_and_completions_with_indices(control: Control) -> None:
    await with_nodes(control, 3)
    await control.jobs.create(job(parallelism=2, completions=5))
    run = await control.jobs.trigger("backup")
    seen: list[str] = []
    for _ in range(10):
        await settle(control)
        live = tasks_of(control, "backup", run.id)
        assert len(live) <= 2  # never more than parallelism at once
        if not live:
            break
        for t in live:
            seen.append(t.launch.env["PALLET_JOB_INDEX"])
            await finish(control, t.id)
    assert sorted(seen) == ["0", "1", "2", "3", "4"]
    done = control.job_book.history["backup"].runs[0]
    assert done.status is RunStatus.SUCCESS and done.succeeded == (0, 1, 2, 3, 4)


async def test_parameters_at_trigger_time(control: Control) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(job(cmd="echo $WHO", env={"WHO": "job", "KEEP": "1"}))
    run = await control.jobs.trigger("backup", env={"WHO": "trigger"})
    await settle(control)
    (task,) = tasks_of(control, "backup", run.id)
    assert task.launch.env["WHO"] == "trigger" and task.launch.env["KEEP"] == "1"
    with pytest.raises(JobInvalid):
        await control.jobs.trigger("backup", args=("x",))  # a cmd job takes no args


async def test_per_node_runs_one_task_on_every_node_and_on_nodes_that_join(
    control: Control,
) -> None:
    await with_nodes(control, 2)
    await control.jobs.create(job(cmd="sleep 5", per_node=True))
    run = await control.jobs.trigger("backup")
    await settle(control)
    assert sorted(t.node_id for t in tasks_of(control, "backup", run.id)) == ["node-0", "node-1"]
    await with_nodes(control, 3)  # node-2 joins during the run
    await settle(control)
    tasks = tasks_of(control, "backup", run.id)
    assert sorted(t.node_id for t in tasks) == ["node-0", "node-1", "node-2"]
    for t in tasks:
        await finish(control, t.id)
    await settle(control)
    done = control.job_book.history["backup"].runs[0]
    assert done.status is RunStatus.SUCCESS and len(done.tasks) == 3


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_cron_runs_each_instant_once_across_a_master_restart(tmp_path: Any) -> None:
    clock = FakeClock(at("2024-05-01T12:00:30"))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    every_minute = ScheduleSpec("tick", "* * * * *")

    async def master() -> tuple[Any, Control]:
        store = await open_store(url, clock=clock, expiry_interval=None)
        ctl = Control(store, ControlConfig(seed=1), clock=clock)
        await ctl.load()
        return store, ctl

    store, ctl = await master()
    await with_nodes(ctl, 1)
    await ctl.jobs.create(job(schedules=(every_minute,)))
    runs: list[str] = []
    for _ in range(3):  # 12:01, 12:02, 12:03
        clock.advance(60)
        await ctl.job_controller.reconcile()
        runs += [r.key for r in ctl.job_book.active_runs("backup")]
        await ctl.jobs.stop("backup", ctl.job_book.active_runs("backup")[0].id)
    await ctl.job_controller.reconcile()  # a second pass in the same minute runs nothing
    assert not ctl.job_book.active_runs("backup")
    await ctl.stop()
    await store.close()
    clock.advance(20)  # the master restarts within the minute: 12:03 must not run again
    store, ctl = await master()
    await ctl.job_controller.reconcile()
    assert not ctl.job_book.active_runs("backup")
    clock.advance(60)
    await ctl.job_controller.reconcile()
    runs += [r.key for r in ctl.job_book.active_runs("backup")]
    await ctl.stop()
    await store.close()
    assert runs == [
        "2024-05-01T12:01:00Z",
        "2024-05-01T12:02:00Z",
        "2024-05-01T12:03:00Z",
        "2024-05-01T12:04:00Z",
    ]


async def test_forbid_skips_and_replace_stops_the_active_run(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 1)
    clock.now = at("2024-05-01T12:00:30")
    forbid = ScheduleSpec("s", "* * * * *", concurrency_policy=ConcurrencyPolicy.FORBID)
    await control.jobs.create(job("f", cmd="sleep 600", schedules=(forbid,)))
    clock.advance(60)
    await settle(control)
    (first,) = control.job_book.active_runs("f")
    clock.advance(60)
    await settle(control)
    assert [r.id for r in control.job_book.active_runs("f")] == [first.id]
    replace = ScheduleSpec("s", "* * * * *", concurrency_policy=ConcurrencyPolicy.REPLACE)
    await control.jobs.update_schedule("f", replace)
    clock.advance(60)
    await settle(control)
    (second,) = control.job_book.active_runs("f")
    assert second.id != first.id
    replaced = control.job_book.history["f"].runs[0]
    assert replaced.id == first.id and "REPLACE" in (replaced.reason or "")


async def test_dependencies_run_after_every_parent_succeeded(control: Control) -> None:
    await with_nodes(control, 1)
    await control.jobs.create(job("a"))
    await control.jobs.create(job("b"))
    await control.jobs.create(job("c", dependencies=("a", "b")))
    with pytest.raises(JobInvalid):
        await control.jobs.update(job("a", dependencies=("c",)), keep_schedules=True)
    with pytest.raises(JobConflict):
        await control.jobs.delete("a", stop_runs=False)  # c depends on a
    with pytest.raises(JobExists):
        await control.jobs.create(job("a"))
    for parent in ("a", "b"):
        run = await control.jobs.trigger(parent)
        await settle(control)
        (task,) = tasks_of(control, parent, run.id)
        await finish(control, task.id)
        await settle(control)
    # manual runs have different keys: c does not run for a's and b's unrelated runs
    assert not control.job_book.active_runs("c")


async def test_concurrent_creates_share_transactions_and_one_id_wins(control: Control) -> None:
    import anyio

    results: list[str] = []

    async def create(i: int) -> None:
        try:
            await control.jobs.create(job(f"j{i % 40}"))  # j0..j39, each asked for twice
            results.append("created")
        except JobExists:
            results.append("exists")

    before = control.jobs.group.transactions
    # a write in flight (the lock held): the requests queue up, then go together
    async with anyio.create_task_group() as tg, control.applier.lock:
        for i in range(80):
            tg.start_soon(create, i)
        await anyio.sleep(0.05)
    assert results.count("created") == 40 and results.count("exists") == 40
    assert sorted(control.job_book.jobs) == sorted(f"j{i}" for i in range(40))
    assert control.jobs.group.transactions - before < 10  # grouped, not one per request
    async with anyio.create_task_group() as tg, control.applier.lock:
        for i in range(40):
            tg.start_soon(control.jobs.trigger, f"j{i}")
        await anyio.sleep(0.05)
    assert sum(len(control.job_book.active_runs(f"j{i}")) for i in range(40)) == 40
    assert len(control.job_controller.dirty) == 40  # each new run is decided next pass


async def test_a_run_in_flight_carries_over_to_the_next_leaders_control(tmp_path: Any) -> None:
    """A fresh Control per term (``master.terms``): the new leader loads the job, its
    active run and the end of a task the old leader stored but never folded in; it
    neither runs that task again nor the cron instant the old leader already started."""
    clock = FakeClock(at("2024-05-01T12:00:30"))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    every_minute = ScheduleSpec("tick", "* * * * *")

    async def term() -> tuple[Any, Control]:
        store = await open_store(url, clock=clock, expiry_interval=None)
        ctl = Control(store, ControlConfig(seed=1), clock=clock)
        await ctl.load()
        return store, ctl

    store, old = await term()
    await with_nodes(old, 1)
    await old.jobs.create(job(parallelism=2, completions=2, schedules=(every_minute,)))
    clock.advance(40)  # 12:01:10
    await settle(old)
    (run,) = old.job_book.active_runs("backup")
    first, second = tasks_of(old, "backup", run.id)
    await finish(old, first.id)  # stored with its report; no job pass before the end
    await report(old, second.id, TaskState.RUNNING)
    await old.stop()
    await store.close()

    clock.advance(5)  # 12:01:15, the next leader
    store, new = await term()
    try:
        assert [r.id for r in new.job_book.active_runs("backup")] == [run.id]
        await settle(new)
        (again,) = new.job_book.active_runs("backup")
        assert again.id == run.id and again.status is RunStatus.ACTIVE
        assert [t.id for t in again.tasks] == [first.id]  # the stored end, taken in
        assert [t.id for t in tasks_of(new, "backup", run.id)] == [second.id]  # no rerun
        await finish(new, second.id)
        await settle(new)
        assert not new.job_book.active_runs("backup")
        history = new.job_book.history["backup"]
        assert history.success_count == 1 and history.runs[0].id == run.id
        assert not (await store.list("/pallet/jobended/"))[0]  # folded in, then deleted
        clock.advance(50)  # 12:02:05: the next instant, once
        await new.job_controller.reconcile()
        assert [r.key for r in new.job_book.active_runs("backup")] == ["2024-05-01T12:02:00Z"]
    finally:
        await new.stop()
        await store.close()


@pytest.mark.parametrize("how", ["gone", "killed while unreachable"])
async def test_a_task_lost_with_its_node_has_a_stored_end_the_next_leader_honours(
    tmp_path: Any, how: str
) -> None:
    """A job task dropped with its GONE node, or killed while its node is unreachable
    (its agent will never report it), has its end stored in the same transaction that
    deletes it. A leader taking over before the run took the end in fails the run under
    NEVER from that end; it does not launch the task again on the node that is left."""
    clock = FakeClock(at("2024-05-01T12:00:00"))
    url = f"sqlite:///{tmp_path / 'state.db'}"

    async def term() -> tuple[Any, Control]:
        store = await open_store(url, clock=clock, expiry_interval=None)
        ctl = Control(store, ControlConfig(seed=1, heartbeat_grace=5.0), clock=clock)
        await ctl.load()
        return store, ctl

    store, old = await term()
    await with_nodes(old, 2)
    await old.jobs.create(job(cmd="sleep 600"))
    run = await old.jobs.trigger("backup")
    await settle(old)
    (task,) = tasks_of(old, "backup", run.id)
    await report(old, task.id, TaskState.RUNNING)
    await old.job_controller.reconcile()
    await old.applier.node_unreachable(task.node_id)
    if how == "gone":
        await old.applier.node_gone(task.node_id)  # before any job pass saw it unreachable
    else:
        await old.job_controller.reconcile()  # the run kills its lost task: it is forgotten
    assert task.id not in old.state.tasks
    stored = (await store.list(f"/pallet/jobended/backup/{run.id}/"))[0]
    assert len(stored) == 1  # its end, written with its deletion
    await old.stop()
    await store.close()

    store, new = await term()
    try:
        await settle(new)
        assert not new.job_book.active_runs("backup")
        assert not new.state.tasks  # not launched again on the other node
        done = new.job_book.history["backup"].runs[0]
        assert done.id == run.id and done.status is RunStatus.FAILED
        state, why = ("TASK_GONE", "the node is gone")
        if how != "gone":
            state, why = ("TASK_KILLED", "killed while unreachable")
        assert done.reason == f"task {task.id} {state}: {why}"
        assert not (await store.list("/pallet/jobended/"))[0]
    finally:
        await new.stop()
        await store.close()
