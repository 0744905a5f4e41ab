"""The dashboard on a master with authentication on, in headless Chromium: it asks for a
user and password, keeps the token, shows the cluster, and signs out (issue 14)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pallet.bench.cluster import free_port
from ui.conftest import Browser, eventually

pytestmark = pytest.mark.slow

PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def secure_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A master alone (no agents: nothing to run), with tokens on and plain HTTP on
    loopback so the browser needs no CA."""
    state = tmp_path_factory.mktemp("ui-secure")
    (state / "password").write_text(PASSWORD + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = state / "master.log"
    with log.open("w") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "pallet.cli.master", "--port", str(port),
             "--store", f"sqlite:///{state / 'state.db'}", "--secure-dir", str(state / "secure"),
             "--no-tls", "--superuser-password-file", str(state / "password")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:

        def answers() -> bool:
            if master.poll() is not None:
                raise AssertionError(f"the master exited: {log.read_text()}")
            try:
                return httpx.get(f"{url}/ping", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(answers, 60.0, "the master to answer")
        yield url
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(master.pid, signal.SIGKILL)


def test_the_dashboard_asks_to_sign_in_and_then_works(
    browser: Browser, secure_master: str, tmp_path: Path
) -> None:
    page = browser.page
    page.goto(f"{secure_master}/#/nodes")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Password").fill("wrong password")
    dialog.get_by_role("button", name="Sign in").click()
    dialog.locator(".form-error").wait_for()  # refused, and the form stays
    assert "password" in dialog.locator(".form-error").text_content()
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign in").click()
    # the page starts again signed in: the event stream (by cookie) and the lists (by header)
    page.locator("#live[data-state='live']").wait_for()
    page.wait_for_function("() => document.getElementById('main').dataset.route === '/nodes'")
    assert page.get_by_role("dialog").count() == 0
    assert page.locator("#problem").is_hidden()
    token = page.evaluate("() => localStorage.getItem('pallet-token')")
    r = httpx.get(f"{secure_master}/v2/apps", headers={"Authorization": f"token={token}"})
    assert r.status_code == 200
    # the audit log: a write made now is there, with who made it; no warning on loopback
    r = httpx.put(
        f"{secure_master}/v1/groups/auditors",
        json={"description": "seen in the audit log"},
        headers={"Authorization": f"token={token}"},
    )
    assert r.status_code == 201
    assert page.locator("#insecure").is_hidden()
    page.get_by_role("link", name="Audit").click()
    table = page.get_by_role("region", name="Audit log")
    row = table.locator("tr", has_text="PUT /v1/groups/auditors")
    row.wait_for()
    assert "admin" in row.text_content() and "success (201)" in row.text_content()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("dialog").get_by_label("Password").wait_for()  # asked again
    assert page.evaluate("() => localStorage.getItem('pallet-token')") is None
    r = httpx.get(f"{secure_master}/v2/apps", headers={"Authorization": f"token={token}"})
    assert r.status_code == 401  # signing out revoked it on the master
    assert browser.errors == []
