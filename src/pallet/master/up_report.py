"""``pallet up`` tells the master how it keeps each agent running: restarts, backing off
until when, the last line the agent said (``PUT /v1/nodes/{id}/supervisor``), so
``/v1/nodes``, ``pallet node list`` and the dashboard show a crash-looping agent as such;
does I/O.

The master reads nothing of ``up``'s: ``up`` is the agents' service manager and reports
like any other client, through an authenticated route (``pallet:node`` update), as the
superuser of its own cluster. Only agents that have exited at least once are reported
(a quiet agent has nothing to say); a report is sent when it changes and every
``REFRESH`` seconds while the agent is backing off or exited within the last minute
(the master keeps reports in memory, so a new leader learns them again).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pallet.master.restarts import RestartPolicy

__all__ = ["REFRESH", "SupervisorReports", "supervisor_report"]

log = logging.getLogger(__name__)

REFRESH = 10.0
"""Seconds between two sends of an unchanged report while it matters."""
RETRY = 5.0
"""Seconds to wait after the master did not take a report."""


def supervisor_report(
    policy: RestartPolicy, last_line: str, mono_now: float, wall_now: float
) -> dict[str, Any]:
    """The report of one agent (times as epoch seconds; ``policy`` keeps monotonic ones)."""

    def wall(t: float | None) -> float | None:
        return None if t is None else round(wall_now + (t - mono_now), 3)

    return {
        "supervisor": "pallet up",
        "restarts": policy.total,
        "exits_last_minute": len([t for t in policy.history if mono_now - t < 60.0]),
        "backing_off_until": wall(policy.next_start),
        "last_exit": wall(policy.history[-1] if policy.history else None),
        "last_line": last_line[-500:],
    }


class SupervisorReports:
    """Sends the agents' reports; ``tick`` is called from ``up``'s supervision loop."""

    def __init__(self, client: Callable[[], httpx.Client]) -> None:
        self._make_client = client
        self._client: httpx.Client | None = None
        self._sent: dict[str, tuple[dict[str, Any], float]] = {}
        self._quiet_until = 0.0
        self._node_ids: dict[Path, str] = {}
        """Each agent's node id, read while it could be (an agent that crash-loops may
        have lost its work dir's file)."""

    def tick(self, agents: list[tuple[Path, RestartPolicy, str]], mono: float, wall: float) -> int:
        """Report each agent ``(work dir, its restart policy, last log line)`` that needs
        it; how many reports the master took."""
        if mono < self._quiet_until:
            return 0
        taken = 0
        for work_dir, policy, said in agents:
            node_id = self._node_ids.get(work_dir) or _node_id(work_dir)
            if node_id is None:
                continue  # never registered: no node to report on
            self._node_ids[work_dir] = node_id
            if policy.total == 0:
                continue
            doc = supervisor_report(policy, said, mono, wall)
            previous = self._sent.get(node_id)
            if previous is not None and _same_but_times(previous[0], doc):
                # Nothing new happened: refresh the count of recent exits now and then,
                # and the whole report while it matters (a new leader knows none).
                live = policy.backing_off or doc["exits_last_minute"] > 0
                due = mono - previous[1] >= REFRESH
                if not (due and (live or previous[0] != doc)):
                    continue
            if not self._send(node_id, doc):
                self._quiet_until = mono + RETRY
                return taken
            self._sent[node_id] = (doc, mono)
            taken += 1
        return taken

    def _send(self, node_id: str, doc: dict[str, Any]) -> bool:
        try:
            if self._client is None:
                self._client = self._make_client()
            r = self._client.put(f"/v1/nodes/{node_id}/supervisor", json=doc)
        except (httpx.HTTPError, OSError) as e:
            log.info("could not report node %s's restarts to the master: %s", node_id, e)
            return False
        if r.status_code == 404:  # removed, or a new master that never saw it: nothing to do
            return True
        return r.status_code == 200

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _same_but_times(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from the counters that move on their own (exits age out of the minute)."""
    keys = ("restarts", "backing_off_until", "last_exit", "last_line")
    return all(a[k] == b[k] for k in keys)


def _node_id(work_dir: Path) -> str | None:
    with contextlib.suppress(OSError):
        return (work_dir / "node-id").read_text().strip() or None
    return None
