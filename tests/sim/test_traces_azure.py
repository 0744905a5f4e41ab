"""The Azure VM 2017 reader: the real dev split, malformed rows, the lifetime rule."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from pallet.model.errors import TraceError
from pallet.sim.traces.azure import (
    CENSOR_S,
    NEVER,
    AzureVM,
    DurationBin,
    azure_dir,
    lifetimes,
    read_azure_vms,
    read_duration_bins,
)

HEADER = "time_s,tenant_batch,vcpu,mem_gb,flavor,duration_bin,censored\n"
BINS = {0: DurationBin(0, 0, 300), 1: DurationBin(1, 300, 600), 13: DurationBin(13, 3900, 7500)}


@pytest.fixture(scope="module")
def real() -> tuple[dict[int, DurationBin], list[AzureVM]]:
    bins = read_duration_bins()
    return bins, read_azure_vms(bins=bins)


@pytest.mark.traces
def test_real_dev_split_matches_the_readme(real: tuple[dict[int, DurationBin], list[AzureVM]]):
    bins, vms = real
    assert len(vms) == 259_159
    assert len(bins) == 46 and bins[0] == DurationBin(0, 0, 300)
    assert bins[13] == DurationBin(13, 3900, 7500)  # 5-min steps 3900..7200
    assert vms[0].time_s == 1_800_000 and vms[-1].time_s == 2_099_700
    assert len({vm.flavor for vm in vms}) == 16
    assert [vm.index for vm in vms[:3]] == [0, 1, 2]
    # Each flavor has the size flav_map.txt gives it ("vcpus,mem_gb letter").
    sizes = {}
    for line in (azure_dir() / "flav_map.txt").read_text().split("\n"):
        if line.strip():
            pair, letter = line.split()
            vcpus, mem = pair.split(",")
            sizes[letter] = (round(float(vcpus) * 1000), round(float(mem) * 1024))
    assert {(vm.flavor, vm.cpu_milli, vm.mem_mib) for vm in vms} == {
        (f, c, m) for f, (c, m) in sizes.items()
    }
    # The first row of v1.dev.txt / v1.dev.c2100000.txt: "m" with duration U1.
    assert (vms[0].flavor, vms[0].duration_bin, vms[0].censored) == ("m", 1, False)


@pytest.mark.traces
def test_real_lifetimes_follow_the_rule(real: tuple[dict[int, DurationBin], list[AzureVM]]):
    bins, vms = real
    ends = lifetimes(vms, bins, seed=0)
    assert np.array_equal(ends, lifetimes(vms, bins, seed=0))  # deterministic
    assert not np.array_equal(ends, lifetimes(vms, bins, seed=1))
    censored = np.array([vm.censored for vm in vms])
    assert censored.sum() == 14_317 and (ends[censored] == NEVER).all()
    start = np.array([vm.time_s for vm in vms])
    low = np.array([max(bins[vm.duration_bin].low_s, 1) for vm in vms])
    high = np.array([bins[vm.duration_bin].high_s for vm in vms])
    life = ends[~censored] - start[~censored]
    assert (life >= low[~censored]).all() and (life < high[~censored]).all()
    assert (ends[~censored] <= CENSOR_S).all()


def test_lifetime_is_capped_at_the_censoring_time():
    # Arrives 4,000 s before the end with bin 13 ([3900, 7500) s) and ended inside the
    # trace: the draw is limited to 3900..4000 s.
    vm = AzureVM(0, CENSOR_S - 4000, 0, 1000, 1024, "a", 13, False)
    ends = lifetimes([vm] * 50, BINS, seed=3)
    assert ((ends - vm.time_s >= 3900) & (ends <= CENSOR_S)).all()


def test_bin_zero_lives_at_least_one_second():
    vm = AzureVM(0, 1_800_000, 0, 1000, 1024, "a", 0, False)
    life = lifetimes([vm] * 200, BINS, seed=0) - vm.time_s
    assert life.min() >= 1 and life.max() <= 299


def test_request_uses_millicpus_mib_and_the_tenant_batch():
    vm = AzureVM(7, 1_800_000, 42, 2000, 3584, "g", 1, False)
    req = vm.request()
    assert (req.id, req.app_id) == ("vm-7", "batch-42")
    assert req.resources.as_tuple() == (2000, 3584, 0, 0)


def _write(tmp_path: Path, body: str, gz: bool = True) -> Path:
    path = tmp_path / ("vms.csv.gz" if gz else "vms.csv")
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(HEADER + body)
    else:
        path.write_text(HEADER + body)
    return path


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("1800000,0,two,3.5,g,1,0\n", 2, "vcpu"),
        ("1800000,0,2,3.5,g,1,0\n1800000,1,2,0,g,1,0\n", 3, "mem_gb"),
        ("1800000,0,2,3.5,g,99,0\n", 2, "duration_bin"),
        ("1800000,0,2,3.5,g,1,2\n", 2, "censored"),
        ("1800300,0,2,3.5,g,1,0\n1800000,1,2,3.5,g,1,0\n", 3, "time_s"),
        ("1800000,0,2,3.5,,1,0\n", 2, "flavor"),
        ("1800000,,2,3.5,g,1,0\n", 2, "tenant_batch"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path: Path, body: str, line: int, field: str):
    path = _write(tmp_path, body)
    with pytest.raises(TraceError) as err:
        read_azure_vms(path, bins=BINS)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)
    assert str(path) in str(err.value) and field in str(err.value)


def test_missing_column_and_missing_file(tmp_path: Path):
    path = tmp_path / "vms.csv"
    path.write_text("time_s,vcpu\n1800000,1\n")
    with pytest.raises(TraceError) as err:
        read_azure_vms(path, bins=BINS)
    assert err.value.line == 1 and err.value.field == "tenant_batch"
    with pytest.raises(TraceError, match="file not found"):
        read_azure_vms(tmp_path / "absent.csv.gz", bins=BINS)


def test_malformed_duration_bins(tmp_path: Path):
    path = tmp_path / "bins.csv"
    path.write_text(
        "duration_bin,min_duration_s,max_duration_s_lower_edge_of_last_5min_step\n"
        "0,0,0\n1,600,300\n"
    )
    with pytest.raises(TraceError) as err:
        read_duration_bins(path)
    assert (err.value.line, err.value.field) == (3, "max_duration_s_lower_edge_of_last_5min_step")


def test_plain_csv_is_read_too(tmp_path: Path):
    vms = read_azure_vms(_write(tmp_path, "1800000,3,1,0.75,a,0,1\n", gz=False), bins=BINS)
    assert vms == [AzureVM(0, 1_800_000, 3, 1000, 768, "a", 0, True, line=2)]
