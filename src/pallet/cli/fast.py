"""The commonest commands answered without Typer, Click or Rich: ``pallet version``,
``pallet --help`` (and ``pallet`` alone) and ``pallet app list``; does I/O.

Importing Typer (with its Click) and Rich costs more than the interpreter's own start,
so ``main`` asks ``answer`` first. It understands exactly these command lines and says
False to anything else (another option, a repeated one, ``--help`` of a sub-command, a
narrow terminal), which Typer then runs as always. What it prints is what the Typer
commands print, byte for byte; the tests compare the two on the same inputs:

- ``--help``: Typer's own text, generated into ``fast_help`` (``python -m
  pallet.cli.fast_help`` writes it again; a test fails when it drifts from Typer's);
- ``app list``: the master, token and CA are found by the functions ``connect`` uses
  (``credentials.for_master``), the call goes through the client's ``wire.Route`` (the
  same failover, redirects and token rules; a plain-HTTP master is asked by
  ``wire.OneShotSender``, which spares ``http.client``'s import), and the answer is read
  with the same rules as ``App.from_json``. Anything unusual (an error status, an answer those rules would
  refuse or that carries tasks, a cell only Rich can measure) is handed to the real
  client's ``finish`` and ``app.show_apps``, which raise or print exactly as the Typer
  command does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from typing import Protocol

    from pallet.client.wire import Answer

    class AppFacts(Protocol):
        """What a listing shows of an app (``client.App`` has these, as has ``_App``); for
        the type checker only: a Protocol costs a start-up what its request costs."""

        @property
        def id(self) -> str: ...
        @property
        def instances(self) -> int: ...
        @property
        def cpus(self) -> float: ...
        @property
        def mem(self) -> float: ...
        @property
        def disk(self) -> float: ...
        @property
        def gpus(self) -> float: ...
        @property
        def tasks_running(self) -> int | None: ...
        @property
        def tasks_healthy(self) -> int | None: ...
        @property
        def deploying(self) -> bool: ...
        @property
        def command(self) -> str: ...
        @property
        def raw(self) -> Mapping[str, Any]: ...


__all__ = ["APPS_CALL", "APP_KEYS", "answer", "app_listing", "read_apps"]

APPS_CALL = (
    "GET",
    "/v2/apps",
    {"embed": ["apps.counts", "apps.deployments", "apps.lastTaskFailure"]},
)
"""What ``Client.list_apps()`` sends (a test checks it against ``calls.list_apps()``)."""


def answer(argv: Sequence[str]) -> bool:
    """Run ``pallet <argv>`` if it is one of the fast commands; False if it is not (and
    nothing was printed). Errors are raised as the Typer commands raise them."""
    if list(argv) == ["version"]:
        from pallet import __version__

        sys.stdout.write(f"{__version__}\n")
        return True
    if list(argv) == ["--help"]:
        return _root_help(sys.stdout)
    if not argv:  # Typer's no_args_is_help: the help on stderr, exit status 2
        if _root_help(sys.stderr):
            sys.exit(2)
        return False
    if list(argv[:2]) == ["app", "list"]:
        return _app_list(argv[2:])
    return False


def _root_help(stream: TextIO) -> bool:
    import shutil

    from pallet.cli.fast_help import ROOT_HELP, WIDTH

    if shutil.get_terminal_size().columns < WIDTH:  # Typer wraps it narrower: its job
        return False
    stream.write(ROOT_HELP)
    stream.flush()
    return True


def _app_list(args: Sequence[str]) -> bool:
    options = _options(args)
    if options is None or _transport_swapped():
        return False
    json_out, given = options
    from pallet.cli.credentials import for_master
    from pallet.client.transport import DEFAULT_MASTER, MASTER_ENV
    from pallet.client.wire import Route

    # Typer's --master: the option, else a non-empty $PALLET_MASTER, else the default.
    master = given if given is not None else (os.environ.get(MASTER_ENV) or DEFAULT_MASTER)

    token, ca = for_master(master)
    route = Route(master, token=token, ca=ca, one_shot=True)
    try:
        method, path, params = APPS_CALL
        got = route.send(method, path, params)
    finally:
        route.close()
    apps = read_apps(got.content) if 200 <= got.status < 300 else None
    if apps is None:
        return _as_typer(got, json_out)
    if json_out:
        import json

        sys.stdout.write(json.dumps([a.raw for a in apps], indent=2) + "\n")
        return True
    from pallet.cli import plain

    bold = plain.styled(sys.stdout)
    if not apps:
        if bold is None:
            return _as_typer(got, json_out)
        sys.stdout.write("No apps. Add one with `pallet app add FILE`.\n")
        return True
    columns, rows = app_listing(apps)
    text = None if bold is None else plain.listing_text(columns, rows, bold)
    if text is None:
        return _as_typer(got, json_out)
    sys.stdout.write(text)
    return True


def _options(args: Sequence[str]) -> tuple[bool, str | None] | None:
    """``[--json] [--master URL | --master=URL]`` in any order, each once; None for
    anything else."""
    json_out, master = False, None
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--json" and not json_out:
            json_out = True
        elif arg == "--master" and master is None and rest and not rest[0].startswith("-"):
            master = rest.pop(0)
        elif arg.startswith("--master=") and master is None:
            master = arg.removeprefix("--master=")
        else:
            return None
    return json_out, master


def _transport_swapped() -> bool:
    """Tests swap the network for a fake master in ``client_opts.transport``; only the
    Typer commands go through it."""
    opts = sys.modules.get("pallet.cli.client_opts")
    return opts is not None and getattr(opts, "transport", None) is not None


def _as_typer(got: Answer, json_out: bool) -> bool:
    """The answer read and shown by the Typer command's own code."""
    from pallet.cli.app import show_apps
    from pallet.client.calls import calls, finish

    apps = finish(calls.list_apps(), got.status, got.headers, got.content, got.reason)
    show_apps(apps, json_out)
    return True


