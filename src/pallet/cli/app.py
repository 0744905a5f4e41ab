"""``pallet app ...``: add, list, show, scale, restart and remove Marathon apps; does I/O
through ``pallet.client``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pallet.cli.app_apply import apply, edit, versions
from pallet.cli.app_rollout import diff, plan, rollback, update
from pallet.cli.appfile import AppFileError, load_app_file
from pallet.cli.client_opts import (
    DEFAULT_MASTER,
    AppIdArg,
    ForceOption,
    JsonOption,
    MasterOption,
    TimeoutOption,
    WaitOption,
    app_id,
    connect,
    locked_hint,
)
from pallet.cli.common import console, print_json
from pallet.cli.fast import app_listing
from pallet.cli.render import age, details, listing, num, print_table, say, task_table
from pallet.client import (
    ApiError,
    App,
    Client,
    DeploymentRef,
    InvalidRequest,
    NotFound,
    describe_waiting,
)

__all__ = ["app", "show_apps"]

app = typer.Typer(
    help="Apps: long-running services kept at N instances (Marathon's app format).",
    no_args_is_help=True,
)

_WAIT_TIMEOUT = 300.0


def _rejected(exc: ApiError) -> str:
    """Why the master refused an app file, field by field for a 422."""
    if isinstance(exc, InvalidRequest) and exc.details:
        fields = "".join(f"\n  {d.describe()}" for d in exc.details)
        return f"the master rejected it ({exc.server_message}); fix these fields:{fields}"
    return f"the master rejected it: {exc.server_message}"


def _deployment(ref: DeploymentRef) -> str:
    return f"deployment {ref.deployment_id}"


@app.command("add")
def add(
    file: Annotated[
        str, typer.Argument(help="Marathon app definition, JSON or YAML; - reads stdin.")
    ],
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Create an app from a file, as POST /v2/apps."""
    definition = load_app_file(file)
    name = "<stdin>" if file == "-" else file
    with connect(master) as client:
        try:
            created = client.create_app(definition)
        except ApiError as exc:
            if exc.status is not None and exc.status >= 500:
                raise
            raise AppFileError(name, _rejected(exc)) from None
        deployment = created.deployment_ids[0] if created.deployment_ids else None
        if not json_out:
            noun = "instance" if created.instances == 1 else "instances"
            via = f" ({'deployment ' + deployment if deployment else 'no deployment'})"
            say(console, f"Created {created.id}: {created.instances} {noun}{via}")
        if wait:
            from pallet.cli.waiting import wait_for_deployment  # a progress bar: on demand

            wait_for_deployment(
                client,
                created.id,
                deployment,
                verb="deploying",
                since=created.version,
                timeout=timeout,
                quiet=json_out,
            )
    if json_out:
        print_json(dict(created.raw))


