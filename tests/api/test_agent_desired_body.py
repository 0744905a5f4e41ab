"""The agent's long-poll answer is encoded spec by spec, each spec once while it is the
same object: byte for byte what encoding the whole message gives, and a changed spec is
sent as changed."""

from __future__ import annotations

from dataclasses import replace

from pallet.api.http import json_response
from pallet.api.routes_agent import desired_body
from pallet.model import DesiredSet, PersistentVolume, TaskSpec


def _whole(desired: DesiredSet) -> bytes:
    return bytes(json_response(desired.to_json()).body)


def test_the_answer_is_the_message_encoded_whole_and_a_changed_spec_is_sent_changed() -> None:
    web = TaskSpec("web.1", app_id="/web", cmd="serve", env={"A": "é"}, ports=(31000,))
    db = TaskSpec("db.1", cmd="x", persistent_volumes=(PersistentVolume("d", 5, "db#d#s"),))
    cases = [
        DesiredSet(1, ()),
        DesiredSet(2, (web,)),
        DesiredSet(3, (web, db), ("db#d#s",)),
        DesiredSet(4, (db,), ()),
    ]
    for desired in cases * 2:  # the second time from what was encoded the first
        assert desired_body(desired) == _whole(desired)
    moved = replace(web, cmd="serve --new")  # same task id, a new spec
    assert desired_body(DesiredSet(5, (moved,))) == _whole(DesiredSet(5, (moved,)))
    assert b"serve --new" in desired_body(DesiredSet(5, (moved,)))
