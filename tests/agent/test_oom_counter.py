"""Reading a task cgroup's OOM-kill counter: the line, and the descriptor kept for it."""

from __future__ import annotations

import os

import pytest

from pallet.agent import Executor
from pallet.agent.cgroup_isolator import _keyed, _oom_kill_count

from .conftest import make_spec


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3),  # v1 memory.oom_control
        (b"low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\noom_group_kill 5\n", 2),  # v2
        (b"oom_kill 7", 7),
        (b"oom_group_kill 5\n", 0),
        (b"xoom_kill 4\n", 0),
        (b"oom_kill_disable 1\n", 0),
        (b"", 0),
    ],
)
def test_the_oom_kill_line_is_read_and_no_other(text: bytes, count: int) -> None:
    assert _oom_kill_count(text) == count


_V1_STAT = b"cache 4096\nrss 8192\nrss_huge 0\nswap 0\ntotal_cache 12288\ntotal_rss 16384\n"


@pytest.mark.parametrize(
    ("data", "key", "value"),
    [
        (_V1_STAT, b"rss", 8192),  # not total_rss, not rss_huge
        (_V1_STAT, b"total_rss", 16384),
        (_V1_STAT, b"cache", 4096),
        (b"usage_usec 1234\nuser_usec 1000", b"usage_usec", 1234),
        (b"anon 77", b"anon", 77),
        (b"anon_thp 5\n", b"anon", None),
        (b"", b"anon", None),
        (b"anon x\n", b"anon", None),
    ],
)
def test_a_keyed_line_is_found_without_parsing_the_others(
    data: bytes, key: bytes, value: int | None
) -> None:
    assert _keyed(data, key) == value


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.root
def test_a_counter_is_read_through_one_descriptor_closed_with_the_cgroup(
    limited_executor: Executor,
) -> None:
    isolator = limited_executor.isolator
    before = _open_fds()
    isolator.prepare("oomfd.1", 100, 64)
    assert isolator.oom_kills("oomfd.1") == 0
    assert _open_fds() == before + 1  # kept for the next look
    assert isolator.oom_kills("oomfd.1") == 0
    assert _open_fds() == before + 1  # the same one
    isolator.destroy("oomfd.1")
    assert _open_fds() == before
    assert isolator.oom_kills("oomfd.1") == 0  # gone: nothing to read, nothing kept
    assert _open_fds() == before


@pytest.mark.root
def test_past_the_cap_a_counter_is_opened_for_each_read(limited_executor: Executor) -> None:
    isolator = limited_executor.isolator
    isolator._oom_fd_cap = 0  # type: ignore[attr-defined]
    limited_executor.launch(make_spec("oomcap.1", cmd="sleep 60", mem_mib=64, cpu_milli=100))
    before = _open_fds()
    assert isolator.oom_kills("oomcap.1") == 0
    assert _open_fds() == before
