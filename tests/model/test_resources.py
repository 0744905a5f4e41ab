"""Resource algebra in fixed point."""

import pytest

from pallet.model import Resources, ValidationError


@pytest.mark.parametrize(
    ("a", "b", "total", "diff"),
    [
        (
            Resources(1000, 512, 0, 0),
            Resources(500, 256, 10, 500),
            Resources(1500, 768, 10, 500),
            Resources(500, 256, -10, -500),
        ),
        (Resources(), Resources(), Resources(), Resources()),
    ],
)
def test_add_and_sub(a: Resources, b: Resources, total: Resources, diff: Resources) -> None:
    assert a + b == total
    assert a - b == diff
    assert (a + b) - b == a


@pytest.mark.parametrize(
    ("want", "cap", "fits", "short"),
    [
        (Resources(1000, 1024), Resources(1000, 1024), True, []),  # exactly full fits
        (Resources(1001, 1024), Resources(1000, 1024), False, ["cpu"]),
        (Resources(0, 0, 1, 0), Resources(10, 10, 0, 0), False, ["disk"]),
        (Resources(0, 2048, 0, 1000), Resources(0, 1024, 0, 500), False, ["mem", "gpu"]),
    ],
)
def test_fits_and_shortfalls(want: Resources, cap: Resources, fits: bool, short: list[str]) -> None:
    assert want.fits(cap) is fits
    assert want.shortfalls(cap) == short


def test_scaling() -> None:
    assert Resources(100, 10, 1, 0) * 3 == Resources(300, 30, 3, 0)
    assert 2 * Resources(1, 1, 1, 1) == Resources(2, 2, 2, 2)


@pytest.mark.parametrize(
    ("cpus", "mem", "gpus", "expected"),
    [
        (0.5, 128, 0, Resources(500, 128, 0, 0)),
        (0.1, 32.5, 0.5, Resources(100, 33, 0, 500)),  # MiB round up, never shrink a request
        (0.001, 0, 1, Resources(1, 0, 0, 1000)),
        (0.0001, 0, 0, Resources(1, 0, 0, 0)),  # sub-millicpu rounds up to 1
        (1.1, 0, 0, Resources(1100, 0, 0, 0)),  # 1.1*1000 is 1100.0000000000002 in floats
    ],
)
def test_from_marathon(cpus: float, mem: float, gpus: float, expected: Resources) -> None:
    assert Resources.from_marathon(cpus=cpus, mem=mem, gpus=gpus) == expected


@pytest.mark.parametrize("bad", [{"cpus": -1}, {"mem": float("nan")}, {"gpus": float("inf")}])
def test_from_marathon_rejects(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError) as err:
        Resources.from_marathon(**bad)
    assert err.value.field == "/" + next(iter(bad))
