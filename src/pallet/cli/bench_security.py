"""``pallet bench security``: issue 14's attacks on a real secured cluster, schemathesis
over its API, and what authentication costs the API's p99."""

from __future__ import annotations

import typer

from pallet.cli.common import console, print_json, table
from pallet.model import ValidationError

__all__ = ["security"]


def security(
    cases: int = typer.Option(20_000, help="Schemathesis cases (half with a token, half without)."),
    apps: int = typer.Option(200, help="Apps in each master of the auth-overhead run."),
    clients: int = typer.Option(20, help="Concurrent clients of the auth-overhead run."),
    requests: int = typer.Option(50, help="Requests per client of the auth-overhead run."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every attack of issue 14 against `pallet up --secure` (goal: none succeeds);
    schemathesis over /v1/openapi.json with and without a token (goal: 0 5xx, every 405
    with Allow); GET /v2/apps p99 with tokens against without, same run (goal: <= 1.2x).
    Run as root: tasks then run as nobody, as on a real node."""
    if not 0 <= cases <= 1_000_000:
        raise ValidationError("--cases", "must be between 0 and 1000000")
    for flag, value in (("--apps", apps), ("--clients", clients), ("--requests", requests)):
        if not 1 <= value <= 100_000:
            raise ValidationError(flag, "must be between 1 and 100000")
    try:
        import schemathesis  # noqa: F401 - only to say what is missing before a cluster starts
    except ModuleNotFoundError:
        typer.secho(
            "pallet bench security needs schemathesis: pip install 'schemathesis>=4'",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2) from None
    from pallet.bench.security import run_security_bench

    result = run_security_bench(cases, apps, clients, requests)
    doc = result.to_json()
    if json_out:
        print_json(doc)
        return
    rows = [
        ["no" if not a.succeeded else "[red]YES[/red]", a.name, a.detail] for a in result.attacks
    ]
    console.print(table("Attacks on pallet up --secure", ["succeeded", "attack", "seen"], rows))
    fz = doc["schemathesis"]
    console.print(
        table(
            "Schemathesis over /v1/openapi.json",
            ["run", "cases", "5xx", "no answer", "seconds"],
            [
                [
                    name,
                    fz[key]["cases"],
                    fz[key]["server_errors"],
                    fz[key]["transport_errors"],
                    fz[key]["seconds"],
                ]
                for name, key in (("with a token", "with_token"), ("without", "without_token"))
            ]
            + [
                [
                    "undeclared methods",
                    fz["undeclared_methods"]["requests"],
                    f"405: {fz['undeclared_methods']['405']}",
                    f"without Allow: {fz['undeclared_methods']['405_without_allow']}",
                    "",
                ]
            ],
        )
    )
    for run in ("with_token", "without_token"):
        for example in fz[run]["examples"]:
            console.print(f"  5xx: {example}")
        for example in fz[run]["no_answer"]:
            console.print(f"  no answer: {example}")
    api = doc["api"]
    console.print(
        table(
            f"GET /v2/apps p99, {apps} apps, {api['requests']} requests (baseline: no auth)",
            ["auth off ms", "auth on ms", "x baseline"],
            [[api["p99_open_ms"], api["p99_auth_ms"], f"{doc['auth_overhead']:.2f}"]],
        )
    )
    if not result.as_root:
        typer.secho(
            "not root: tasks ran as this user, so the task attacks say little",
            fg=typer.colors.YELLOW,
            err=True,
        )