@app.command("list")
def list_apps(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List the apps with their instances, resources and command."""
    with connect(master) as client:
        apps = client.list_apps()
    show_apps(apps, json_out)


def show_apps(apps: list[App], json_out: bool) -> None:
    """What ``pallet app list`` prints (``pallet.cli.fast`` prints the same without Rich
    when it can; a test compares them)."""
    if json_out:
        print_json([dict(a.raw) for a in apps])
        return
    if not apps:
        say(console, "No apps. Add one with `pallet app add FILE`.")
        return
    columns, rows = app_listing(apps)
    print_table(console, listing(None, columns, rows))


def _checks(a: App) -> bool:
    return bool(a.raw.get("healthChecks"))


def _summary(a: App, waiting: str) -> list[tuple[str, object]]:
    counts = f"{a.tasks_running or 0} running of {a.instances}"
    if a.tasks_staged:
        counts += f", {a.tasks_staged} staging"
    failure = a.last_task_failure
    return [
        ("cmd", a.command),
        ("instances", counts),
        (
            "health",
            f"{a.tasks_healthy or 0} healthy, {a.tasks_unhealthy or 0} unhealthy"
            if _checks(a)
            else "",
        ),
        (
            "resources",
            f"cpus {num(a.cpus)}, mem {num(a.mem)} MiB, disk {num(a.disk)} MiB"
            + (f", gpus {num(a.gpus)}" if a.gpus else ""),
        ),
        ("role", a.role),
        ("version", a.version),
        ("constraints", "; ".join(" ".join(c) for c in a.constraints)),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))),
        ("deployments", ", ".join(a.deployment_ids)),
        ("waiting", waiting),
        (
            "last failure",
            f"{failure.state} {age(failure.timestamp)} on {failure.host or '?'}: {failure.message}"
            if failure
            else "",
        ),
    ]


@app.command("show")
def show(
    app_arg: AppIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Show one app: its spec, tasks, deployments, and why instances wait for placement."""
    aid = app_id(app_arg)
    with connect(master) as client:
        found = client.get_app(aid)
        queued = [q for q in client.list_queue() if q.app_id == found.id] if not json_out else []
        reach = _discovery(client, found.id) if not json_out else {}
    if json_out:
        print_json(dict(found.raw))
        return
    waiting = describe_waiting(queued[0]) if queued else ""
    print_table(console, details(found.id, _summary(found, waiting)))
    print_table(console, details("Reachable as", _reachable(reach)))
    if found.tasks:
        print_table(console, task_table("Tasks", sorted(found.tasks, key=lambda t: t.id), False))


def _discovery(client: Client, aid: str) -> dict[str, Any]:
    try:
        return client.app_discovery(aid)
    except NotFound:  # a master from before discovery
        return {}


def _reachable(doc: dict[str, Any]) -> list[tuple[str, object]]:
    """The app's DNS names, VIPs and load-balancer endpoints (``/v1/discovery/apps``)."""
    names = doc.get("dns") or {}
    rows: list[tuple[str, object]] = [
        ("DNS", names.get("a")),
        ("SRV", names.get("srv")),
        ("alias", names.get("pallet")),
    ]
    for v in doc.get("vips") or []:
        rows.append(("VIP", f"{v['name'] or v['address']}:{v['port']} ({v['address']})"))
    for e in doc.get("lb") or []:
        where = [e["address"]] if e.get("address") else []
        where += [f"{u} via {e['via']}" for u in e.get("urls") or []]
        rows.append((f"LB {e['lb']}", ", ".join(where) or None))
    return rows


def _changed(
    client: Client,
    aid: str,
    ref: DeploymentRef,
    *,
    message: str,
    verb: str,
    wait: bool,
    timeout: float,
    json_out: bool,
    removing: bool = False,
    running_before: int = 0,
) -> None:
    if not json_out:
        say(console, f"{message} ({_deployment(ref)})")
    if wait:
        from pallet.cli.waiting import wait_for_deployment  # a progress bar: on demand

        wait_for_deployment(
            client,
            aid,
            ref.deployment_id,
            verb=verb,
            since=ref.version,
            timeout=timeout,
            removing=removing,
            running_before=running_before,
            quiet=json_out,
        )
    if json_out:
        print_json(dict(ref.raw))


@app.command("scale")
def scale(
    app_arg: AppIdArg,
    instances: Annotated[int, typer.Argument(min=0, help="How many instances to run.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Run INSTANCES instances of the app."""
    aid = app_id(app_arg)
    with connect(master) as client, locked_hint(aid):
        ref = client.scale_app(aid, instances, force=force)
        _changed(
            client,
            aid,
            ref,
            message=f"Scaling {aid} to {instances}",
            verb="scaling",
            wait=wait,
            timeout=timeout,
            json_out=json_out,
        )


@app.command("restart")
def restart(
    app_arg: AppIdArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Replace every task of the app with a new one (a rolling restart)."""
    aid = app_id(app_arg)
    with connect(master) as client, locked_hint(aid):
        ref = client.restart_app(aid, force=force)
        _changed(
            client,
            aid,
            ref,
            message=f"Restarting {aid}",
            verb="restarting",
            wait=wait,
            timeout=timeout,
            json_out=json_out,
        )


@app.command("remove")
def remove(
    app_arg: AppIdArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Stop every task of the app and forget it."""
    aid = app_id(app_arg)
    with connect(master) as client, locked_hint(aid):
        before = (client.get_app(aid, ("app.counts",)).tasks_running or 0) if wait else 0
        ref = client.delete_app(aid, force=force)
        _changed(
            client,
            aid,
            ref,
            message=f"Removing {aid}",
            verb="removing",
            wait=wait,
            timeout=timeout,
            json_out=json_out,
            removing=True,
            running_before=before,
        )


# Changing apps from files (app_apply.py): listed after the commands above.
app.command("apply")(apply)
app.command("edit")(edit)
app.command("versions")(versions)
app.command("update")(update)
app.command("diff")(diff)
app.command("plan")(plan)
app.command("rollback")(rollback)
