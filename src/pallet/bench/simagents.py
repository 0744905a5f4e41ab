"""Simulated agents for ``pallet bench scale``: thousands of nodes in one process, each speaking
the real agent protocol to a real master over HTTP (``bench.rawhttp``); spawns a process,
does network I/O.

Every simulated agent sends what a real one sends, built with the typed messages of
``pallet.model.messages``: it registers its node (``Registration``), long-polls its desired
set (``DesiredSet``, each new task read with ``TaskSpec.from_json`` as the real agent
reads it), reports each task that appears in it STARTING then RUNNING and each that
leaves it KILLED (``StatusBatch`` of at most 500, resent until the ``Acks`` come), and
heartbeats every ``interval`` seconds with each task's usage (``Heartbeat``); a 404 makes
it register again. As the real agent does, it beats at the interval and long-polls with
the wait the master grants in its answers to the registration and the heartbeats when
they are longer than its own. What it does not do is run anything: its tasks are entries in a dict,
so one event loop plays thousands of nodes. Unlike a real agent it skips the
``/v2/info`` cluster check, and the agents of one process share two pools of keep-alive
connections (one for the long-polls, with a connection per agent, one for everything
else) instead of one client each; the client is a small one over asyncio streams
(``bench.rawhttp``), not httpx, whose CPU per request made the agents, not the master,
what the bench measured.

The process reports counters to its parent over a pipe every ``report_every`` seconds,
and a summary with every heartbeat's latency when told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from pallet.bench.rawhttp import HttpError, RawHttp
from pallet.model import (
    Acks,
    Heartbeat,
    Node,
    PortRange,
    Registration,
    StatusBatch,
    TaskSpec,
    TaskState,
    TaskStatus,
    TaskUsage,
)

__all__ = ["AgentCounts", "SimAgents", "SimConfig", "sim_node"]

_CORES = (4, 8, 16)
_BATCH = 500
"""Statuses per post, as the real agent sends them."""
_KEEPALIVE = 2.0
"""Seconds an idle connection is reused: well inside uvicorn's 5 s, so that the master
never closes a connection just as an agent sends on it."""


def sim_node(index: int) -> Node:
    """The ``index``-th simulated node: 4, 8 or 16 cores (3:5:2, by index), 4 GiB of memory
    per core, 200 GiB of disk, host ports 31000-32000, one of four zones."""
    pick = index * 7919 % 10
    cores = _CORES[0] if pick < 3 else _CORES[1] if pick < 8 else _CORES[2]
    name = f"scale-{index:05d}"
    return Node.build(
        name,
        cpu_milli=cores * 1000,
        mem_mib=cores * 4096,
        disk_mib=200 * 1024,
        hostname=f"{name}.bench.test",
        ports=(PortRange(31000, 32000),),
        attributes={"zone": f"zone-{index % 4}"},
    )


@dataclass(frozen=True, slots=True)
class SimConfig:
    url: str
    first: int
    """Index of the first node this process plays."""
    count: int
    interval: float = 5.0
    """Seconds between an agent's heartbeats (the real agent's default)."""
    poll_wait: float = 30.0
    """Seconds a long-poll may wait (the real agent's default)."""
    pool: int = 128
    """Keep-alive connections shared by registrations, statuses and heartbeats."""
    registering: int = 32
    """Registrations in flight at once."""
    report_every: float = 0.5


@dataclass(slots=True)
class AgentCounts:
    """What one process's agents did so far (the parent sums the processes)."""

    registered: int = 0
    desired: int = 0
    """Tasks in the agents' desired sets now."""
    running: int = 0
    """Tasks whose RUNNING status the master acknowledged (less those killed since)."""
    heartbeats: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_desired_at: float = 0.0
    """time.time() when a task last joined a desired set."""
    last_running_at: float = 0.0
    """time.time() when the master last acknowledged a RUNNING status."""
    heartbeat_ms: list[float] = field(default_factory=list)
    """Latency of each heartbeat (pool wait included: what delays it for the master)."""
    max_gap_s: float = 0.0
    """The longest time between two answered heartbeats of one agent."""
    not_active: int = 0
    """Heartbeats answered with a node state other than ACTIVE."""
    granted_s: float = 0.0
    """The longest heartbeat interval the master asked of an agent."""
    poll_wait_s: float = 0.0
    """The longest long-poll wait the master granted an agent."""
    polls: int = 0
    """Long-polls answered (with a change of the set or by their timeout)."""
    status_posts: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def snapshot(self, with_latencies: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "registered": self.registered,
            "desired": self.desired,
            "running": self.running,
            "heartbeats": self.heartbeats,
            "errors": dict(self.errors),
            "last_desired_at": self.last_desired_at,
            "last_running_at": self.last_running_at,
            "max_gap_s": self.max_gap_s,
            "not_active": self.not_active,
            "granted_s": self.granted_s,
            "poll_wait_s": self.poll_wait_s,
            "polls": self.polls,
            "status_posts": self.status_posts,
        }
        if with_latencies:
            doc["heartbeat_ms"] = list(self.heartbeat_ms)
        return doc


class _Agent:
    """One simulated node's agent."""

    def __init__(self, node: Node, sim: _Process) -> None:
        self.node = node
        self.sim = sim
        self.boot_id = uuid.uuid4().hex
        self.tasks: dict[str, tuple[int, float]] = {}
        """Task id -> (its last seq, when it started)."""
        self.outbox: dict[tuple[str, int], TaskStatus] = {}
        self.sending: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()
        self.revision = 0
        self.base = f"/v1/agent/nodes/{node.id}"
        self.granted = 0.0
        """The heartbeat interval the master asks for (as the real agent keeps it)."""
        self.poll_wait = sim.config.poll_wait
        """The wait of the next long-poll: the longer of its own and the granted one."""

    def _granted(self, doc: dict[str, Any]) -> float:
        """Take the long-poll wait a registration's or heartbeat's answer grants; the
        heartbeat interval it asks for."""
        wait = doc.get("poll_wait")
        if isinstance(wait, int | float) and 0 <= wait < 3600:
            self.poll_wait = max(self.sim.config.poll_wait, float(wait))
            self.sim.counts.poll_wait_s = max(self.sim.counts.poll_wait_s, float(wait))
        return float(doc.get("heartbeat_interval") or 0.0)

    async def register(self) -> None:
        self.registered.clear()
        # No log server: a loopback address the master accepts (the simulated agents
        # connect from loopback) and never calls, since nobody asks for their logs.
        body = Registration(self.node, "http://127.0.0.1:9", self.boot_id).to_json()
        delay = 0.1
        while True:
            async with self.sim.registering:
                try:
                    status, answer = await self.sim.client.request(
                        "POST", "/v1/agent/register", body
                    )
                except HttpError as e:
                    status, error = 0, e.kind
            if status == 200:
                self.granted = self._granted(json.loads(answer))
                if not self.sim.seen_registered.get(self.node.id):
                    self.sim.seen_registered[self.node.id] = True
                    self.sim.counts.registered += 1
                self.registered.set()
                return
            self.sim.counts.error(f"register {status or error}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _unknown(self) -> None:
        self.sim.counts.error("404 (registered again)")
        self.revision = 0
        await self.register()

    async def poll_forever(self) -> None:
        while True:
            await self.registered.wait()
            wait = self.poll_wait
            try:
                status, body = await self.sim.polls.request(
                    "GET",
                    f"{self.base}/desired?after={self.revision}&wait={wait:g}",
                    timeout=wait + 30,
                )
            except HttpError as e:
                self.sim.counts.error(f"long-poll {e.kind}")
                await asyncio.sleep(1.0)
                continue
            if status == 404:
                await self._unknown()
                continue
            if status != 200:
                self.sim.counts.error(f"long-poll {status}")
                await asyncio.sleep(1.0)
                continue
            self.sim.counts.polls += 1
            self._desired(json.loads(body))

    def _desired(self, doc: dict[str, Any]) -> None:
        counts = self.sim.counts
        now = time.time()
        wanted: set[str] = set()
        for i, item in enumerate(doc["tasks"]):
            task_id = item["task_id"]
            wanted.add(task_id)
            if task_id not in self.tasks:
                TaskSpec.from_json(item, f"/tasks/{i}")  # what the real agent accepts
                self.tasks[task_id] = (2, now)
                for s in (
                    TaskStatus(task_id, TaskState.STARTING, 1),
                    TaskStatus(task_id, TaskState.RUNNING, 2),
                ):
                    self.outbox[(task_id, s.seq)] = s
                counts.desired += 1
                counts.last_desired_at = now
        for task_id in [t for t in self.tasks if t not in wanted]:
            seq, _ = self.tasks.pop(task_id)
            killed = TaskStatus(task_id, TaskState.KILLED, seq + 1)
            self.outbox[(task_id, killed.seq)] = killed
            counts.desired -= 1
        self.revision = int(doc["revision"])
        if self.outbox and (self.sending is None or self.sending.done()):
            self.sending = asyncio.create_task(self._send())

    async def _send(self) -> None:
        """Post the outbox until the master has acknowledged all of it."""
        counts = self.sim.counts
        while self.outbox:
            await self.registered.wait()
            batch = list(self.outbox.values())[:_BATCH]
            try:
                status, body = await self.sim.client.request(
                    "POST", f"{self.base}/status", StatusBatch(tuple(batch)).to_json()
                )
            except HttpError as e:
                status, error = 0, e.kind
            if status == 404:
                await self._unknown()
                continue
            if status != 200:
                counts.error(f"status {status or error}")
                await asyncio.sleep(1.0)
                continue
            now = time.time()
            counts.status_posts += 1
            for key in Acks.from_json(json.loads(body)).acks:
                sent = self.outbox.pop(key, None)
                if sent is not None and sent.state is TaskState.RUNNING:
                    counts.running += 1
                    counts.last_running_at = now
                elif sent is not None and sent.state is TaskState.KILLED:
                    counts.running -= 1

    async def heartbeat_forever(self, offset: float) -> None:
        await asyncio.sleep(offset)  # agents started together must not beat together
        counts = self.sim.counts
        last_answer: float | None = None
        while True:
            await self.registered.wait()
            now = time.time()
            usage = {
                tid: TaskUsage(cpu_seconds=(now - started) * 0.01, rss_bytes=8 << 20)
                for tid, (_, started) in self.tasks.items()
            }
            start = time.perf_counter()
            try:
                status, body = await self.sim.client.request(
                    "POST", f"{self.base}/heartbeat", Heartbeat(usage).to_json()
                )
            except HttpError as e:
                status, error = 0, e.kind
            if status == 200:
                done = time.perf_counter()
                counts.heartbeats += 1
                counts.heartbeat_ms.append((done - start) * 1000)
                if last_answer is not None:
                    counts.max_gap_s = max(counts.max_gap_s, done - last_answer)
                last_answer = done
                doc = json.loads(body)
                if doc.get("state") != "ACTIVE":
                    counts.not_active += 1
                self.granted = self._granted(doc)
                counts.granted_s = max(counts.granted_s, self.granted)
            elif status == 404:
                await self._unknown()
                last_answer = None
                continue
            else:
                counts.error(f"heartbeat {status or error}")
            await asyncio.sleep(max(self.sim.config.interval, self.granted))


class _Process:
    """The agents of one process and what they share."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.counts = AgentCounts()
        self.seen_registered: dict[str, bool] = {}
        # waiting for a pooled connection is load: only the exchange itself is timed
        self.client = RawHttp(config.url, config.pool, _KEEPALIVE)
        self.polls = RawHttp(config.url, config.count + 8, _KEEPALIVE)
        self.registering = asyncio.Semaphore(config.registering)
        self.agents = [_Agent(sim_node(config.first + i), self) for i in range(config.count)]

    async def run(self, pipe: Pipe) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(pipe.fileno(), stop.set)
        tasks: list[asyncio.Task[None]] = []
        interval = self.config.interval
        for i, agent in enumerate(self.agents):
            tasks.append(asyncio.create_task(agent.register()))
            tasks.append(asyncio.create_task(agent.poll_forever()))
            offset = interval * i / max(1, len(self.agents))
            tasks.append(asyncio.create_task(agent.heartbeat_forever(offset)))
        try:
            while not stop.is_set():
                pipe.send(self.counts.snapshot(with_latencies=False))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.report_every)
        finally:
            loop.remove_reader(pipe.fileno())
            # uvloop left the pipe non-blocking: the last report (with every latency) is
            # larger than the pipe holds, and a full pipe must wait, not raise EAGAIN.
            os.set_blocking(pipe.fileno(), True)
            for agent in self.agents:
                if agent.sending is not None:
                    tasks.append(agent.sending)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.client.close()
            self.polls.close()
        pipe.recv()  # the stop message
        pipe.send(self.counts.snapshot(with_latencies=True))


def _main(config: SimConfig, pipe: Pipe) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through the pipe
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(_Process(config).run(pipe))
    else:
        uvloop.run(_Process(config).run(pipe))


class SimAgents:
    """One process playing ``config.count`` agents; ``counts()`` is its latest report. A
    thread reads the reports as they come, so the process never blocks on a full pipe."""

    def __init__(self, config: SimConfig) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._process = ctx.Process(target=_main, args=(config, child), daemon=True)
        self._latest: dict[str, Any] = AgentCounts().snapshot(False)
        self._final = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> None:
        self._process.start()
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                doc = self._pipe.recv()
                self._latest = doc
                if "heartbeat_ms" in doc:
                    self._final.set()
                    return

    def counts(self) -> dict[str, Any]:
        if not self._process.is_alive() and self._process.exitcode not in (None, 0):
            raise RuntimeError(f"a simulated agent process exited with {self._process.exitcode}")
        return self._latest

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop the agents; their final counts, heartbeat latencies included."""
        try:
            with contextlib.suppress(OSError):
                self._pipe.send("stop")
            self._final.wait(timeout)
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        return self._latest
