"""A redirect the client could not follow (the leader it names is dead, mid-election) is
an error, never an answer: a follower's 307 body read as ``/v2/apps`` once made ``pallet app
list`` say "No apps" while a new leader was being elected."""

from __future__ import annotations

import pytest

from pallet.client import calls
from pallet.client.calls import finish
from pallet.client.errors import MasterUnreachable


@pytest.mark.parametrize("status", [307, 308])
def test_an_unfollowed_redirect_is_not_an_empty_list(status: int) -> None:
    body = b'{"message": "this master follows; the leader is 127.0.0.1:1", "leader": "127.0.0.1:1"}'
    headers = {"location": "http://127.0.0.1:1/v2/apps"}
    with pytest.raises(MasterUnreachable) as caught:
        finish(calls.list_apps(()), status, headers, body)
    assert "try again in a moment" in str(caught.value)
    assert caught.value.url == "http://127.0.0.1:1/v2/apps"
