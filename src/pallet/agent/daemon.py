"""``pallet agent``: the node daemon's conversation with the master over HTTP; asyncio I/O.

    fingerprint ─▶ register ─▶ ┌ long-poll desired set ─▶ TaskRuntime.set_desired ┐
                               │ runtime.step (exits, kill deadlines, resends)     ├▶ outbox
                               │ heartbeat with per-task usage                     │
                               │ health checks of running tasks (HealthMonitor)    │
                               └ outbox ─▶ POST statuses ─▶ acks ─▶ acknowledge ◀──┘

Level-triggered: whatever happened while the master was away, the next desired set
is the truth. Statuses go out at least once (the runtime resends until acknowledged).
A 404 from the master means it does not know this node: register again.

Stopped (SIGTERM, SIGINT) or killed, the agent leaves its tasks running, as a Mesos
agent does, so it can be upgraded or restarted without touching them: started again
with the same work directory it is the same node with the same boot id (unless the host
rebooted), adopts the tasks it checkpointed and goes on reporting them, so the master
replaces nothing. Drained (SIGUSR1, what ``pallet up`` sends on Ctrl-C) it kills its
tasks (SIGTERM, SIGKILL after their grace), reports that, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from pallet.agent.bridge import DEFAULT_SUBNET, BridgeNetwork, agent_networks, check_networks
from pallet.agent.cgroup_isolator import detect_isolator
from pallet.agent.checkpoint import CheckpointStore
from pallet.agent.checks import HealthMonitor
from pallet.agent.containers import DEFAULT_PIDS_LIMIT, Containers
from pallet.agent.credentials import AgentCredentials, JoinRefused, SecurityConfig
from pallet.agent.events import SendStatus
from pallet.agent.executor import Executor
from pallet.agent.fetcher import FetchCache, Fetcher
from pallet.agent.fingerprint import fingerprint
from pallet.agent.gpus import detect_gpus
from pallet.agent.images import ImageStore
from pallet.agent.images.pull import Puller
from pallet.agent.images.store import DEFAULT_LIMIT
from pallet.agent.isolation import DEFAULT_TASK_PIDS_MAX
from pallet.agent.logserver import LogServer
from pallet.agent.masters import Granted, Masters, parse_masters
from pallet.agent.procfs import read_boot_id
from pallet.agent.runtime import TaskRuntime
from pallet.model import (
    Acks,
    Heartbeat,
    NodeDisk,
    Registration,
    StatusBatch,
    TaskSpec,
    TaskUsage,
    ValidationError,
)
from pallet.model.errors import PalletError
from pallet.model.net import is_ip, is_loopback

__all__ = [
    "UNAUTHENTICATED",
    "AgentConfig",
    "AgentDaemon",
    "DesiredSpecs",
    "WrongCluster",
    "is_loopback",
    "serve_agent",
]

log = logging.getLogger(__name__)

_REFUSED_RETRY = 5.0
"""Seconds between registrations the master refused with 409 (a machine DOWN for
maintenance)."""


class WrongCluster(PalletError):
    """The master belongs to another cluster than this agent's work dir."""

    def __init__(self, work_dir: Path, known: str, master: str, cluster: str) -> None:
        super().__init__(
            f"the work dir {work_dir} belongs to cluster {known}, but the master at {master} "
            f"is cluster {cluster}; give --master that cluster's master, or another --work-dir "
            "(the tasks checkpointed here belong to the other cluster)"
        )


