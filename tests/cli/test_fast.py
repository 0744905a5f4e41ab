"""The fast path (``pallet.cli.fast``) prints what the Typer commands print, byte for byte,
on and off a terminal, for the same master, token, CA and answers; and leaves to Typer
every command line it does not understand exactly."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import os
import pty
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.cli import fast, fast_help, plain
from polling import wait_for

# `pallet` as installed (the fast path first), and the same with Typer only.
FAST = [sys.executable, "-m", "pallet.cli.main"]
TYPER = [
    sys.executable,
    "-c",
    "import sys; from pallet.cli.main import _run, build; "
    "_run(lambda: build(sys.argv[1:])(prog_name='pallet'))",
]


@dataclass
class Ran:
    code: int
    out: str
    err: str


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALLET_", "FORCE_COLOR"))}
    env.pop("TTY_COMPATIBLE", None)
    env.pop("NO_COLOR", None)
    env["PALLET_CONFIG"] = str(tmp_path / "no-config.json")
    env["COLUMNS"] = "120"
    return {**env, **extra}


def _run(argv: list[str], env: dict[str, str]) -> Ran:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    return Ran(done.returncode, done.stdout, done.stderr)


def _run_tty(argv: list[str], env: dict[str, str]) -> Ran:
    """``argv`` with its stdout on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return Ran(proc.wait(timeout=120), b"".join(chunks).decode(), err)


def _both(args: list[str], env: dict[str, str], tty: bool = False) -> Ran:
    """Run ``pallet <args>`` both ways; they must agree; the fast one's result."""
    runner = _run_tty if tty else _run
    quick, slow = runner([*FAST, *args], env), runner([*TYPER, *args], env)
    assert "Traceback" not in quick.err + slow.err, quick.err + slow.err
    assert (quick.code, quick.out, quick.err) == (slow.code, slow.out, slow.err)
    return quick


# -- a master that answers what a test scripts, over http or https ------------------------


