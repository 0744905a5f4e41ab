"""``pallet pod ...``: Marathon pods (several containers placed together as one instance);
add, plan, list, show and remove them; does I/O through ``pallet.client``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pallet.cli import client_opts
from pallet.cli.app_rollout import show_plan
from pallet.cli.appfile import AppFileError, load_app_file
from pallet.cli.client_opts import (
    DEFAULT_MASTER,
    ForceOption,
    JsonOption,
    MasterOption,
    TimeoutOption,
    WaitOption,
    app_id,
    connect,
)
from pallet.cli.common import console, print_json
from pallet.cli.render import details, listing, num, print_table, say
from pallet.client import Client, WaitTimeout

__all__ = ["app"]

app = typer.Typer(
    help="Pods: containers placed together on one node as one instance (Marathon's pods).",
    no_args_is_help=True,
)

PodIdArg = Annotated[str, typer.Argument(help="Pod id, such as /shop/pod (the / is optional).")]
FileArg = Annotated[
    str, typer.Argument(help="A Marathon pod definition, JSON or YAML ('-': stdin).")
]


def _stable(status: dict[str, Any]) -> int:
    return sum(1 for i in status.get("instances", []) if i.get("status") == "STABLE")


def _wanted(status: dict[str, Any]) -> int:
    return int(status.get("spec", {}).get("scaling", {}).get("instances", 0))


def _wait(client: Client, pod: str, deployment: str, timeout: float, removing: bool) -> None:
    """Poll until the deployment is over (one line on stderr per change of progress)."""
    start = client_opts.clock()
    last = ""
    while any(d.id == deployment for d in client.list_deployments()):
        if client_opts.clock() - start > timeout:
            raise WaitTimeout(f"pod {pod}: deployment {deployment} still runs after {timeout:g} s")
        if not removing:
            status = client.pod_status(pod)
            line = f"{pod}: {_stable(status)}/{_wanted(status)} instances stable"
            if line != last:
                console.print(line, style="dim", soft_wrap=True, highlight=False)
                last = line
        client_opts.sleep(0.5)


@app.command("add")
def add(
    path: FileArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Create a pod from a file; --wait until its instances are all stable."""
    definition = load_app_file(path)
    with connect(master) as client:
        created = client.create_pod(definition)
        pod = str(created.get("id", ""))
        if wait:
            _wait(client, pod, created["deployments"][0]["id"], timeout, removing=False)
    if json_out:
        print_json(created)
        return
    say(console, f"Created pod {pod}" + (" (all instances stable)" if wait else ""))


@app.command("plan")
def plan(
    path: FileArg,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Ask the master what a pod file would do (a dry run): the field changes, the
    deployment steps, the node each new instance would land on, the instances that would
    stop, and why instances that fit nowhere would wait. Nothing changes."""
    definition = load_app_file(path)
    if not isinstance(definition, dict) or not isinstance(definition.get("id"), str):
        raise AppFileError(path, "a pod definition is one JSON object with an id")
    with connect(master) as client:
        doc = client.plan_pod(definition, force)
    if json_out:
        print_json(doc)
        return
    show_plan(f"pod {app_id(definition['id'])}", doc)


@app.command("list")
def list_pods(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """The pods: instances stable of wanted, their containers and resources per instance."""
    with connect(master) as client:
        found = client.list_pods()
    if json_out:
        print_json(found)
        return
    if not found:
        say(console, "No pods. Create one with `pallet pod add FILE`.")
        return
    rows = []
    for status in found:
        spec = status.get("spec", {})
        containers = spec.get("containers", [])
        cpus = sum(float(c.get("resources", {}).get("cpus", 0)) for c in containers)
        mem = sum(float(c.get("resources", {}).get("mem", 0)) for c in containers)
        rows.append(
            [
                status.get("id", ""),
                status.get("status", ""),
                f"{_stable(status)}/{_wanted(status)}",
                ", ".join(str(c.get("name", "")) for c in containers),
                num(cpus),
                num(mem),
            ]
        )
    columns = ["ID", "STATUS", "STABLE", "CONTAINERS", "CPUS>", "MEM MiB>"]
    print_table(console, listing(None, columns, rows))


@app.command("show")
def show(
    pod_id: PodIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """A pod's status: each instance, where it runs, its containers and their endpoints."""
    pod = app_id(pod_id)
    with connect(master) as client:
        status = client.pod_status(pod)
    if json_out:
        print_json(status)
        return
    spec = status.get("spec", {})
    pairs: list[tuple[str, object]] = [
        ("status", status.get("status", "")),
        ("instances", f"{_stable(status)} stable of {_wanted(status)}"),
        ("version", spec.get("version", "")),
    ]
    for c in spec.get("containers", []):
        image = c.get("image", {}).get("id")
        mounts = ", ".join(f"{m['name']} at {m['mountPath']}" for m in c.get("volumeMounts", []))
        what = f"image {image}" if image else "command"
        pairs.append((f"container {c.get('name', '')}", what + (f"; {mounts}" if mounts else "")))
    if status.get("message"):
        pairs.append(("message", status["message"]))
    for ended in status.get("terminationHistory", []):
        pairs.append(("last failure", f"{ended.get('instanceID')}: {ended.get('message', '')}"))
    print_table(console, details(f"Pod {pod}", pairs))
    rows = []
    for inst in status.get("instances", []):
        containers = []
        for c in inst.get("containers", []):
            ports = ",".join(
                f"{e.get('name')}:{e['allocatedHostPort']}"
                for e in c.get("endpoints", [])
                if "allocatedHostPort" in e
            )
            containers.append(
                f"{c.get('name')} {c.get('status', '')}" + (f" {ports}" if ports else "")
            )
        rows.append(
            [
                inst.get("id", ""),
                inst.get("status", ""),
                inst.get("agentHostname", ""),
                "; ".join(containers),
            ]
        )
    print_table(console, listing("Instances", ["ID", "STATUS", "HOST", "CONTAINERS"], rows))


@app.command("remove")
def remove(
    pod_id: PodIdArg,
    force: ForceOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Remove a pod: its instances are killed; --wait until they are gone."""
    pod = app_id(pod_id)
    with connect(master) as client:
        deployment = client.delete_pod(pod, force=force)
        if wait:
            _wait(client, pod, deployment, timeout, removing=True)
    say(console, f"Removed pod {pod}" + ("" if wait else f" (deployment {deployment})"))
