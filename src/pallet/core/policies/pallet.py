"""``pallet``: Pallet's own placement policy (the default); pure.

First version: FGD's fragmentation gradient without truncation, learned from the
workload seen so far. (Being designed; see docs/design.md.)
"""

from __future__ import annotations

from pallet.core.frag import Workload
from pallet.core.policies.fgd import FGD

__all__ = ["PalletPolicy"]


class PalletPolicy(FGD):
    name = "pallet"

    def __init__(self, workload: Workload | None = None) -> None:
        super().__init__(workload)