@dataclass(frozen=True, slots=True)
class AgentConfig:
    master: str
    work_dir: Path
    hostname: str | None = None
    bind: str = "127.0.0.1"
    port: int = 5051
    resources: str | None = None
    attributes: str | None = None
    role: str = "*"
    heartbeat_interval: float = 5.0
    poll_wait: float = 30.0
    task_user: str | None = None
    """Who runs the tasks whose app names no ``user`` (None: the agent's own user)."""
    fetcher_cache_mib: int = 2048
    """Size of the fetcher's cache of URIs (Mesos' ``--fetcher_cache_size``)."""
    image_store_mib: int = DEFAULT_LIMIT >> 20
    """Images kept beyond those in use (least recently used collected first)."""
    registry_auth_file: Path | None = None
    """A Docker-style ``auths`` file with registry credentials (skopeo's ``--authfile``)."""
    insecure_registries: frozenset[str] = frozenset()
    """Registries that may answer plain HTTP besides those on loopback."""
    container_pids_limit: int = DEFAULT_PIDS_LIMIT
    bridge_subnet: str = DEFAULT_SUBNET
    """The subnet of the agent's bridge (containers with ``container/bridge`` networking)."""
    disks: tuple[NodeDisk, ...] = ()
    """The operator's disks for ``path`` and ``mount`` persistent volumes."""
    networks: tuple[tuple[str, str], ...] = ()
    """Named container networks (name, subnet): a task of an app on ``networks: [{mode:
    container, name}]`` gets an address of its own there (``--network``)."""
    security: SecurityConfig | None = None
    """Join a secured cluster: a bootstrap secret, the CA (None: an open cluster)."""
    task_pids_max: int = DEFAULT_TASK_PIDS_MAX
    """Processes and threads a command task may have at once, unless its app's
    ``PALLET_PIDS_MAX`` label says otherwise."""
    allowed_task_users: frozenset[str] | None = None
    """The users an app's ``user`` may name besides ``task_user`` (None: any)."""
    dynamic_task_users: bool = False
    """Tasks whose app names no user run each as a uid of its own (needs root)."""


def _node_id(work_dir: Path) -> str:
    """This agent's node id, kept in the work directory so a restart is the same node."""
    path = work_dir / "node-id"
    if path.exists():
        return path.read_text().strip()
    node_id = f"node-{uuid.uuid4().hex[:12]}"
    path.write_text(node_id + "\n")
    return node_id


def _agent_run_id(work_dir: Path) -> str:
    """The id of this agent's run as the master knows it, kept in the work directory:
    a restarted agent that recovers its tasks is the same run. A new id (the master then
    drops the node's tasks and replaces them) when the host has rebooted, for no task
    survives that."""
    path = work_dir / "boot-id"
    kernel = read_boot_id()
    try:
        agent_id, kernel_then = [*path.read_text().splitlines(), "", ""][:2]
    except OSError:
        agent_id, kernel_then = "", ""
    if agent_id.strip() and kernel_then.strip() == kernel:
        return agent_id.strip()
    agent_id = uuid.uuid4().hex
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(f"{agent_id}\n{kernel}\n")  # the agent's id, then the kernel's
    temp.replace(path)
    return agent_id


_PRIVATE_DIRS = ("checkpoints", "containers", "fetcher-cache", "images", "network", "networks")


def _close_to_tasks(work: Path) -> None:
    """Tasks pass through the work dir to their sandboxes and volumes but may not list
    it (0711), and may not enter what only the agent uses (0700): checkpoints (every
    task's environment), images, bundles, the fetcher's cache, network records."""
    work.chmod(0o711)
    for name in _PRIVATE_DIRS:
        (work / name).mkdir(mode=0o700, exist_ok=True)
        (work / name).chmod(0o700)