def app_listing(apps: Sequence[AppFacts]) -> tuple[list[str], list[list[str]]]:
    """The columns and rows of ``pallet app list`` (the Typer command's too)."""
    from pallet.cli.plain import num, short

    checked = any(a.raw.get("healthChecks") for a in apps)
    rows = [
        [
            a.id,
            f"{a.tasks_running if a.tasks_running is not None else '?'}/{a.instances}",
            *([_health(a)] if checked else []),
            num(a.cpus),
            num(a.mem),
            num(a.disk),
            num(a.gpus),
            "deploying" if a.deploying else "",
            short(a.command, 40),
        ]
        for a in sorted(apps, key=lambda a: a.id)
    ]
    columns = ["ID", "RUNNING>", *(["HEALTHY>"] if checked else []), "CPUS>", "MEM>", "DISK>"]
    columns += ["GPUS>", "DEPLOYMENT", "CMD"]
    return columns, rows


def _health(a: AppFacts) -> str:
    """Healthy of instances (as the DC/OS CLI's HEALTH column), "—" without checks."""
    return f"{a.tasks_healthy or 0}/{a.instances}" if a.raw.get("healthChecks") else "—"


class _App:
    """An app of the listing, read without the client's dataclasses (their creation costs
    the fast path more than its request)."""

    __slots__ = (
        "command",
        "cpus",
        "deploying",
        "disk",
        "gpus",
        "id",
        "instances",
        "mem",
        "raw",
        "tasks_healthy",
        "tasks_running",
    )

    def __init__(self, doc: dict[str, Any]) -> None:
        self.raw = doc
        self.id: str = doc["id"]
        self.instances: int = _or(doc.get("instances"), 1)
        self.cpus = float(_or(doc.get("cpus"), 1.0))
        self.mem = float(_or(doc.get("mem"), 128.0))
        self.disk = float(_or(doc.get("disk"), 0.0))
        self.gpus = float(_or(doc.get("gpus"), 0.0))
        self.tasks_running: int | None = doc.get("tasksRunning")
        self.tasks_healthy: int | None = doc.get("tasksHealthy")
        self.deploying = bool(doc.get("deployments"))
        cmd = doc.get("cmd")
        args = doc.get("args") or []
        self.command: str = cmd if cmd is not None else " ".join(str(v) for v in args)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


# What ``App.from_json`` accepts, key by key (a test checks that every key it reads is
# here). A value that fails its check sends the answer to ``App.from_json`` itself.
def _string(v: object) -> bool:
    return isinstance(v, str)


def _opt_string(v: object) -> bool:
    return v is None or isinstance(v, str)


def _opt_int(v: object) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


def _opt_number(v: object) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def _opt_list(v: object) -> bool:
    return v is None or isinstance(v, list)


def _opt_object(v: object) -> bool:
    return v is None or isinstance(v, dict)


def _deployments(v: object) -> bool:
    return v is None or (
        isinstance(v, list) and all(isinstance(d, dict) and _string(d.get("id")) for d in v)
    )


def _no_tasks(v: object) -> bool:
    return v is None or v == []


def _failure(v: object) -> bool:
    if v is None:
        return True
    if not isinstance(v, dict):
        return False
    ok = _string(v.get("taskId")) and _string(v.get("state"))
    ok = ok and _opt_string(v.get("message")) and _opt_string(v.get("host"))
    return ok and _timestamp(v.get("timestamp"))


def _timestamp(v: object) -> bool:
    if v is None:
        return True
    if not isinstance(v, str):
        return False
    from datetime import datetime

    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


APP_KEYS = {
    "id": _string,
    "instances": _opt_int,
    "cpus": _opt_number,
    "mem": _opt_number,
    "disk": _opt_number,
    "gpus": _opt_number,
    "cmd": _opt_string,
    "args": _opt_list,
    "role": _opt_string,
    "version": _opt_string,
    "labels": _opt_object,
    "constraints": _opt_list,
    "tasksRunning": _opt_int,
    "tasksStaged": _opt_int,
    "tasksHealthy": _opt_int,
    "tasksUnhealthy": _opt_int,
    "deployments": _deployments,
    "tasks": _no_tasks,
    "lastTaskFailure": _failure,
}


def read_apps(content: bytes) -> list[_App] | None:
    """The apps of a ``GET /v2/apps`` answer, or None when it is not plainly one that
    ``App.from_json`` reads without complaint (its own reading then has the last word)."""
    import json

    try:
        doc = json.loads(content)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not _opt_list(doc.get("apps")):
        return None
    items = doc.get("apps") or []
    if not all(
        isinstance(a, dict) and all(ok(a.get(k)) for k, ok in APP_KEYS.items()) for a in items
    ):
        return None
    return [_App(a) for a in items]
