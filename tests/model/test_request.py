"""Placement requests: GPU semantics and validation."""

import pytest

from pallet.model import PlacementRequest, Resources, ValidationError


@pytest.mark.parametrize(
    ("gpu", "count", "per_device"),
    [(0, 0, 0), (250, 1, 250), (1000, 1, 1000), (3000, 3, 1000)],
)
def test_gpu_semantics(gpu: int, count: int, per_device: int) -> None:
    r = PlacementRequest("t", "/a", Resources(gpu_milli=gpu))
    assert r.gpu_count == count
    if gpu:
        assert r.gpu_milli_per_device == per_device


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resources": Resources(gpu_milli=1500)}, "/gpus"),  # above one GPU, whole GPUs only
        ({"resources": Resources(cpu_milli=-1)}, "/resources"),
        ({"resources": Resources(), "ports": (70000,)}, "/ports"),
        ({"resources": Resources(), "ports": (80, 80)}, "/ports"),
    ],
)
def test_invalid_requests(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        PlacementRequest("t", "/a", **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
