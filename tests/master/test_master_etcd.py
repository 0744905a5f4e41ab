"""``pallet master --store etcd://...``: a master that starts before its etcd says so and
waits, then serves from etcd; a second master process on the same etcd sees what the
first one wrote."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pallet.store.etcd.server import etcd_available, free_ports, spawn_cluster
from polling import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(etcd_available() is not None, reason=str(etcd_available())),
]


def _master(store: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pallet.cli.master", "--port", str(port), "--store", store],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_master_waits_for_its_etcd_then_serves_from_it(tmp_path: Path) -> None:
    etcd_port, http_port = free_ports(2)
    store = f"etcd://127.0.0.1:{etcd_port}?timeout=1"
    log = tmp_path / "master.log"
    master = _master(store, http_port, log)
    cluster = None
    try:
        wait_for(lambda: "unreachable" in log.read_text(), 60, "the master to say etcd is down")
        assert master.poll() is None, log.read_text()
        assert f"127.0.0.1:{etcd_port}: connection refused" in log.read_text()
        cluster = spawn_cluster(tmp_path / "etcd", client_ports=[etcd_port])
        cluster.wait_ready()
        url = f"http://127.0.0.1:{http_port}"
        wait_for(lambda: httpx.get(f"{url}/ping").status_code == 200, 60, "the master")
        app = {"id": "/kept", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0}
        assert httpx.post(f"{url}/v2/apps", json=app).status_code == 201
        _stop(master)
        master = _master(store, http_port, log)  # a new master: the state is in etcd
        wait_for(lambda: httpx.get(f"{url}/ping").status_code == 200, 60, "the second master")
        assert httpx.get(f"{url}/v2/apps/kept").json()["app"]["cmd"] == "sleep 1000"
    finally:
        _stop(master)
        if cluster is not None:
            cluster.stop()
