"""Job specs in Metronome's JSON: Pallet's additions only when set, and a round trip."""

from __future__ import annotations

from pallet.model import Constraint, Operator
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobRunSpec,
    JobSpec,
    RestartPolicy,
    ScheduleSpec,
    constraint_from_metronome,
)


def test_metronome_job_has_no_pallet_fields() -> None:
    doc = JobSpec("a.b", JobRunSpec(cmd="true")).to_json()
    assert set(doc["run"]) == {
        "cpus", "mem", "disk", "gpus", "cmd", "env", "placement", "artifacts",
        "maxLaunchDelay", "volumes", "restart", "secrets", "networks",
    }  # fmt: skip
    assert doc["run"]["placement"] == {"constraints": []}
    assert "description" not in doc


def test_round_trip_with_every_field() -> None:
    job = JobSpec(
        "prod.backup",
        JobRunSpec(
            args=("/bin/backup", "--all"),
            cpus=0.25,
            mem=64.0,
            disk=10.0,
            gpus=1,
            env={"A": "1"},
            constraints=(Constraint("rack", Operator.IS, "r1"),),
            max_launch_delay=60,
            kill_grace_seconds=2.5,
            restart_policy=RestartPolicy.ON_FAILURE,
            active_deadline_seconds=600,
            parallelism=4,
            completions=8,
        ),
        description="nightly",
        labels={"owner": "ops"},
        dependencies=("prod.db",),
        schedules=(
            ScheduleSpec("n", "0 3 * * *", "Europe/Berlin", 120, ConcurrencyPolicy.REPLACE),
        ),
    )
    doc = job.to_json()
    assert doc["run"]["parallelism"] == 4 and doc["run"]["completions"] == 8
    assert doc["run"]["taskKillGracePeriodSeconds"] == 2.5
    assert doc["dependencies"] == [{"id": "prod.db"}]
    assert JobSpec.from_json(doc) == job
    per_node = JobRunSpec(cmd="x", per_node=True)
    assert per_node.to_json()["placement"] == {"constraints": [], "perNode": True}
    assert JobRunSpec.from_json(per_node.to_json()) == per_node


def test_eq_is_metronomes_old_name_of_is() -> None:
    c = constraint_from_metronome("rack", "EQ", "r1")
    assert c == Constraint("rack", Operator.IS, "r1")
