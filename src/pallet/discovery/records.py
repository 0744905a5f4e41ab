"""The DNS records of a cluster: Mesos-DNS's names, Pallet's aliases and the VIPs; pure.

For each app with ready tasks (RUNNING, and healthy when checked):

    <app>.marathon.mesos, <app>.pallet          A    the tasks' addresses (IP sources
                                                     netinfo first: a task's own IP on a
                                                     container network, else its agent's)
    <app>.marathon.slave.mesos                  A    the agents' addresses
    <app>.marathon.containerip.dcos.thisdcos.directory  A  each task's own IP (its
                                                     agent's while tasks share the host network)
    _<app>._tcp.marathon.mesos, _<app>._tcp.pallet  SRV  0 0 <port> <task>.marathon.mesos
                                                     (host port; the container port for a
                                                     task with its own IP, Mesos' DiscoveryInfo)
    <task>.marathon.mesos                       A    that task's address (as the app's)
    <vip>.marathon.l4lb.thisdcos.directory      A    the VIP's address

``<app>`` is the folded app id (``names.app_label``). A name exists only while it has
records; the server answers NXDOMAIN for any other name of its zones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pallet.discovery.labels import VipTarget
from pallet.discovery.names import FRAMEWORK, MESOS_DOMAIN, mesos_names, task_label
from pallet.discovery.services import Service

__all__ = ["ZONES", "DnsRecord", "RecordTable", "build_records", "diff_names"]

ZONES = ("mesos", "pallet", "thisdcos.directory")
"""The zones Pallet answers for; other names go to the upstream resolvers."""


@dataclass(frozen=True, slots=True, order=True)
class DnsRecord:
    """One resource record: ``A`` (``data`` = address) or ``SRV`` (``data`` =
    ``"priority weight port target"``)."""

    name: str
    type: str
    data: str

    def zone_line(self, ttl: int) -> str:
        """The record in zone-file syntax (what ``unbound-control local_data`` reads)."""
        data = f"{self.data}." if self.type == "SRV" else self.data
        return f"{self.name}. {ttl} IN {self.type} {data}"


RecordTable = Mapping[str, tuple[DnsRecord, ...]]
"""Every name (lower case, no final dot) and its records, sorted."""


def build_records(
    services: Iterable[Service],
    vips: Iterable[VipTarget] = (),
    address_of: Callable[[str], str] = lambda host: host,
) -> dict[str, tuple[DnsRecord, ...]]:
    """The record table of ``services`` and ``vips``. ``address_of`` turns an agent's
    hostname into its address (the identity where agents register by address)."""
    table: dict[str, set[DnsRecord]] = {}

    def add(name: str, type_: str, data: str) -> None:
        table.setdefault(name, set()).add(DnsRecord(name, type_, data))

    for s in services:
        ready = s.ready
        if not ready:
            continue
        names = mesos_names(s.app_id)
        for e in ready:
            host = address_of(e.host)
            if not host:
                continue
            own = e.ip if e.own_ip and e.ip else host
            for key in ("a", "pallet"):
                add(names[key], "A", own)
            add(names["slave"], "A", host)
            add(names["containerip"], "A", e.ip or host)
            target = f"{task_label(s.app_id, e.task_id, e.node_id)}.{FRAMEWORK}.{MESOS_DOMAIN}"
            add(target, "A", own)
            for p in s.ports:
                if p.index >= len(e.ports) or not e.ports[p.index]:
                    continue
                for proto in p.protocol.split(","):
                    if proto not in ("tcp", "udp"):
                        continue
                    srv = f"0 0 {e.ports[p.index]} {target}"
                    add(names["srv"].replace("._tcp.", f"._{proto}."), "SRV", srv)
                    add(names["pallet_srv"].replace("._tcp.", f"._{proto}."), "SRV", srv)
    for v in vips:
        if v.name:
            add(v.fqdn, "A", v.address)
    return {name: tuple(sorted(records)) for name, records in sorted(table.items())}


def diff_names(old: RecordTable, new: RecordTable) -> tuple[list[str], list[str]]:
    """Names whose records changed: (gone or changed, new or changed)."""
    removed = [n for n, rs in old.items() if new.get(n) != rs]
    added = [n for n, rs in new.items() if old.get(n) != rs]
    return removed, added