class AgentDaemon:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        work = Path(config.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        _close_to_tasks(work)
        self.node_id = _node_id(work)
        self.hostname = config.hostname or socket.gethostname()
        sandboxes = work / "sandboxes"
        sandboxes.mkdir(exist_ok=True)
        gpus, found_by = detect_gpus()
        if gpus:
            log.info("found %d GPUs with %s: %s", len(gpus), found_by, gpus[0].name)
        else:
            log.info("no GPUs found (%s)", found_by)
        self.node = fingerprint(
            self.node_id,
            sandbox_root=sandboxes,
            hostname=self.hostname,
            resources=config.resources,
            attributes=config.attributes,
            role=config.role,
            gpus=gpus,
        )
        check_networks(list(config.networks), config.bridge_subnet)
        names = tuple(name for name, _ in config.networks)
        self.node = replace(self.node, networks=names, disks=config.disks)
        host_address = self.hostname if is_ip(self.hostname) else None
        self.run_id = _agent_run_id(work)
        isolator = detect_isolator(
            self.node_id,
            pids_max=config.task_pids_max,
            devices=bool(gpus[: self.node.gpu_count]),
        )
        puller = Puller(
            work / "images" / "blobs",
            work / "images" / "scratch",
            auth_file=config.registry_auth_file,
            insecure=config.insecure_registries,
        )
        containers = Containers(
            work / "containers",
            ImageStore(work / "images", puller=puller, limit=config.image_store_mib << 20),
            agent_id=self.node_id,
            isolator=isolator,
            hostname=self.hostname,
            pids_limit=config.container_pids_limit,
            network=BridgeNetwork(
                work / "network",
                self.node_id,
                subnet=config.bridge_subnet,
                host_address=host_address,
            ),
            networks=agent_networks(work / "networks", self.node_id, config.networks, host_address),
        )
        self.runtime = TaskRuntime(
            Executor(
                sandboxes,
                agent_id=self.node_id,
                node_id=self.node_id,
                host=self.hostname,
                isolator=isolator,
                containers=containers,
                sweep=False,  # recover() sweeps what it does not adopt
                gpus=gpus[: self.node.gpu_count],
                task_user=config.task_user,
                fetcher=Fetcher(FetchCache(work / "fetcher-cache", config.fetcher_cache_mib << 20)),
            ),
            checkpoints=CheckpointStore(work / "checkpoints"),
        )
        self.runtime.executor.stager.allowed_users = config.allowed_task_users
        self.runtime.executor.stager.volumes.disk_roots = tuple(d.root for d in config.disks)
        self.runtime.executor.stager.dynamic_users = config.dynamic_task_users
        self.health = HealthMonitor(self.runtime, self.hostname)
        self.creds = (
            AgentCredentials(work, self.node_id, config.security) if config.security else None
        )
        self.logs = LogServer(self._read_log, config.bind, config.port)
        self.address = ""
        self._outbox: dict[tuple[str, int], SendStatus] = {}
        self._outbox_ready = asyncio.Event()
        self._acking: set[asyncio.Task[None]] = set()
        self._desired = DesiredSpecs()
        self._registered = asyncio.Event()
        self.granted = Granted()
        """The heartbeat interval and long-poll wait the master last asked for (it bounds
        the cluster's heartbeats and idle polls per second); the agent keeps the longer
        of each and its own."""
        self._stopping = False
        self.drain = False
        """At stop, kill the tasks (True) or leave them to the next run (False)."""
        self.fatal: PalletError | None = None
        """Why the agent stopped on its own (raised once it has stopped)."""
        self._stop = asyncio.Event()
        self.client = self._master_client()

    def _master_client(self) -> Masters:
        urls = parse_masters(self.config.master)
        if self.creds is None:
            return Masters(urls)
        # Calls leave from the address the log server binds, so the master sees the
        # agent at the address it registers (and signs its certificate for that one).
        bind = self.config.bind
        local = bind if bind not in ("0.0.0.0", "::", "") else None
        verify = self.creds.client_tls()
        transport = httpx.AsyncHTTPTransport(local_address=local, verify=verify)
        client = Masters(urls, auth=self.creds, transport=transport, verify=verify)
        self.creds.attach(client)
        return client

    def _read_log(
        self, task_id: str, stream: str, offset: int, length: int | None, container: str | None
    ) -> Any:
        return self.runtime.read_log(task_id, stream, offset, length, container)

    # ------------------------------------------------------------ life

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then, if ``drain`` is set by then, kill every task
        and report it, or else leave the tasks running for the next run to adopt."""
        loop = asyncio.get_running_loop()
        self._stop = stop

        def publish(statuses: list[SendStatus]) -> None:  # from the runtime's thread
            loop.call_soon_threadsafe(self._enqueue, statuses)

        self.runtime.publish = publish
        self.runtime.executor.stager.secrets = lambda spec: self._fetch_secrets(spec, loop)
        self._enqueue(await asyncio.to_thread(self.runtime.recover))
        if self.creds is None:
            await self._start_logs()
        loops = [
            asyncio.create_task(_forever(loop))
            for loop in (
                self._poll_loop,
                self._step_loop,
                self._send_loop,
                self._heartbeat_loop,
                self._health_loop,
            )
        ]
        # Registering retries until a master answers: a stop must not wait for that.
        registering = asyncio.create_task(self._register())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({registering, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not registering.done():
            registering.cancel()
        elif isinstance(registering.exception(), WrongCluster | JoinRefused):
            self.fatal = registering.exception()  # type: ignore[assignment]
            stop.set()
        await stop.wait()
        self._stopping = True
        faulthandler.cancel_dump_traceback_later()
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.shutdown()
        if self.fatal is not None:
            raise self.fatal

    def _fetch_secrets(self, spec: TaskSpec, loop: asyncio.AbstractEventLoop) -> dict[str, str]:
        """The values of ``spec``'s secrets, asked of the master with this node's
        credential (from a worker thread preparing the task; blocks it, not the loop)."""
        path = f"/v1/agent/nodes/{self.node_id}/tasks/{spec.task_id}/secrets"
        future = asyncio.run_coroutine_threadsafe(self.client.get(path, timeout=15.0), loop)
        try:
            r = future.result(timeout=30.0)
        except (httpx.HTTPError, TimeoutError) as e:
            future.cancel()
            raise PalletError(f"cannot fetch its secrets from the master: {e}") from None
        if r.status_code != 200:
            try:
                message = str(r.json().get("message", ""))
            except ValueError:
                message = r.text[:200]
            raise PalletError(f"the master refused its secrets ({r.status_code}): {message}")
        return {str(s["source"]): str(s["value"]) for s in r.json()["secrets"]}

    async def shutdown(self) -> None:
        if self.fatal is not None:  # nothing to tell a master of another cluster
            await self.logs.close()
            await self.client.aclose()
            return
        if self.drain:
            # Leaving first, so that the master places the replacements elsewhere.
            with contextlib.suppress(httpx.HTTPError):
                await self.client.post(f"/v1/agent/nodes/{self.node_id}/drain", timeout=2.0)
            self._enqueue(await asyncio.to_thread(self.runtime.close))
        else:
            log.info(
                "stopping; %d tasks run on for the next agent", len(self.runtime.executor.running())
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), 3.0)
        if self._acking:  # the ends acknowledged now remove their checkpoints
            await asyncio.wait(set(self._acking), timeout=3.0)
        await self.logs.close()
        await self.client.aclose()

    async def _start_logs(self) -> None:
        """Serve logs (on a secured cluster: TLS with the certificate the join brought,
        answering the master only)."""
        if self.address:
            return
        if self.creds is not None:
            self.logs.tls = self.creds.server_tls()
            self.logs.authorize = self.creds.master_may_call
        port = await self.logs.start()
        scheme = "https" if self.logs.tls is not None else "http"
        self.address = f"{scheme}://{self.config.bind}:{port}"

    # ------------------------------------------------------------ registering

    async def _check_cluster(self) -> None:
        """Join only the cluster this work dir belongs to: its id (the master's
        ``frameworkId``) is kept in ``<work dir>/cluster-id`` at the first registration."""
        r = await self.client.get("/v2/info")
        r.raise_for_status()
        cluster = str(r.json().get("frameworkId") or "")
        if not cluster:
            return
        path = Path(self.config.work_dir) / "cluster-id"
        try:
            known = path.read_text().strip()
        except FileNotFoundError:
            known = ""
        if known and known != cluster:
            raise WrongCluster(self.config.work_dir, known, self.config.master, cluster)
        if not known:
            temp = path.with_name(path.name + ".tmp")
            temp.write_text(cluster + "\n")
            temp.replace(path)

    async def _register(self) -> None:
        self._registered.clear()
        delay = 0.05
        while True:
            try:
                if self.creds is not None and self.creds.stale():
                    await self.creds.login(self.client)
                    await self._start_logs()
                await self._check_cluster()
                body = Registration(self.node, self.address, self.run_id).to_json()
                r = await self.client.post("/v1/agent/register", json=body)
                if r.status_code == 200:
                    log.info("registered as %s with %s", self.node_id, self.config.master)
                    self.granted.take(r)
                    self._registered.set()
                    return
                log.warning("master refused registration (%s): %s", r.status_code, r.text)
                if r.status_code == 409:
                    # Kept out on purpose (its machine is DOWN for maintenance): that lasts
                    # minutes to hours, so ask every few seconds, not four times a second.
                    await asyncio.sleep(_REFUSED_RETRY)
                    continue
            except JoinRefused:
                raise
            except (httpx.HTTPError, ValueError) as e:
                log.info("master not reachable yet: %s", e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)  # the master may be starting with us: check often

    async def _on_unknown_node(self) -> None:
        log.warning("the master does not know node %s: registering again", self.node_id)
        try:
            await self._register()
        except WrongCluster as exc:  # another master now answers there: stop, keep the tasks
            log.error("%s", exc)
            self.fatal = exc
            self._stop.set()
            raise asyncio.CancelledError from None

    # ------------------------------------------------------------ loops

    async def _poll_loop(self) -> None:
        revision = -1
        while True:
            await self._registered.wait()
            wait = self.granted.wait_for(self.config.poll_wait)
            try:
                r = await self.client.get(
                    f"/v1/agent/nodes/{self.node_id}/desired",
                    params={"after": revision, "wait": wait},
                    timeout=wait + 10,
                )
            except httpx.HTTPError as e:
                log.info("long-poll failed: %s", e)
                await asyncio.sleep(1.0)
                continue
            if r.status_code == 404:
                await self._on_unknown_node()
                revision = -1
                continue
            if r.status_code != 200:
                await asyncio.sleep(1.0)
                continue
            doc = r.json()
            specs = self._desired.read(doc.get("tasks") or ())
            self._enqueue(await asyncio.to_thread(self.runtime.set_desired, specs))
            reserved = doc.get("volumes")
            if isinstance(reserved, list):
                await asyncio.to_thread(
                    self.runtime.executor.prune_volumes, [str(v) for v in reserved], specs
                )
            revision = doc["revision"]

    async def _step_loop(self) -> None:
        while True:
            self._enqueue(await asyncio.to_thread(self.runtime.step, 0.5))

    async def _health_loop(self) -> None:
        await self.health.run(self._enqueue)

    def _enqueue(self, statuses: list[SendStatus]) -> None:
        for s in statuses:
            self._outbox[(s.task_id, s.seq)] = s
        if self._outbox:
            self._outbox_ready.set()

    async def _send_loop(self) -> None:
        while True:
            await self._outbox_ready.wait()
            # Cleared before sending: whatever is enqueued meanwhile sets it again. (A set
            # Event's wait() does not yield; a loop that spun on one would starve the agent.)
            self._outbox_ready.clear()
            await self._registered.wait()
            try:
                await self._flush()
            except httpx.HTTPError as e:
                log.info("cannot post statuses yet: %s", e)
                self._outbox_ready.set()
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        """Post everything in the outbox; acknowledge what the master acknowledged."""
        while self._outbox:
            batch = list(self._outbox.values())[:500]
            r = await self.client.post(
                f"/v1/agent/nodes/{self.node_id}/status",
                json=StatusBatch(tuple(batch)).to_json(),
            )
            if r.status_code == 404:
                await self._on_unknown_node()
                continue
            if r.status_code != 200:
                log.warning("master refused statuses (%s): %s", r.status_code, r.text)
                await asyncio.sleep(1.0)
                continue
            acked = list(Acks.from_json(r.json()).acks)
            for key in acked:
                self._outbox.pop(key, None)
            if acked:
                task = asyncio.create_task(self._acknowledge(acked))
                self._acking.add(task)
                task.add_done_callback(self._acking.discard)

    async def _acknowledge(self, acked: list[tuple[str, int]]) -> None:
        """Tell the runtime what the master stored, off the event loop: a batch of
        launches holds the runtime's lock until its last task started, and meanwhile the
        loop goes on posting the statuses the batch publishes early (and heartbeats).
        Done here, the loop waited for the whole batch after the first early post."""
        try:
            self._enqueue(await asyncio.to_thread(self.runtime.acknowledge_all, acked))
        except Exception:  # the runtime resends what stays unacknowledged; the master dedups
            log.exception("acknowledging %d statuses failed", len(acked))

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = self.granted.beat_every(self.config.heartbeat_interval)
            # A loop that stops beating is a bug worth seeing: dump every thread's stack.
            faulthandler.dump_traceback_later(max(30.0, 10 * interval), exit=False)
            await self._registered.wait()
            if self.creds is not None and self.creds.stale():
                with contextlib.suppress(httpx.HTTPError, JoinRefused):
                    await self.creds.login(self.client)  # before it runs out, not after
            try:
                usage = await asyncio.wait_for(asyncio.to_thread(self._usage), 2.0)
            except TimeoutError:
                log.warning("reading task usage took over 2 s; heartbeat without it")
                usage = {}
            try:
                r = await self.client.post(
                    f"/v1/agent/nodes/{self.node_id}/heartbeat", json=Heartbeat(usage).to_json()
                )
                if r.status_code == 404:
                    await self._on_unknown_node()
                    continue
                if r.status_code == 200:
                    self.granted.take(r)
                    interval = self.granted.beat_every(self.config.heartbeat_interval)
            except httpx.HTTPError as e:
                log.info("heartbeat failed: %s", e)
            await asyncio.sleep(interval)

    def _usage(self) -> dict[str, TaskUsage]:
        out = {}
        now = time.monotonic()
        for task_id in self.runtime.executor.running():
            try:
                u = self.runtime.sample(task_id)
            except Exception as e:  # the task may end (and its cgroup go) while it is read
                log.debug("no usage for %s: %s", task_id, e)
                continue
            if u is not None:
                out[task_id] = TaskUsage(
                    cpu_seconds=u.cpu_seconds,
                    rss_bytes=u.mem_rss_bytes,
                    disk_bytes=self.runtime.executor.disk_usage(task_id, now),
                )
        return out


class DesiredSpecs:
    """The task specs of the master's desired sets, each read once. A desired set lists
    every task of the node and comes again whenever it changed, so while tasks arrive in
    waves each set repeats all the earlier ones; reading every spec each time (a third of
    a millisecond a spec on this machine) grew with the square of the node's tasks. A spec
    whose document is unchanged since the last set is reused."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[object, TaskSpec]] = {}

    def read(self, items: Iterable[object]) -> list[TaskSpec]:
        """The specs of ``items`` (a desired set's ``tasks``); one that does not validate
        is logged and left out, as before."""
        specs: list[TaskSpec] = []
        known: dict[str, tuple[object, TaskSpec]] = {}
        for i, item in enumerate(items):
            task_id = item.get("task_id") if isinstance(item, dict) else None
            seen = self._known.get(task_id) if isinstance(task_id, str) else None
            if seen is not None and seen[0] == item:
                spec = seen[1]
            else:
                try:
                    spec = TaskSpec.from_json(item, f"/tasks/{i}")
                except ValidationError as e:
                    log.error("master sent a task this agent cannot run: %s", e)
                    continue
            specs.append(spec)
            known[spec.task_id] = (item, spec)
        self._known = known
        return specs


async def _forever(loop: Callable[[], Awaitable[None]]) -> None:
    """Run one of the agent's loops; a bug in one pass is logged and the loop goes on,
    for a loop that dies silently would leave the node looking lost."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent loop %s failed; restarting it", loop.__name__)
            await asyncio.sleep(1.0)


UNAUTHENTICATED = (
    "WARNING: {what} listens on {host}, beyond this machine, and its API is "
    "UNAUTHENTICATED: anyone who can reach it can run commands here. Bind 127.0.0.1 "
    "unless this network is trusted."
)


def serve_agent(config: AgentConfig) -> None:
    """Run the agent until SIGTERM or SIGINT (its tasks run on) or SIGUSR1 (it kills
    them first)."""
    import signal
    import sys

    # A drain asked for while the agent is still starting (it may be adopting tasks)
    # is remembered, not the default action (exit, leaving the tasks behind).
    early: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: early.append(signum))
    faulthandler.register(signal.SIGUSR2)  # `kill -USR2 <pid>` prints every thread's stack
    if not is_loopback(config.bind) and config.security is None:
        print(UNAUTHENTICATED.format(what="the agent", host=config.bind), file=sys.stderr)

    async def main() -> None:
        daemon = AgentDaemon(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def drain() -> None:
            daemon.drain = True
            stop.set()

        loop.add_signal_handler(signal.SIGUSR1, drain)
        if early:
            drain()
        await daemon.run(stop)

    asyncio.run(main())
