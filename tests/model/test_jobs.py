"""Job specs in Metronome's JSON: Pallet's additions only when set, and a round trip."""

from __future__ import annotations

from pallet.model import Constraint, ContainerSpec, FetchUri, Operator, VolumeSpec
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobImage,
    JobNetwork,
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


def test_launch_fields_round_trip_and_make_the_apps_container() -> None:
    """``user``, ``artifacts``, an image, volumes and networks come back from the stored
    JSON as they were, and the image becomes the ``ContainerSpec`` an app's would."""
    for ucr in (False, True):
        run = JobRunSpec(
            cmd="./tool",
            user="nobody",
            artifacts=(FetchUri("http://x/tool", extract=False, executable=True),),
            image=JobImage("busybox:1", ucr=ucr, force_pull=True, privileged=True),
            volumes=(VolumeSpec("data", "/srv/data", "RO"),),
            networks=(JobNetwork("container/bridge", {"team": "ops"}),),
        )
        doc = run.to_json()
        assert ("ucr" in doc, "docker" in doc) == (ucr, not ucr)
        assert JobRunSpec.from_json(doc) == run
        assert run.container == ContainerSpec(
            type="MESOS" if ucr else "DOCKER",
            image="busybox:1",
            force_pull=True,
            privileged=True,
            volumes=(VolumeSpec("data", "/srv/data", "RO"),),
            network="bridge",
        )
    assert JobRunSpec(cmd="true", user="nobody").container is None
