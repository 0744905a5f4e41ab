"""The etcd that ``pallet up --masters N`` runs for its masters: N members under the state
directory, started again on their own data (same names and ports) when ``pallet up``
starts again there, so the cluster's state outlives ``pallet up``; spawns processes.

The members' command lines are kept in ``<state>/etcd/cluster.json`` the first time;
later starts reuse them. Client ports sit just above the masters' (``--port`` + 100 on),
peers' are free ports chosen once.
"""

from __future__ import annotations

import json
from pathlib import Path

from pallet.store.etcd.server import EtcdCluster, EtcdMember, spawn_cluster, with_limits

__all__ = ["etcd_for_up", "quorum_problem"]


def quorum_problem(masters: int) -> str | None:
    """Why ``masters`` masters (and as many etcd members) make no sensible group."""
    if masters == 1:
        return None
    if masters < 1 or masters > 7:
        return f"{masters}: run 1 master, or 3, 5 or 7 for high availability"
    if masters % 2 == 0:
        return (
            f"{masters}: an even number of members has no more tolerance than one fewer and "
            f"a split can leave no majority; run {masters - 1} or {masters + 1}"
        )
    return None


def etcd_for_up(state: Path, size: int, first_client_port: int) -> EtcdCluster:
    """The up's etcd: started anew the first time, from its kept members afterwards."""
    root = state / "etcd"
    meta = root / "cluster.json"
    if meta.exists():
        doc = json.loads(meta.read_text())
        members = [
            EtcdMember(
                m["name"],
                m["client_url"],
                m["peer_url"],
                Path(m["data_dir"]),
                with_limits(m["args"]),
            )
            for m in doc["members"]
        ]
        if len(members) != size:
            raise ValueError(
                f"{state} holds a {len(members)}-member etcd; start it with --masters "
                f"{len(members)}, or give another --state-dir"
            )
        cluster = EtcdCluster(doc["token"], members)
        for m in members:
            m.start()
    else:
        ports = [first_client_port + i for i in range(size)]
        cluster = spawn_cluster(root / "members", size, client_ports=ports)
        root.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps(
                {
                    "token": cluster.token,
                    "members": [
                        {
                            "name": m.name,
                            "client_url": m.client_url,
                            "peer_url": m.peer_url,
                            "data_dir": str(m.data_dir),
                            "args": m.args,
                        }
                        for m in cluster.members
                    ],
                },
                indent=2,
            )
        )
    cluster.wait_ready(60.0)
    return cluster