@dataclass
class Script:
    status: int = 200
    body: bytes = b'{"apps": []}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        script = self.server.script
        script.seen.append((self.path, dict(self.headers.items())))
        self.send_response(script.status)
        for name, value in script.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(script.body)))
        self.end_headers()
        self.wfile.write(script.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    script: Script
    daemon_threads = True


@contextmanager
def scripted(script: Script, context: ssl.SSLContext | None = None) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if context else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _apps(*apps: dict[str, Any]) -> bytes:
    return json.dumps({"apps": list(apps)}).encode()


APP = {
    "id": "/web",
    "cmd": "python3 -m http.server $PORT0",
    "instances": 2,
    "cpus": 0.1,
    "mem": 32,
    "tasksRunning": 1,
    "tasksHealthy": 1,
    "deployments": [{"id": "dep-1"}],
    "lastTaskFailure": {
        "taskId": "web.1",
        "state": "TASK_FAILED",
        "message": "exited 1",
        "host": "127.0.0.2",
        "timestamp": "2026-12-07T08:00:00.000Z",
    },
}


# -- the commands ------------------------------------------------------------------------


def test_the_fast_commands_load_neither_typer_nor_rich(tmp_path: Path) -> None:
    probe = (
        "import sys; sys.argv = ['pallet', *sys.argv[1:]]\n"
        "from pallet.cli.main import main\n"
        "main()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'click', 'rich'}))"
    )
    with scripted(Script(body=_apps(APP))) as url:
        for args in (["version"], ["--help"], ["app", "list", "--master", url]):
            done = _run([sys.executable, "-c", probe, *args], _env(tmp_path))
            assert done.out.splitlines()[-1] == "[]", (args, done.out)


def test_version_is_typers(tmp_path: Path) -> None:
    assert _both(["version"], _env(tmp_path)).out.strip() == __import__("pallet").__version__


@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_is_typers_from_80_columns_on(tmp_path: Path, columns: str) -> None:
    ran = _both(["--help"], _env(tmp_path, COLUMNS=columns))
    assert ran.out == fast_help.ROOT_HELP


def test_pallet_alone_prints_the_help_on_stderr_as_typer_does(tmp_path: Path) -> None:
    ran = _both([], _env(tmp_path, COLUMNS="80"))
    assert (ran.code, ran.out, ran.err) == (2, "", fast_help.ROOT_HELP)


def test_the_kept_help_is_what_typer_prints_now() -> None:
    assert fast_help.render() == fast_help.ROOT_HELP, (
        "pallet --help changed: run `python -m pallet.cli.fast_help` to write it again"
    )


def test_a_narrow_terminal_gets_typers_own_wrapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert fast.answer(["--help"]) is False
    ran = _both(["--help"], _env(tmp_path, COLUMNS="60"))
    assert ran.out != fast_help.ROOT_HELP and "Usage: pallet" in ran.out


@pytest.mark.parametrize(
    "argv",
    [
        ["-h"],
        ["version", "--help"],
        ["version", "extra"],
        ["app"],
        ["app", "show", "/web"],
        ["app", "list", "--help"],
        ["app", "list", "--json", "--json"],
        ["app", "list", "--master"],
        ["app", "list", "--master", "--json"],
        ["app", "list", "--master", "a", "--master", "b"],
        ["app", "list", "--master=a", "--master", "b"],
        ["app", "list", "/web"],
        ["app", "list", "--"],
        ["app", "list", "--jsn"],
    ],
)
def test_what_it_does_not_understand_goes_to_typer(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert fast.answer(argv) is False
    assert capsys.readouterr() == ("", "")


def test_it_sends_what_the_client_sends() -> None:
    from pallet.client.calls import calls

    call = calls.list_apps()
    assert (call.method, call.path, dict(call.params)) == fast.APPS_CALL


def test_a_swapped_transport_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    from pallet.cli import client_opts

    monkeypatch.setattr(
        client_opts, "transport", httpx.MockTransport(lambda r: httpx.Response(500))
    )
    assert fast.answer(["app", "list"]) is False


# -- pallet app list: the same as Typer's, whatever the master answers --------------------


def test_app_list_against_a_real_master(master: str, tmp_path: Path) -> None:
    checked = {"id": "/shop/checked", "cmd": "sleep 600", "cpus": 0.01, "mem": 8}
    checked["healthChecks"] = [{"protocol": "COMMAND", "command": {"value": "true"}}]
    apps = [
        {"id": "/shop/web", "cmd": "python3 -m http.server $PORT0 " + "x" * 60, "mem": 16},
        {"id": "/args", "args": ["sleep", "600"], "cpus": 0.25, "mem": 8, "disk": 5},
        checked,
    ]
    with httpx.Client(base_url=master, timeout=30) as http:
        for app in apps:
            http.post("/v2/apps", json={**app, "instances": 0}).raise_for_status()
        # both ways must list the same state: not one while a deployment is open and one
        # after it ended
        wait_for(lambda: http.get("/v2/deployments").json() == [], what="deployments ended")
    env = _env(tmp_path, PALLET_MASTER=master)
    listed = _both(["app", "list"], env)
    assert "/shop/checked" in listed.out and "HEALTHY" in listed.out
    _both(["app", "list", "--json"], env)
    _both(["app", "list", f"--master={master}"], _env(tmp_path))
    _both(["app", "list"], {**env, "NO_COLOR": "1"}, tty=True)
    _both(["app", "list"], {**env, "TERM": "dumb"}, tty=True)
    _both(["app", "list"], {**env, "FORCE_COLOR": "1"})


@pytest.mark.parametrize(
    "script",
    [
        Script(body=_apps()),
        Script(body=_apps(APP, {**APP, "id": "/a", "cmd": None, "args": ["sleep", 6]})),
        Script(body=_apps({**APP, "healthChecks": [{"protocol": "TCP"}], "tasksHealthy": None})),
        Script(body=_apps({**APP, "id": "/naïve"})),  # a cell only Rich measures
        Script(body=_apps({**APP, "tasks": [{"id": "t", "appId": "/web", "state": "x"}]})),
        Script(body=_apps({**APP, "cpus": "lots"})),  # refused by App.from_json
        Script(body=_apps({**APP, "lastTaskFailure": {**APP["lastTaskFailure"], "timestamp": 5}})),
        Script(body=b'{"apps": {}}'),
        Script(body=b"<html>not the master</html>"),
        Script(status=404, body=b'{"message": "no such thing"}'),
        Script(status=401, body=b'{"message": "missing token"}'),
        Script(status=500, body=b"boom"),
        Script(status=307, headers={"Location": "http://127.0.0.1:9/v2/apps"}),
    ],
    ids=lambda s: f"{s.status}:{s.body[:40]!r}",
)
def test_app_list_answers_alike(script: Script, tmp_path: Path) -> None:
    with scripted(script) as url:
        env = _env(tmp_path, PALLET_MASTER=url)
        _both(["app", "list"], env)
        if script.status == 200:
            _both(["app", "list", "--json"], env)


@pytest.mark.parametrize("body", [_apps(APP), _apps({**APP, "id": "/naïve"}), _apps()])
def test_app_list_on_a_terminal(body: bytes, tmp_path: Path) -> None:
    with scripted(Script(body=body)) as url:
        _both(["app", "list"], _env(tmp_path, PALLET_MASTER=url), tty=True)


def test_no_master_and_a_bad_url_fail_alike(tmp_path: Path) -> None:
    ran = _both(["app", "list", "--master", "http://127.0.0.1:9"], _env(tmp_path))
    assert ran.code == 2 and "cannot reach the master" in ran.err
    ran = _both(["app", "list", "--master=no such host"], _env(tmp_path))
    assert ran.code == 2 and "--master" in ran.err
    # several masters: the second answers
    with scripted(Script(body=_apps(APP))) as url:
        ran = _both(["app", "list", "--master", f"http://127.0.0.1:9,{url}"], _env(tmp_path))
    assert ran.code == 0 and "/web" in ran.out


def test_the_token_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    script = Script(body=_apps(APP))
    with scripted(script) as url:
        _both(["app", "list"], _env(tmp_path, PALLET_MASTER=url, PALLET_TOKEN="t0k"))
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"clusters": {url: {"token": "kept"}}}))
        _both(["app", "list"], _env(tmp_path, PALLET_MASTER=url, PALLET_CONFIG=str(config)))
        # the environment wins over the file
        env = _env(tmp_path, PALLET_MASTER=url, PALLET_CONFIG=str(config), PALLET_TOKEN="t0k")
        _both(["app", "list"], env)
    tokens = [headers.get("Authorization") for _path, headers in script.seen]
    assert tokens == ["token=t0k"] * 2 + ["token=kept"] * 2 + ["token=t0k"] * 2


