"""``pallet task ...``: list tasks, read or follow their logs, kill them; does I/O through
``pallet.client``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pallet.cli import client_opts
from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, app_id, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import print_table, say, task_table
from pallet.client import LogStream

__all__ = ["app"]

app = typer.Typer(help="Tasks: the running instances of apps.", no_args_is_help=True)

TaskIdArg = Annotated[str, typer.Argument(help="Task id, as `pallet task list` shows it.")]


@app.command("list")
def list_tasks(
    app_arg: Annotated[
        str | None, typer.Argument(help="Only the tasks of this app, such as /prod/web.")
    ] = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """List the live tasks, of every app or of one."""
    aid = app_id(app_arg) if app_arg is not None else None
    with connect(master) as client:
        tasks = client.list_tasks(aid)
    if json_out:
        print_json([dict(t.raw) for t in tasks])
        return
    if not tasks:
        say(console, "No tasks." if aid is None else f"No tasks of {aid}.")
        return
    print_table(
        console, task_table(None, sorted(tasks, key=lambda t: (t.app_id, t.id)), aid is None)
    )


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@app.command("logs")
def logs(
    task_id: TaskIdArg,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing as the task writes, until it ends."),
    ] = False,
    stderr: Annotated[
        bool, typer.Option("--stderr", help="Read stderr instead of stdout.")
    ] = False,
    container: Annotated[
        str | None,
        typer.Option(
            "--container",
            "-c",
            help="For a pod instance: what this container wrote (else the pod's executor).",
        ),
    ] = None,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Print what a task wrote to its stdout (or stderr)."""
    stream: LogStream = "stderr" if stderr else "stdout"
    with connect(master) as client:
        chunks = (
            client.follow_log(task_id, stream, container=container, sleep=client_opts.sleep)
            if follow
            else client.read_log(task_id, stream, container=container)
        )
        try:
            for chunk in chunks:
                _write(chunk)
        except KeyboardInterrupt:
            return


@app.command("kill")
def kill(
    task_ids: Annotated[list[str], typer.Argument(help="Ids of the tasks to kill.")],
    scale: Annotated[
        bool,
        typer.Option("--scale", help="Lower the app's instances too, so the task is not replaced."),
    ] = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Kill tasks; their apps start replacements unless --scale is given."""
    with connect(master) as client:
        result = client.kill_tasks(task_ids, scale=scale)
    if json_out:
        if result.deployment is not None:
            print_json(dict(result.deployment.raw))
        else:
            print_json({"tasks": [dict(t.raw) for t in result.tasks]})
        return
    if result.deployment is not None:
        noun = "task" if len(task_ids) == 1 else "tasks"
        say(
            console,
            f"Killing {len(task_ids)} {noun} and scaling down "
            f"(deployment {result.deployment.deployment_id})",
        )
        return
    for task in result.tasks:
        say(console, f"Killed {task.id} ({task.app_id} on {task.host or '?'})")
    missing = sorted(set(task_ids) - {t.id for t in result.tasks})
    if missing:
        say(console, ", ".join(missing), "[yellow]Not running, left alone:[/] ")
