"""Placement policies by name: Pallet's own and the peers' published formulas; pure."""

from __future__ import annotations

from collections.abc import Callable

from pallet.core.frag import Workload
from pallet.core.policies.base import FloatArray, Policy
from pallet.core.policies.fgd import FGD
from pallet.core.policies.gpushare import BestFit, DotProd, GpuClustering, GpuPacking
from pallet.core.policies.kubernetes import K8sDefault, K8sMostAllocated
from pallet.core.policies.nomad import NomadBinPack, NomadSpread
from pallet.core.policies.pallet import PalletPolicy
from pallet.core.policies.simple import FirstFit, RandomFit
from pallet.model.errors import ValidationError

__all__ = ["POLICY_NAMES", "FloatArray", "Policy", "make_policy"]

_FACTORIES: dict[str, Callable[[Workload | None], Policy]] = {
    "pallet": lambda w: PalletPolicy(w),
    "fgd": lambda w: FGD(w),
    "bestfit": lambda w: BestFit(),
    "dotprod": lambda w: DotProd(),
    "gpu-packing": lambda w: GpuPacking(),
    "gpu-clustering": lambda w: GpuClustering(),
    "k8s-default": lambda w: K8sDefault(),
    "k8s-most": lambda w: K8sMostAllocated(),
    "nomad-binpack": lambda w: NomadBinPack(),
    "nomad-spread": lambda w: NomadSpread(),
    "first-fit": lambda w: FirstFit(),
    "random": lambda w: RandomFit(),
}

POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_policy(name: str, workload: Workload | None = None) -> Policy:
    """A fresh policy object. ``workload`` gives the typical task shapes to the
    policies that use them (``pallet``, ``fgd``); others ignore it."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValidationError(
            "/policy", f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    return factory(workload)
