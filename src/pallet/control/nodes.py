"""The master's side of the agent protocol, the operator's node operations and the node
monitor loop; asyncio.

Agents register (a fingerprinted ``Node``), long-poll their node's desired task set by
revision, post status updates (acknowledged by task id and seq) and heartbeat with
their tasks' usage. A node whose agent sends nothing for ``grace`` seconds (plus the
heartbeat interval it was given) becomes UNREACHABLE with its tasks; its next heartbeat
brings it back. Every long-poll and status post counts towards that as a heartbeat
does when it arrives (an agent long-polls at least every 30 s), so a node is not lost
while its heartbeats wait behind a busy master. The master bounds the heartbeats of the whole cluster, as Nomad does: each answer
to a registration or a heartbeat gives the agent the interval to keep,
``nodes / max_heartbeats_per_second`` seconds (an agent keeps its own when that is
longer), so 12,500 agents at 50 a second beat every 250 s and the master's heartbeat
work stays flat as the cluster grows; a lost node is then noticed later, in proportion
(and the monitor, which walks every node, runs less often in proportion too). One silent for
``gone_after`` seconds is GONE: its tasks are dropped (replaced elsewhere) and its
resources leave the totals; its agent may register again. A drained agent says it is
leaving: its node becomes DRAINING (offered nothing) until it registers again.

Operators schedule machines for maintenance (Mesos's primitives: a scheduled machine's
nodes are DRAINING, ``/machine/down`` makes them DOWN, ``/machine/up`` ACTIVE again; see
``core.maintenance``); an agent on a DOWN machine may not register until it is up.

Operators drain a node (``NodeDrain``: DRAINING across agent restarts until undrained;
its tasks move elsewhere as each app's upgrade strategy allows, those left at the
deadline are killed: ``applier_nodes.drain_moves``), undrain it, and remove a node that is down
(UNREACHABLE, GONE, DOWN) or drained (DRAINING with no live task).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from pallet.control.applier import Applier
from pallet.control.errors import NodeBusy, NodeNotFound
from pallet.control.records import NodeDrain, NodeRecord
from pallet.control.state import ClusterState, node_ip
from pallet.core.maintenance import check_one_window, resting_state
from pallet.model import Node, NodeState, TaskSpec, TaskStatus, TaskUsage
from pallet.model.maintenance import MachineId, MachineMode, Maintenance, Window

__all__ = ["MAX_POLL_WAIT", "POLL_WAIT", "NodeService"]

POLL_WAIT = 30.0
"""Seconds an agent's long-poll waits unless the master grants longer (the agent's default)."""
MAX_POLL_WAIT = 300.0

log = logging.getLogger(__name__)


class NodeService:
    def __init__(
        self,
        state: ClusterState,
        applier: Applier,
        clock: Callable[[], float],
        grace: float = 15.0,
        gone_after: float | None = 600.0,
        max_heartbeats_per_second: float | None = 50.0,
    ) -> None:
        self.state = state
        self.applier = applier
        self.clock = clock
        self.grace = grace
        self.max_heartbeats_per_second = max_heartbeats_per_second
        self.gone_after = gone_after
        """Seconds of silence before an unreachable node is GONE (None: never)."""

    # ------------------------------------------------------------ the agent protocol

    def interval(self) -> float:
        """Seconds between two heartbeats of one agent that keep the whole cluster's
        heartbeats under ``max_heartbeats_per_second`` (0: no bound)."""
        rate = self.max_heartbeats_per_second
        if rate is None:
            return 0.0
        return len(self.state.nodes) / rate  # GONE ones too: a count, not a walk per beat

    def grant(self, node_id: str) -> float:
        """The interval told to ``node_id``'s agent now; its grace counts from it."""
        interval = self.interval()
        self.state.liveness[node_id].interval = interval
        return interval

    def poll_wait(self) -> float:
        """Seconds an agent's long-poll may wait for a change of its desired set, told to
        it with its heartbeat interval: the agent's usual 30 s, or that interval when it
        is longer (at most 300 s, inside what NATs and load balancers keep an idle
        connection). A poll with nothing to say ends by its timeout, so at 30 s 12,500
        agents' polls ended about 400 times a second for nothing; at their 250 s interval,
        50. The poll still counts as the agent's word within its grace (interval + grace),
        and a change of the set ends it at once, however long it may wait."""
        return min(MAX_POLL_WAIT, max(POLL_WAIT, self.interval()))

    async def register(self, node: Node, address: str, boot_id: str) -> NodeRecord:
        now = self.clock()
        node = _active(node)
        old = self.state.nodes.get(node.id)
        if old is not None and old.state is NodeState.UNREACHABLE and old.boot_id == boot_id:
            # The same agent run is back (restarted, it recovered its tasks from their
            # checkpoints): as its next heartbeat would, resume the tasks and kill those
            # replaced meanwhile. Registering first would mark the node ACTIVE and leave
            # them UNREACHABLE, for their statuses carry no new sequence number.
            await self.applier.node_returned(node.id)
        registered_at = old.registered_at if old is not None else now
        drain = old.drain if old is not None else None
        record = NodeRecord(node, address, boot_id, registered_at, drain)
        mode = self.state.machine_mode(record)
        if mode is MachineMode.DOWN:
            raise NodeBusy(
                node.id,
                f"is on machine {node.hostname} ({node_ip(address)}), which is DOWN for "
                "maintenance; it may register once the machine is up (POST /machine/up)",
            )
        # An operator's drain outlives the agent's restarts, as a maintenance window does.
        state = resting_state(NodeState.ACTIVE, mode, drain is not None)
        record = replace(record, node=replace(node, state=state))
        await self.applier.register(record)
        self.state.heard(node.id)
        self.state.liveness[node.id].last_heartbeat = now
        log.info("node %s registered (%s at %s)", node.id, node.hostname, address)
        return record

    def _known(self, node_id: str) -> NodeRecord:
        record = self.state.nodes.get(node_id)
        if record is None:
            raise NodeNotFound(node_id)
        return record

    async def heartbeat(self, node_id: str, usage: Mapping[str, TaskUsage]) -> NodeState:
        """Note the node alive with its tasks' usage; bring an UNREACHABLE node back. A
        GONE node is unknown to the protocol: its agent registers again."""
        record = self._known(node_id)
        if record.state is NodeState.GONE:
            raise NodeNotFound(node_id)
        now = self.clock()
        live = self.state.liveness[node_id]
        previous_at = live.last_heartbeat
        live.last_heartbeat = now
        rate = 0.0
        rss = 0
        disk = 0
        samples = {}
        for task_id, u in usage.items():
            rss += u.rss_bytes
            disk += u.disk_bytes
            samples[task_id] = (u.cpu_seconds, now)
            before = live.cpu_seconds.get(task_id)
            if before is not None and now > before[1]:
                rate += max(0.0, u.cpu_seconds - before[0]) / (now - before[1])
        live.cpu_seconds = samples
        live.cpu_rate = rate
        live.rss_bytes = rss
        live.disk_bytes = disk
        if previous_at is None or record.state is NodeState.UNREACHABLE:
            self.state.touch()
        if record.state is NodeState.UNREACHABLE:
            await self.applier.node_returned(node_id)
        self.state.heard(node_id)
        return self.state.nodes[node_id].state

    async def drain(self, node_id: str) -> NodeState:
        """The agent says it is leaving and will kill its tasks: offer the node nothing."""
        self._known(node_id)
        await self.applier.node_draining(node_id)
        return self.state.nodes[node_id].state

    def _spoke(self, record: NodeRecord) -> None:
        """The node's agent sent a request: as alive as a heartbeat would say, so an agent
        that long-polls (at least every ``wait`` seconds) is not lost while its heartbeats
        queue behind a busy master. Only the clock of the grace: usage, an UNREACHABLE
        node's return and a recovering node's first word stay the heartbeat's."""
        if record.state in (NodeState.ACTIVE, NodeState.DRAINING):
            self.state.liveness[record.id].last_heartbeat = self.clock()

    async def statuses(self, node_id: str, updates: Sequence[TaskStatus]) -> list[tuple[str, int]]:
        self._spoke(self._known(node_id))
        return await self.applier.apply_statuses(node_id, updates)

    async def desired(self, node_id: str, after: int, timeout: float) -> tuple[int, list[TaskSpec]]:
        """The node's desired task set once its revision
        is past ``after`` or ``timeout`` seconds have passed. The request counts as the
        agent's word when it comes (not when answered: a poll held open proves nothing)."""
        self._spoke(self._known(node_id))
        await self.state.wait_desired(node_id, after, timeout)
        self._known(node_id)
        revision = self.state.desired_revision.get(node_id, 0)
        return revision, [t.launch for t in self.state.desired_tasks(node_id)]

    # ------------------------------------------------------------ operators

    async def drain_node(self, node_id: str, deadline_seconds: float | None) -> NodeRecord:
        """Offer the node nothing and move its tasks elsewhere; kill what is left after
        ``deadline_seconds`` (None: wait for the apps' upgrade strategies alone)."""
        self._known(node_id)
        now = self.clock()
        deadline = None if deadline_seconds is None else now + deadline_seconds
        await self.applier.node_drain_set(node_id, NodeDrain(now, deadline))
        return self.state.nodes[node_id]

    async def undrain_node(self, node_id: str) -> NodeRecord:
        """End an operator's drain: the node takes new tasks again (its tasks not moved yet
        stay where they are)."""
        self._known(node_id)
        await self.applier.node_drain_set(node_id, None)
        return self.state.nodes[node_id]

    async def remove_node(self, node_id: str) -> NodeRecord:
        """Forget a node that is down or drained; its agent, if it comes back, registers
        as a new node would. An ACTIVE node, or one that still runs tasks, is refused."""
        record = self._known(node_id)
        if record.state is NodeState.ACTIVE:
            raise NodeBusy(
                node_id,
                f"is ACTIVE; drain it first (pallet node drain {node_id}) or stop its agent",
            )
        if record.state is NodeState.DRAINING:
            tasks = (self.state.tasks[t] for t in self.state.tasks_by_node.get(node_id, ()))
            left = [t for t in tasks if t.live]
            if left:
                raise NodeBusy(
                    node_id,
                    f"is DRAINING and still runs {len(left)} task(s); wait until they have "
                    "moved, or drain it with a --deadline",
                )
        await self.applier.node_remove(node_id)
        return record

    async def update_schedule(self, windows: tuple[Window, ...]) -> Maintenance:
        """Replace the maintenance schedule (``ValidationError`` names what is refused)."""

        def change(m: Maintenance) -> Maintenance:
            nodes = [
                (r.id, r.node.hostname, node_ip(r.address))
                for r in self.state.nodes.values()
                if r.state is not NodeState.GONE
            ]
            check_one_window(windows, nodes)
            return m.with_schedule(windows)

        return await self.applier.maintenance_set(change)

    async def machines_down(self, machines: tuple[MachineId, ...]) -> Maintenance:
        """Start maintenance: the machines' nodes become DOWN and their tasks are killed."""
        return await self.applier.maintenance_set(lambda m: m.with_down(machines))

    async def machines_up(self, machines: tuple[MachineId, ...]) -> Maintenance:
        """End maintenance: the machines leave the schedule and their nodes take tasks."""
        return await self.applier.maintenance_set(lambda m: m.with_up(machines))

    # ------------------------------------------------------------ the monitor

    def overdue(self) -> list[str]:
        """ACTIVE or DRAINING nodes whose last heartbeat is older than the grace period."""
        now = self.clock()
        out = []
        for node_id, record in self.state.nodes.items():
            if record.state not in (NodeState.ACTIVE, NodeState.DRAINING):
                continue
            last = self.state.liveness[node_id].last_heartbeat
            if last is None:
                self.state.liveness[node_id].last_heartbeat = now  # grace starts now
            elif now - last > self.grace + self.state.liveness[node_id].interval:
                out.append(node_id)
        return out

    def gone(self) -> list[str]:
        """UNREACHABLE nodes silent for ``gone_after`` seconds."""
        if self.gone_after is None:
            return []
        now = self.clock()
        out = []
        for node_id, record in self.state.nodes.items():
            if record.node.state is not NodeState.UNREACHABLE:
                continue
            last = self.state.liveness[node_id].last_heartbeat
            if last is not None and now - last > self.gone_after:
                out.append(node_id)
        return out

    async def check(self) -> list[str]:
        lost = self.overdue()
        for node_id in lost:
            await self.applier.node_unreachable(node_id)
        for node_id in self.gone():
            await self.applier.node_gone(node_id)
        return lost

    def check_period(self) -> float:
        """Seconds between two passes of the monitor: a quarter of the grace (at most 1 s),
        or a sixteenth of the heartbeat interval the agents are given when that is
        longer (at most 15 s). A pass walks every node; the interval grows with the node
        count, so the monitor's work per second stays flat as the cluster grows (every
        second, it was 6 % of an idle master's time at 12,500 nodes), and a lost node is
        still noticed within a sixteenth of its grace plus interval."""
        base = max(0.05, min(1.0, self.grace / 4))
        return max(base, min(15.0, self.interval() / 16))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_period())
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node monitor pass failed")


def _active(node: Node) -> Node:
    return replace(node, state=NodeState.ACTIVE) if node.state is not NodeState.ACTIVE else node
