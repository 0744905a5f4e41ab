"""Fixtures for the browser tests: a real ``pallet up`` (master and three agents on loopback,
stopped with SIGINT), and Debian's headless Chromium driven by Playwright with a fresh profile.

Without Chromium or Playwright the browser tests skip, except in CI (``CI`` set), where they
must run: ``scripts/install-test`` installs both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pallet.bench.cluster import free_port
from polling import wait_for as eventually

CHROMIUM = Path(os.environ.get("PALLET_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
# Every agent offers the same; one GPU each so the GPU chart and bins have something to show.
AGENT_RESOURCES = "cpus:2;mem:4096;disk:10000;gpus:1"
READY_SECONDS = 30.0


@dataclass
class Cluster:
    url: str
    http: httpx.Client
    log: Path

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.http.get("/v1/nodes").json()["nodes"])

    def app(self, app_id: str) -> dict[str, Any] | None:
        r = self.http.get(f"/v2/apps{app_id}")
        return dict(r.json()["app"]) if r.status_code == 200 else None

    def running(self, app_id: str, count: int) -> list[dict[str, Any]]:
        """The app's tasks once exactly ``count`` run."""
        app = self.app(app_id)
        tasks = app["tasks"] if app else []
        if len(tasks) == count and all(t["state"] == "TASK_RUNNING" for t in tasks):
            return list(tasks)
        return []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir = tmp_path_factory.mktemp("ui-up")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = state_dir / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "pallet.cli.main", "up", "--agents", "3", "--port", str(port),
             "--agent-port", "0", "--state-dir", str(state_dir / "state"),
             "--heartbeat-interval", "0.5", "--resources", AGENT_RESOURCES],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        with httpx.Client(base_url=url, timeout=10.0) as http:
            live = Cluster(url, http, log)

            def three_nodes() -> bool:
                if up.poll() is not None:
                    raise AssertionError(f"pallet up exited: {log.read_text()}")
                return len(live.nodes()) == 3

            eventually(three_nodes, READY_SECONDS, "three nodes")
            yield live
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGKILL)
            raise


def _browser_or_skip() -> Any:
    why = []
    if not CHROMIUM.exists():
        why.append(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        why.append("Playwright for Python is not installed")
    if why:
        reason = "; ".join(why) + " (scripts/install-test installs both)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    return sync_playwright


@dataclass
class Browser:
    """One page in headless Chromium, and the uncaught script errors it has seen."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    sync_playwright = _browser_or_skip()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        b = Browser(page)
        page.on("pageerror", lambda e: b.errors.append(str(e)))
        try:
            yield b
        finally:
            context.close()
