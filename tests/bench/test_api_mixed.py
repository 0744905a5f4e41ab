"""``pallet bench api --mixed`` at a small size: reads and writes against a real master,
no errors, and the store measured against its live records."""

from __future__ import annotations

import pytest

from pallet.bench.apimixed import run_mixed_bench

pytestmark = pytest.mark.slow


def test_mixed_load_reads_writes_and_sizes_the_store() -> None:
    result = run_mixed_bench(
        apps=20, clients=4, seconds=3.0, readonly_seconds=1.0, noop_seconds=1.0
    )
    doc = result.to_json()
    assert doc["errors"] == 0, doc["error_kinds"]
    assert doc["reads"] > 0 and doc["writes"] > 0 and doc["readonly_requests"] > 0
    assert 0 < doc["read_p50_ms"] <= doc["read_p99_ms"]
    assert doc["writes_per_s"] > 0
    # the bound is 30 % of the no-op requests the same clients got answered
    assert doc["noop_per_s"] > 0
    assert doc["writes_per_s_bound"] == pytest.approx(0.3 * doc["noop_per_s"], abs=0.1)
    # the master's CPU is read from /proc (Linux): spent under load, shared out per write
    assert doc["master_cpu_s"] > 0 and doc["readonly_cpu_ms"] > 0
    assert 0 <= doc["cpu_per_write_ms"] <= doc["master_cpu_s"] * 1000 / doc["writes"] + 0.01
    before, after = doc["store_before"], doc["store_after"]
    assert before["live_keys"] >= 20  # every app is a record
    assert before["file_bytes"] >= before["live_bytes"] > 0
    assert after["history_events"] >= before["history_events"]
