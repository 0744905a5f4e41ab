"""The long-poll's query reader reads what ``parse_qsl`` reads, with or without escapes."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from pallet.api.routes_agent import _query


@pytest.mark.parametrize(
    "text",
    [
        "after=3&wait=30",
        "",
        "after=&wait=5",  # a blank value is dropped
        "after",
        "=x&b=2",
        "after=1&after=2",  # the last one wins
        "w=1;x=2",
        "&&after=4&",
        "a=b=c",
        "wait=1%2E5&after=2",  # escaped: parse_qsl itself
        "wait=+30",
    ],
)
def test_query_reads_as_parse_qsl(text: str) -> None:
    assert _query(text) == dict(parse_qsl(text))