def test_a_followers_redirect_keeps_the_token_to_a_loopback_leader(tmp_path: Path) -> None:
    leader = Script(body=_apps(APP))
    with scripted(leader) as leader_url:
        follower = Script(status=307, headers={"Location": f"{leader_url}/v2/apps"})
        with scripted(follower) as url:
            ran = _both(["app", "list"], _env(tmp_path, PALLET_MASTER=url, PALLET_TOKEN="t0k"))
    assert "/web" in ran.out
    assert [h.get("Authorization") for _p, h in leader.seen] == ["token=t0k"] * 2


def test_https_with_the_clusters_ca(tmp_path: Path) -> None:
    from pallet.auth.ca import CertificateAuthority

    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create("test", now)
    (tmp_path / "ca.crt").write_bytes(ca.pem())
    cert, key = ca.issue_files(tmp_path, "master", ["127.0.0.1"], now)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with scripted(Script(body=_apps(APP)), context) as url:
        env = _env(tmp_path, PALLET_MASTER=url, PALLET_TOKEN="t0k")
        trusted = _both(["app", "list"], {**env, "PALLET_CA": str(tmp_path / "ca.crt")})
        assert trusted.code == 0 and "/web" in trusted.out
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"clusters": {url: {"ca": str(tmp_path / "ca.crt")}}}))
        kept = _both(["app", "list"], {**env, "PALLET_CONFIG": str(config)})
        assert kept.out == trusted.out
        untrusted = _both(["app", "list"], env)  # the system's CAs do not know this one
        assert untrusted.code == 2 and "CERTIFICATE_VERIFY_FAILED" in untrusted.err
        missing = _both(["app", "list"], {**env, "PALLET_CA": str(tmp_path / "nope.crt")})
        assert missing.code == 2 and "--ca" in missing.err


