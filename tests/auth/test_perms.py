"""Permissions per path and action, table-driven (issue 14): patterns, actions, groups of
grants, deny by default; rules that are not plain paths are refused."""

from __future__ import annotations

import pytest

from pallet.auth.perms import Action, Grant, Permissions, Rid, job_path, parse_rid
from pallet.model import ValidationError

C, R, U, D, F = Action.CREATE, Action.READ, Action.UPDATE, Action.DELETE, Action.FULL


def perms(*rules: tuple[str, Action]) -> Permissions:
    return Permissions(Grant(parse_rid(rid), action) for rid, action in rules)


@pytest.mark.parametrize(
    ("rules", "resource", "action", "allowed"),
    [
        ([], "pallet:service:/prod/web", R, False),  # nothing granted: denied
        ([("pallet:service:/prod", R)], "pallet:service:/prod", R, True),
        ([("pallet:service:/prod", R)], "pallet:service:/prod/web", R, True),  # below
        ([("pallet:service:/prod", R)], "pallet:service:/prod/a/b/c", R, True),
        ([("pallet:service:/prod", R)], "pallet:service:/production", R, False),  # not a prefix
        ([("pallet:service:/prod", R)], "pallet:service:/dev/web", R, False),
        ([("pallet:service:/prod", R)], "pallet:service:/prod/web", U, False),  # other action
        ([("pallet:service:/prod", F)], "pallet:service:/prod/web", D, True),  # full = all
        ([("pallet:service:/prod/*", R)], "pallet:service:/prod/web", R, True),
        ([("pallet:service:/prod/*", R)], "pallet:service:/prod", R, False),  # * needs a segment
        ([("pallet:service:/*/web", U)], "pallet:service:/dev/web", U, True),
        ([("pallet:service:/*/web", U)], "pallet:service:/dev/db", U, False),
        ([("pallet:service:/", R)], "pallet:service:/anything/at/all", R, True),
        ([("pallet:service", R)], "pallet:service:/x", R, True),  # the whole kind
        ([("pallet:service:/prod", R)], "pallet:job:/prod", R, False),  # kinds are apart
        ([("pallet:secret:/db/*", R)], "pallet:secret:/db/password", R, True),
        ([("pallet:secret:/db/*", R)], "pallet:secret:/dbx/password", R, False),
        ([("pallet:node", U)], "pallet:node", U, True),
        ([("pallet:node", R)], "pallet:node", U, False),
        ([("pallet:superuser", F)], "pallet:secret:/any", D, True),
        ([("pallet:superuser", R)], "pallet:secret:/any", R, False),  # only full makes one
        ([("pallet:agent:/node-1", F)], "pallet:agent:/node-1", U, True),
        ([("pallet:agent:/node-1", F)], "pallet:agent:/node-2", U, False),
        # grants add up (a user's and its groups')
        ([("pallet:service:/a", R), ("pallet:service:/b", U)], "pallet:service:/b/x", U, True),
    ],
)
def test_permission_table(
    rules: list[tuple[str, Action]], resource: str, action: Action, allowed: bool
) -> None:
    assert perms(*rules).allows(parse_rid(resource, pattern=False), action) is allowed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("dcos:service:/x", "not a DC/OS resource id Pallet understands"),
        ("dcos:adminrouter:service:marathon", "Admin Router, which Pallet does not have"),
        ("dcos:service:marathon:marathon:services:/a/../b", "segment '..'"),
        ("pallet:bogus:/x", "unknown kind"),
        ("pallet:node:/x", "takes no path"),
        ("pallet:service:prod", "must start with /"),
        ("pallet:service:/a/../b", "segment '..'"),
        ("pallet:service:/(a+)+$", "not regular expressions"),
        ("pallet:service:/web.*", "not regular expressions"),
        ("pallet:service:/[a-z]", "not regular expressions"),
        ("pallet:service:" + "/a" * 40, "more than 32 segments"),
        ("pallet:service:/" + "a" * 600, "at most 512 characters"),
        ("", "give a resource id"),
    ],
)
def test_bad_rules_are_refused_with_the_field(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as caught:
        parse_rid(text)
    assert caught.value.field == "/rid"


def test_a_star_is_a_rule_segment_not_a_resource() -> None:
    with pytest.raises(ValidationError):
        parse_rid("pallet:service:/*", pattern=False)


def test_the_longest_rules_match_segment_by_segment() -> None:
    """No regex is built from a rule: stars match whole segments, one comparison each."""
    rule = "pallet:service:" + "/*" * 32
    p = perms((rule, R))
    assert p.allows(Rid("service", tuple("a" * 30 for _ in range(32))), R)
    assert not p.allows(Rid("service", tuple("a" * 30 for _ in range(31))), R)


def test_job_ids_are_paths() -> None:
    assert job_path("prod.nightly.backup") == "/prod/nightly/backup"
    assert perms(("pallet:job:/prod", R)).may("job", R, job_path("prod.nightly"))


def test_sees_all() -> None:
    assert perms(("pallet:service:/", R)).sees_all("service")
    assert not perms(("pallet:service:/prod", R)).sees_all("service")
    assert perms(("pallet:superuser", F)).sees_all("secret", D)


@pytest.mark.parametrize(
    ("dcos", "pallet"),
    [
        ("dcos:superuser", "pallet:superuser"),
        ("dcos:service:marathon:marathon:services:/", "pallet:service:/"),
        ("dcos:service:marathon:marathon:services:/prod/web", "pallet:service:/prod/web"),
        ("dcos:service:marathon:marathon:services", "pallet:service"),
        ("dcos:service:marathon:marathon:admin:events", "pallet:events"),
        ("dcos:service:marathon:marathon:admin:leader", "pallet:leader"),
        ("dcos:service:metronome:metronome:jobs:prod.nightly", "pallet:job:/prod/nightly"),
        ("dcos:service:metronome:metronome:jobs:/prod", "pallet:job:/prod"),
        ("dcos:adminrouter:acs", "pallet:iam"),
        ("dcos:adminrouter:ops:mesos", "pallet:node"),
        ("dcos:secrets:default:/db/password", "pallet:secret:/db/password"),
        ("dcos:secrets:default:db", "pallet:secret:/db"),
        ("dcos:secrets:list:default:/db", "pallet:secret:/db"),
        ("dcos:secrets:default", "pallet:secret"),
    ],
)
def test_dcos_resource_ids_stand_for_pallet_ones(dcos: str, pallet: str) -> None:
    """A DC/OS script's grants work unchanged; they are kept as the Pallet id they mean."""
    assert str(parse_rid(dcos)) == pallet
    granted = perms((dcos, U))
    assert granted.grants == perms((pallet, U)).grants
