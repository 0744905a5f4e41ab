"""``GET /v2/queue``: apps waiting for placement, with why nodes turned them down; pure.

Shape from ``queue.raml`` (``QueueApp``): ``app``, ``count``, ``delay
{timeLeftSeconds, overdue}``, ``since``, ``processedOffersSummary`` and, when asked
for (``embed=lastUnusedOffers``), ``lastUnusedOffers``. Marathon 1.9 added ``role``
to each item; the Python client (``marathon`` 0.13.0) rejects any field its
``MarathonQueueItem`` does not know, so Pallet sends the Marathon 1.8 item without it.

Pallet has no offers: a "processed offer" is a node the scheduler considered, and the
reject summary counts the first reason each node failed, mapped onto Marathon's
reasons and funnel order (``NoOfferMatchReason.reasonFunnel``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import Field

from pallet.api.marathon.jsontypes import MarathonModel, Timestamp

__all__ = [
    "REASON_FUNNEL",
    "DeclinedOfferStep",
    "OffersSummary",
    "QueueDelay",
    "QueueItem",
    "marathon_reason",
    "offers_summary",
    "queue_json",
]

REASON_FUNNEL = (
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "NoCorrespondingReservationFound",
    "AgentMaintenance",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
)

# pallet.core.fit's rejection reasons -> Marathon's NoOfferMatchReason.
_PALLET_REASONS = {
    "role not accepted": "UnfulfilledRole",
    "node not active": "AgentMaintenance",
    "insufficient cpus": "InsufficientCpus",
    "insufficient mem": "InsufficientMemory",
    "insufficient disk": "InsufficientDisk",
    "no path or mount disk with room": "InsufficientDisk",
    "GPU model not allowed": "InsufficientGpus",
    "insufficient gpus": "InsufficientGpus",
    "host ports unavailable": "InsufficientPorts",
}


class QueueDelay(MarathonModel):
    """Backoff: seconds until the next launch attempt; ``overdue`` once it is waiting on nodes."""

    time_left_seconds: int
    overdue: bool


class DeclinedOfferStep(MarathonModel):
    reason: str
    declined: int
    processed: int


class OffersSummary(MarathonModel):
    processed_offers_count: int
    unused_offers_count: int
    last_unused_offer_at: Timestamp | None = None
    last_used_offer_at: Timestamp | None = None
    reject_summary_last_offers: list[DeclinedOfferStep] = Field(default_factory=list)
    reject_summary_launch_attempt: list[DeclinedOfferStep] = Field(default_factory=list)


class QueueItem(MarathonModel):
    """One app waiting for ``count`` more instances to be placed."""

    app: dict[str, Any]
    count: int
    delay: QueueDelay
    since: Timestamp
    processed_offers_summary: OffersSummary
    last_unused_offers: list[dict[str, Any]] | None = None


def marathon_reason(reason: str) -> str:
    """Marathon's name for one of ``pallet.core.fit``'s rejection reasons."""
    if reason.startswith(("constraint ", "container network ")):
        # Marathon has no reason for a node without the app's network (Mesos failed the
        # launch there instead); the network is the app's placement constraint.
        return "UnfulfilledConstraint"
    if reason == "persistent volumes on another node":
        return "NoCorrespondingReservationFound"
    try:
        return _PALLET_REASONS[reason]
    except KeyError:
        raise ValueError(f"no Marathon reason for Pallet's rejection {reason!r}") from None


def _funnel(declined: dict[str, int], processed: int) -> list[DeclinedOfferStep]:
    steps = []
    for reason in REASON_FUNNEL:
        n = declined.get(reason, 0)
        steps.append(DeclinedOfferStep(reason=reason, declined=n, processed=processed))
        processed -= n
    return steps


def offers_summary(
    rejections: Iterable[tuple[str, int]],
    nodes_considered: int,
    last_unused_at: datetime | None = None,
    last_used_at: datetime | None = None,
) -> OffersSummary:
    """A ``processedOffersSummary`` from ``pallet.core.fit.rejection_reasons`` output:
    each node considered is one offer; one declined per node, at its first failed filter."""
    declined: dict[str, int] = {}
    for reason, count in rejections:
        name = marathon_reason(reason)
        declined[name] = declined.get(name, 0) + count
    unused = sum(declined.values())
    if unused > nodes_considered:
        raise ValueError(f"{unused} nodes rejected but only {nodes_considered} considered")
    funnel = _funnel(declined, nodes_considered)
    return OffersSummary(
        processed_offers_count=nodes_considered,
        unused_offers_count=unused,
        last_unused_offer_at=last_unused_at,
        last_used_offer_at=last_used_at,
        reject_summary_last_offers=funnel,
        reject_summary_launch_attempt=funnel,
    )


def queue_json(items: Iterable[QueueItem]) -> dict[str, Any]:
    """The body of ``GET /v2/queue``: ``{"queue": [...]}``."""
    return {"queue": [item.to_json() for item in items]}