# -- the rules, in-process -----------------------------------------------------------------


class _Recording(dict[str, Any]):
    read: set[str]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_the_fast_reader_checks_every_key_app_from_json_reads() -> None:
    from pallet.client.models import App

    doc = _Recording(APP)
    doc.read = set()
    App.from_json(doc)
    assert doc.read <= set(fast.APP_KEYS), doc.read - set(fast.APP_KEYS)


_VALUES = st.sampled_from(
    [None, 0, 3, -1, 2.5, True, "", "x", "sleep 600", [], ["a", 1], {}, {"id": "d"}, [{"id": "d"}]]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["/a", "/b", "/c/d", 7])},
            optional={k: _VALUES for k in fast.APP_KEYS if k != "id"},
        ),
        max_size=3,
    ),
    st.booleans(),
)
def test_what_the_fast_reader_accepts_prints_as_typer_would(
    apps: list[dict[str, Any]], bold: bool
) -> None:
    from rich.console import Console

    from pallet.cli import app as app_cli
    from pallet.client.calls import calls, finish

    content = _apps(*apps)
    quick = fast.read_apps(content)
    if quick is None:
        return  # left to the client's own reading
    real = finish(calls.list_apps(), 200, {}, content)  # accepts it too, or this raises
    if not real:
        return
    out = io.StringIO()
    original = app_cli.console
    app_cli.console = Console(file=out, force_terminal=bold, width=100)
    try:
        app_cli.show_apps(real, False)
    finally:
        app_cli.console = original
    columns, rows = fast.app_listing(quick)
    assert plain.listing_text(columns, rows, bold) == out.getvalue()


_CELL = st.text(alphabet=st.sampled_from(list(" abc/-_.:[]()$019—…é\t")), max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.sampled_from(["ID", "RUNNING>", "CPUS>", "CMD", "M>"]), min_size=n, max_size=n
            ),
            st.lists(st.lists(_CELL, min_size=n, max_size=n), min_size=1, max_size=4),
        )
    ),
    st.booleans(),
    st.integers(20, 200),
)
def test_a_plain_listing_is_richs(
    table: tuple[list[str], list[list[str]]], bold: bool, width: int
) -> None:
    from rich.console import Console

    from pallet.cli.render import listing, print_table

    columns, rows = table
    mine = plain.listing_text(columns, rows, bold)
    out = io.StringIO()
    print_table(Console(file=out, force_terminal=bold, width=width), listing(None, columns, rows))
    if mine is not None:
        assert mine == out.getvalue()
    else:  # only what Rich alone measures is left to it
        assert any(c != c.strip(" ") or not plain._SAFE.issuperset(c) for r in rows for c in r)


def test_an_error_is_one_red_line_on_a_terminal_without_the_masters_escapes(
    tmp_path: Path,
) -> None:
    """Errors print without Typer (fast as the command), red on a terminal as Typer
    printed them, and a master cannot write escape sequences to the user's terminal."""
    body = json.dumps({"message": "no \x1b[2Jway\x1b]0;title\x07"}).encode()
    with scripted(Script(status=403, body=body)) as url:
        env = _env(tmp_path, PALLET_MASTER=url)
        plain_err = _both(["app", "list"], env).err
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [*FAST, "app", "list"], stdout=subprocess.PIPE, stderr=follower, env=env
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(leader)
        assert proc.stdout is not None
        proc.stdout.close()
        assert proc.wait(timeout=60) == 2
    line = plain_err.strip()
    assert line.startswith("error: ") and "no way]0;title" in line and "\x07" not in line
    assert b"".join(chunks).decode() == f"\x1b[31m{line}\x1b[0m\r\n"
