"""The scoring-policy interface every placement policy implements; pure."""

from __future__ import annotations

import copy as _copy
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pallet.core.gpus import GpuShares, best_share, whole_devices
from pallet.core.view import ClusterView, IntArray
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["FloatArray", "Policy"]

FloatArray = npt.NDArray[np.float64]


class Policy:
    """Scores feasible nodes for one request; the highest score wins, ties go to the
    view's seeded tie-break order.

    ``cacheable``: a node's score depends only on that node's state and the request's
    resource shape (never on its app), so after a placement only the changed node
    needs scoring again and apps of one shape share scores.
    ``sample_size``: score only the first *k* feasible nodes of a shuffled order
    (Nomad's limit iterator) instead of all of them.
    """

    name: ClassVar[str] = ""
    cacheable: ClassVar[bool] = True
    stable_scores: bool = False
    """True if ``prepare`` never changes how a node is scored, so cached scores stay
    valid from one ``schedule`` call to the next (stateless formulas). A policy that
    learns may set it per call in ``prepare``: True when that call changed nothing."""

    def prepare(self, view: ClusterView, requests: Sequence[PlacementRequest]) -> None:
        """Called once per ``schedule`` call before any placement."""

    def twin(self) -> Policy:
        """A copy that scores as this one does now and that may be used without
        changing this one (a dry run must not teach the live policy anything)."""
        return _copy.deepcopy(self)

    def order(
        self, view: ClusterView, requests: Sequence[PlacementRequest]
    ) -> Sequence[int] | None:
        """The order in which ``schedule`` places ``requests`` (indices), or None for
        the default: higher priority first, else as given."""
        return None

    def is_cacheable(self, req: PlacementRequest) -> bool:
        """Whether scores for ``req`` may be cached per node (see ``cacheable``)."""
        return self.cacheable

    def sample_size(self, n_nodes: int) -> int | None:
        return None

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        raise NotImplementedError

    def choose_gpus(
        self, view: ClusterView, req: PlacementRequest, row: int, rng: np.random.Generator
    ) -> GpuShares:
        """Which devices of ``row`` the request takes; by default the best-fit device
        for a share and the lowest-index idle devices for whole GPUs."""
        g = req.resources.gpu_milli
        if not g:
            return ()
        if g >= GPU_MILLI:
            return whole_devices(view, req, row)
        return best_share(view, req, row)
