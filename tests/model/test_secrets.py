"""Secret paths and a task's secret references (pure)."""

from __future__ import annotations

import pytest

from pallet.model import TaskSpec, ValidationError
from pallet.model.secrets import TaskSecret, check_secret_path


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("db/password", "db/password"),
        ("/db/password", "db/password"),  # Marathon's sources often start with /
        ("a", "a"),
        ("prod.db/tls_key-1", "prod.db/tls_key-1"),
    ],
)
def test_good_paths_have_one_stored_form(given: str, stored: str) -> None:
    assert check_secret_path(given) == stored


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "give a secret path"),
        ("/", "give a secret path"),
        ("db/../etc", "'..' segment"),
        ("..", "'..' segment"),
        ("db/./pw", "'.' segment"),
        ("db//pw", "empty segment"),
        ("db/pw/", "empty segment"),
        ("//db", "empty segment"),
        ("db/p w", "letters, digits"),
        ("db/pw\x00", "letters, digits"),
        ("db/pässword", "letters, digits"),
        ("x" * 513, "at most 512"),
        ("/".join("a" * 33), "at most 32 segments"),
        (None, "give a secret path"),
    ],
)
def test_bad_paths_name_the_field_and_say_why(path: object, why: str) -> None:
    with pytest.raises(ValidationError) as e:
        check_secret_path(path, "/secrets/pw/source")
    assert e.value.field == "/secrets/pw/source" and why in e.value.message


def test_a_reference_goes_to_one_variable_or_one_file_inside_the_sandbox() -> None:
    TaskSecret("pw", "db/pw", env="DB_PASSWORD")
    TaskSecret("pw", "db/pw", file="conf/pw")
    for kwargs, field in [
        ({}, "/secrets/pw"),
        ({"env": "A", "file": "f"}, "/secrets/pw"),
        ({"env": "A=B"}, "/env/A=B"),
        ({"file": "../pw"}, "/secrets/pw/containerPath"),
        ({"file": "/etc/pw"}, "/secrets/pw/containerPath"),
    ]:
        with pytest.raises(ValidationError) as e:
            TaskSecret("pw", "db/pw", **kwargs)  # type: ignore[arg-type]
        assert e.value.field == field, kwargs
    with pytest.raises(ValidationError) as e:
        TaskSecret("pw", "db/../pw", env="A")
    assert e.value.field == "/secrets/pw/source"


def test_a_spec_reads_its_references_back_and_refuses_two_on_one_file() -> None:
    refs = (TaskSecret("pw", "db/pw", env="PW"), TaskSecret("pw", "db/pw", file="pw"))
    spec = TaskSpec("t.1", cmd="true", secrets=refs)
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert TaskSpec.from_json(spec.to_json()).secrets == refs
    with pytest.raises(ValidationError, match="share a file"):
        TaskSpec("t.1", cmd="true", secrets=(refs[1], TaskSecret("k", "k", file="pw")))
    bad = {**spec.to_json(), "secrets": [{"name": "pw", "source": "db/pw", "value": "x"}]}
    with pytest.raises(ValidationError):  # a value is no field of a reference
        TaskSpec.from_json(bad)


def test_a_job_keeps_its_secret_references_in_metronome_shapes() -> None:
    from pallet.model.jobs import JobRunSpec, JobSpec

    refs = (TaskSecret("pw", "db/pw", env="PW"), TaskSecret("pw", "db/pw", file="conf/pw"))
    job = JobSpec("backup", JobRunSpec(cmd="true", env={"A": "1"}, secrets=refs))
    run = job.to_json()["run"]
    assert run["secrets"] == {"pw": {"source": "db/pw"}}
    assert run["env"] == {"A": "1", "PW": {"secret": "pw"}}
    assert run["volumes"] == [{"containerPath": "conf/pw", "secret": "pw"}]
    assert JobSpec.from_json(job.to_json()) == job
