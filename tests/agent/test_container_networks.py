"""Named container networks on a real agent (root): tasks get addresses of their own,
report them in their RUNNING status, reach each other's servers by address, and leave
nothing behind; a task asking for a network the agent lacks fails saying so."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oci import PushedImages
from pallet.agent import Executor, TaskRuntime, TaskSpec, TaskState
from pallet.agent.bridge import BridgeNetwork, named_networks
from pallet.agent.containers import Containers
from pallet.agent.events import SendStatus
from pallet.agent.images import ImageStore

from .conftest import wait_for

pytestmark = pytest.mark.root

S = TaskState
SUBNET = "10.89.78.0/28"


@pytest.fixture
def runtime(tmp_path: Path, agent_id: str) -> Iterator[TaskRuntime]:
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id)
    ex._containers = Containers(
        tmp_path / "containers",
        ImageStore(tmp_path / "images"),
        agent_id=agent_id,
        isolator=ex.isolator,
        hostname="node-1",
        network=BridgeNetwork(tmp_path / "network", agent_id, subnet="10.89.79.0/28"),
        networks=named_networks(tmp_path / "networks", agent_id, [("dev", SUBNET)], None),
    )
    rt = TaskRuntime(ex)
    yield rt
    rt.close(timeout=10.0)


def server(task_id: str, image: str, network: str = "dev") -> TaskSpec:
    container = {"image": image, "network": "container", "network_name": network}
    script = f"echo {task_id} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
    return TaskSpec(task_id, container=container, cmd=script)


def test_two_tasks_on_a_container_network_get_their_own_addresses_and_reach_each_other(
    runtime: TaskRuntime, images: PushedImages
) -> None:
    seen: list[SendStatus] = []

    def running() -> dict[str, tuple[str, ...]]:
        seen.extend(runtime.step(0.2))
        found = {s.task_id: s.ip_addresses for s in seen if s.state is S.RUNNING}
        return found if len(found) == 2 else {}

    runtime.set_desired([server("a.1", images.busybox), server("b.1", images.busybox)])
    addresses = wait_for(running, 60, "both tasks RUNNING")
    assert isinstance(addresses, dict)
    (a,), (b,) = addresses["a.1"], addresses["b.1"]
    assert a != b and {a, b} <= {f"10.89.78.{i}" for i in range(2, 15)}
    network = runtime.executor.containers.networks["dev"]
    bridge, netns = network.bridge, network.netns("a.1")

    def get(url: str) -> str | None:
        try:
            return httpx.get(url, timeout=1).text
        except httpx.HTTPError:
            return None  # the server in the container is not listening yet

    assert wait_for(lambda: get(f"http://{a}:8080/index.html"), 20, "a from the host") == "a.1\n"
    assert wait_for(lambda: get(f"http://{b}:8080/index.html"), 20, "b from the host") == "b.1\n"
    for here, there, answer in (("b.1", a, "a.1\n"), ("a.1", b, "b.1\n")):
        fetch = runtime.executor.containers.exec_argv(
            here, ["wget", "-q", "-O", "-", f"http://{there}:8080/index.html"]
        )
        done = subprocess.run(fetch, capture_output=True, text=True, timeout=30)
        assert (done.returncode, done.stdout) == (0, answer), done.stderr

    runtime.set_desired([])
    wait_for(lambda: runtime.step(0.2) and not runtime.executor.running(), 30, "both killed")
    assert network.address("a.1") is None and network.address("b.1") is None
    assert netns not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    runtime.executor.close()
    assert not Path(f"/sys/class/net/{bridge}").exists()  # the last task took it away


def test_a_network_the_agent_lacks_fails_the_task_saying_so(
    runtime: TaskRuntime, images: PushedImages
) -> None:
    runtime.set_desired([server("lost.1", images.busybox, network="elsewhere")])
    seen: list[SendStatus] = []

    def failed() -> list[SendStatus]:
        seen.extend(runtime.step(0.2))
        return [s for s in seen if s.state is S.FAILED]

    (end,) = wait_for(failed, 60, "the task failed")  # type: ignore[misc]
    assert "container network elsewhere is not on this agent (its --network: dev)" in end.message
