"""The dashboard in headless Chromium against a real ``pallet up``: what it shows matches the
API, and what a user does through it (create, scale, destroy, read logs) happens on the cluster.

The tests share one cluster and one page and run in order: the app created through the form is
the one later scaled, logged and destroyed. Screenshots of every view, desktop and phone, go to
``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ui.conftest import Browser, Cluster, eventually

pytestmark = pytest.mark.slow

APP = "/ui-web"
WAITING = "/ui-huge"
MARKER = "hello-from-pallet-ui"
COMMAND = f"echo {MARKER}; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def go(b: Browser, route: str) -> None:
    """Open a view by its hash route, without reloading the page."""
    page = b.page
    page.evaluate("(r) => { location.hash = r; }", route)
    path = route.removeprefix("#") or "/"
    page.wait_for_function("(p) => document.getElementById('main').dataset.route === p", arg=path)


def submit_dialog(b: Browser, label: str) -> None:
    """Press the dialog's ``label`` button; if the app is locked by a deployment still
    running, the dialog offers "Force": press that too."""
    page = b.page
    page.get_by_role("dialog").get_by_role("button", name=label).click()
    page.wait_for_function(
        "() => !document.querySelector('dialog[open]') || "
        "[...document.querySelectorAll('dialog[open] button')].some(b => b.textContent === 'Force')"
    )
    force = page.locator("dialog[open] button", has_text="Force")
    if force.count():
        force.click()
        page.locator("dialog[open]").wait_for(state="detached")


def load(b: Browser, cluster: Cluster, route: str = "#/") -> None:
    b.page.goto(f"{cluster.url}/{route}")
    b.page.locator("#live[data-state='live']").wait_for()


def js(b: Browser, module: str, expression: str) -> Any:
    """Evaluate ``expression`` with the dashboard's module ``m`` imported."""
    return b.page.evaluate(
        f"async () => {{ const m = await import('./ui/js/{module}'); return {expression}; }}"
    )


def test_dashboard_shows_the_capacity_the_api_reports(browser: Browser, cluster: Cluster) -> None:
    load(browser, cluster)
    page = browser.page
    nodes = cluster.nodes()
    for key in ("cpus", "mem", "disk", "gpus"):
        expected = sum(n["capacity"][key] for n in nodes)
        cell = page.locator(f"[data-resource='{key}'] [data-figure='capacity']")
        assert float(cell.get_attribute("data-value") or "nan") == pytest.approx(expected)
    assert page.locator("[data-resource='cpus'] [data-figure='capacity']").inner_text() == "6 cores"
    assert page.locator("[data-resource='mem'] [data-figure='capacity']").inner_text() == "12 GiB"
    tiles = page.locator(".tetris .tile")
    assert tiles.count() == 3
    assert sorted(tiles.evaluate_all("ts => ts.map(t => t.dataset.node)")) == sorted(
        n["id"] for n in nodes
    )
    assert page.get_by_role("heading", name="Packing").is_visible()


def test_packing_numbers_are_a_volume_bound(browser: Browser) -> None:
    nodes = [
        {"state": "ACTIVE", "capacity": {"cpus": 4, "mem": 8192}, "allocated": {"cpus": 1, "mem": 1024}},
        {"state": "ACTIVE", "capacity": {"cpus": 4, "mem": 8192}, "allocated": {"cpus": 1, "mem": 512}},
        {"state": "ACTIVE", "capacity": {"cpus": 2, "mem": 4096}, "allocated": {"cpus": 2, "mem": 0}},
        {"state": "ACTIVE", "capacity": {"cpus": 4, "mem": 8192}, "allocated": {"cpus": 0, "mem": 0}},
    ]  # fmt: skip
    got = js(browser, "packing.js", f"m.packing({json.dumps(nodes)})")
    # 4 cpus allocated fit on one 4-cpu node; 1.5 GiB fits on one node: 3 in use, 1 needed.
    assert got["inUse"] == 3
    assert got["lowerBound"] == 1
    assert got["freeable"] == 2
    assert got["efficiency"]["cpus"] == pytest.approx(4 / 10)  # 1+1+2 of 4+4+2
    assert got["efficiency"]["mem"] == pytest.approx(1536 / 20480)


def test_replaced_unreachable_tasks_count_as_a_possible_surplus(browser: Browser) -> None:
    apps = [
        {"id": "/a", "instances": 2},
        {"id": "/b", "instances": 3},
        {"id": "/c", "instances": 1},
    ]
    tasks = [
        # /a: both replaced, the two lost ones may still run
        *({"appId": "/a", "state": "TASK_UNREACHABLE"} for _ in range(2)),
        *({"appId": "/a", "state": "TASK_RUNNING"} for _ in range(2)),
        # /b: one lost, not replaced yet (2 live of 3): no surplus
        {"appId": "/b", "state": "TASK_UNREACHABLE"},
        *({"appId": "/b", "state": "TASK_RUNNING"} for _ in range(2)),
        # /c: lost and replaced, the replacement still starting
        {"appId": "/c", "state": "TASK_UNREACHABLE"},
        {"appId": "/c", "state": "TASK_STARTING"},
    ]  # fmt: skip
    got = js(browser, "packing.js", f"m.possibleSurplus({json.dumps(apps)}, {json.dumps(tasks)})")
    assert got == 3


def test_json_error_paths_map_to_lines(browser: Browser) -> None:
    text = '{\n  "id": "/x",\n  "portDefinitions": [\n    {"port": -5}\n  ],\n  "cpus": "a"\n}'
    got = js(
        browser,
        "appjson.js",
        f"(() => {{ const i = m.lineIndex({json.dumps(text)}); return ["
        "m.lineOf(i, '/portDefinitions(0)/port'), m.lineOf(i, '/cpus'),"
        "m.lineOf(i, '/cmd'), m.fieldLabel('/portDefinitions(0)/port')]; })()",
    )
    assert got == [4, 6, 1, "portDefinitions[0].port"]


def test_creating_an_app_in_the_form_puts_its_tasks_on_node_bins(
    browser: Browser, cluster: Cluster
) -> None:
    page = browser.page
    go(browser, "#/services")
    page.get_by_role("link", name="Create app").click()
    page.get_by_label("App id").fill(APP)
    page.get_by_label("Command").fill(COMMAND)
    page.get_by_label("CPUs").fill("0.5")
    page.get_by_label("Memory (MiB)").fill("256")
    page.get_by_label("Instances").fill("2")
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url(re.compile(r"#/services/ui-web$"))
    tasks = eventually(lambda: cluster.running(APP, 2), 30, f"{APP} running")
    page.get_by_role("navigation").get_by_role("link", name="Nodes").click()
    bins = page.locator(f".tile:has(.seg[data-app='{APP}'])")
    expected = sorted({t["slaveId"] for t in tasks})
    page.wait_for_function(
        "([app, n]) => new Set([...document.querySelectorAll(`.tile:has(.seg[data-app='${app}'])`)]"
        ".map(t => t.dataset.node)).size === n",
        arg=[APP, len(expected)],
    )
    assert sorted(bins.evaluate_all("ts => ts.map(t => t.dataset.node)")) == expected
    legend = page.locator(".legend-apps")
    assert legend.get_by_role("link", name=APP).is_visible()


def test_a_validation_error_is_shown_next_to_its_field(browser: Browser, cluster: Cluster) -> None:
    page = browser.page
    go(browser, "#/create")
    page.get_by_label("App id").fill("/ui-bad")
    page.get_by_label("Command").fill("sleep 60")
    page.get_by_label("CPUs").fill("-1")
    page.get_by_role("button", name="Create app").click()
    error = page.locator("#app-cpus-error")
    error.wait_for()
    assert "below its minimum" in error.inner_text()
    cpus = page.get_by_label("CPUs")
    assert cpus.get_attribute("aria-invalid") == "true"
    assert "app-cpus-error" in (cpus.get_attribute("aria-describedby") or "")
    assert page.evaluate("document.activeElement.id") == "app-cpus"
    browser.shot("create-error-desktop")
    # The same definition as JSON: the error marks the line that holds "mem".
    page.get_by_label("CPUs").fill("0.1")
    page.get_by_role("tab", name="JSON").click()
    editor = page.get_by_label("App definition (Marathon JSON)")
    text = editor.input_value().replace('"mem": 32', '"mem": "lots"')
    editor.fill(text)
    line = text.split("\n").index(next(x for x in text.split("\n") if '"mem"' in x)) + 1
    page.get_by_role("button", name="Create app").click()
    page.locator(f".gutter .ln.bad[data-line='{line}']").wait_for()
    assert f"Line {line}" in page.locator("#app-json-errors").inner_text()
    assert "mem: must be a number" in page.locator("#app-json-errors").inner_text()
    browser.shot("create-json-error-desktop")
    assert cluster.app("/ui-bad") is None


def test_scaling_in_the_ui_changes_the_running_count(browser: Browser, cluster: Cluster) -> None:
    page = browser.page
    go(browser, "#/services")
    page.get_by_role("button", name=f"Scale {APP}").click()
    page.get_by_role("dialog").get_by_label("Instances").fill("3")
    browser.shot("scale-dialog-desktop")
    submit_dialog(browser, "Scale")
    eventually(lambda: cluster.running(APP, 3), 30, f"{APP} at 3")
    count = page.locator(f"tr[data-app='{APP}'] .count")
    page.wait_for_function(
        "(app) => document.querySelector(`tr[data-app='${app}'] .count`)?.dataset.running === '3'",
        arg=APP,
    )
    assert count.inner_text() == "3 / 3"


def test_the_log_viewer_shows_and_follows_what_the_task_prints(
    browser: Browser, cluster: Cluster
) -> None:
    page = browser.page
    task = cluster.running(APP, 3)[0]
    go(browser, "#/tasks")
    page.locator(f"tr[data-task='{task['id']}'] a").first.click()
    log = page.get_by_role("log")
    page.wait_for_function(
        "(m) => document.querySelector('pre.log')?.textContent.includes(m)", arg=MARKER
    )
    assert log.inner_text().count(MARKER) == 1
    seen = max(int(n) for n in re.findall(r"tick (\d+)", log.inner_text()))
    page.wait_for_function(
        "(n) => [...document.querySelector('pre.log').textContent.matchAll(/tick (\\d+)/g)]"
        ".some(m => Number(m[1]) > n)",
        arg=seen,
    )  # followed: a line printed after the page read the log


def test_the_queue_says_why_an_app_waits(browser: Browser, cluster: Cluster) -> None:
    r = cluster.http.post(
        "/v2/apps", json={"id": WAITING, "cmd": "sleep 600", "cpus": 64, "mem": 32, "instances": 1}
    )
    assert r.status_code == 201, r.text
    page = browser.page
    go(browser, "#/queue")
    item = page.locator(f".queue-item[data-app='{WAITING}']")
    item.locator("[data-reason='InsufficientCpus']").wait_for(timeout=20_000)
    assert "no node has enough" in item.inner_text()


def test_an_ended_task_shows_why_it_ended(browser: Browser, cluster: Cluster) -> None:
    r = cluster.http.post(
        "/v2/apps", json={"id": "/ui-broken", "cmd": "nosuchcmd --flag", "cpus": 0.01, "mem": 8}
    )
    assert r.status_code == 201, r.text
    page = browser.page
    go(browser, "#/tasks")
    row = page.locator("section:has(#t-ended) tr", has_text="/ui-broken").first
    row.wait_for(timeout=20_000)
    assert "not found" in row.locator("td.reason").inner_text()
    cluster.http.delete("/v2/apps/ui-broken", params={"force": "true"})


JOB = "ui.nightly"


def _job(cluster: Cluster, job_id: str) -> dict[str, Any]:
    return dict(cluster.http.get(f"/v1/jobs/{job_id}", params={"embed": "history"}).json())


def test_the_jobs_view_lists_schedules_and_runs_a_job_now(
    browser: Browser, cluster: Cluster
) -> None:
    nightly = {
        "id": JOB,
        "run": {"cmd": "echo ran-by-the-ui", "cpus": 0.01, "mem": 16},
        "schedules": [{"id": "night", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}],
    }
    broken = {"id": "ui.broken", "run": {"cmd": "exit 3", "cpus": 0.01, "mem": 16}}
    for job in (nightly, broken):
        r = cluster.http.post("/v1/jobs", json=job)
        assert r.status_code == 201, r.text
    page = browser.page
    go(browser, "#/jobs")
    row = page.locator(f"tr[data-job='{JOB}']")
    row.wait_for(timeout=20_000)
    assert "0 3 * * *, Europe/Berlin" in row.inner_text()
    assert "never ran" in row.inner_text()
    next_at = cluster.http.get(f"/v1/jobs/{JOB}").json()["schedules"][0]["nextRunAt"]
    assert row.locator("td").nth(2).get_attribute("title") == next_at
    row.get_by_role("button", name=f"Run {JOB} now").click()
    page.get_by_role("dialog").get_by_role("button", name="Run now").click()
    page.locator("dialog[open]").wait_for(state="detached")
    eventually(lambda: _job(cluster, JOB)["history"]["successCount"] == 1, 30, "a run ok")
    row.locator(".badge.run-success").wait_for(timeout=20_000)  # the list follows
    assert "1 ok · 0 failed" in row.inner_text()
    # the job's page: its schedule, the finished run in its history
    row.get_by_role("link", name=JOB).click()
    page.wait_for_url(re.compile(r"#/jobs/ui\.nightly$"))
    done = page.locator("tr[data-status='SUCCESS']")
    done.wait_for(timeout=20_000)
    (run,) = _job(cluster, JOB)["history"]["successfulFinishedRuns"]
    assert done.get_attribute("data-run") == run["id"]
    assert page.locator("tr[data-schedule='night']").inner_text().count("0 3 * * *") == 1
    # a run that fails says why, on the page of its job
    assert cluster.http.post("/v1/jobs/ui.broken/runs", json={}).status_code == 201
    go(browser, "#/jobs/ui.broken")
    failed = page.locator("tr[data-status='FAILED'] td.reason")
    failed.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => /exit|3|fail/i.test(document.querySelector("
        "\"tr[data-status='FAILED'] td.reason\").textContent)"
    )
    browser.shot("job-failed-desktop")


def test_a_running_job_shows_its_tasks_and_can_be_stopped(
    browser: Browser, cluster: Cluster
) -> None:
    job = {"id": "ui.long", "run": {"cmd": "sleep 600", "cpus": 0.01, "mem": 16}}
    assert cluster.http.post("/v1/jobs", json=job).status_code == 201
    run = cluster.http.post("/v1/jobs/ui.long/runs", json={}).json()
    page = browser.page
    go(browser, "#/jobs/ui.long")
    card = page.locator(f"section[data-run='{run['id']}']")
    card.locator(".badge.st-running").wait_for(timeout=30_000)
    (task,) = cluster.http.get(f"/v1/jobs/ui.long/runs/{run['id']}").json()["tasks"]
    assert card.locator(f"tr[data-task='{task['id']}'] a").get_attribute("href") == (
        f"#/tasks/{task['id']}"
    )
    browser.shot("job-running-desktop")
    card.get_by_role("button", name=f"Stop run {run['id']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Stop run").click()
    page.locator("tr[data-status='FAILED']").wait_for(timeout=30_000)
    assert not cluster.http.get("/v1/jobs/ui.long/runs").json()


# More apps, so the screenshots show a packed cluster: GPU shares, disk, many small tasks.
SCENERY = [
    {"id": "/ui-db", "cmd": "sleep 600", "cpus": 0.5, "mem": 1024, "disk": 3000, "gpus": 0.5, "instances": 2},
    {"id": "/ui-batch/worker", "cmd": "sleep 600", "cpus": 0.2, "mem": 256, "instances": 5},
]  # fmt: skip


def test_every_view_fits_a_desktop_and_a_phone(browser: Browser, cluster: Cluster) -> None:
    page = browser.page
    for app in SCENERY:
        assert cluster.http.post("/v2/apps", json=app).status_code == 201
    for app in SCENERY:
        eventually(
            lambda a=app: cluster.running(a["id"], a["instances"]), 30, f"{app['id']} running"
        )
    node = max(cluster.nodes(), key=lambda n: len(n["tasks"]))["id"]  # the busiest node
    task = cluster.running(APP, 3)[0]["id"]
    views = {
        "dashboard": "#/",
        "nodes": "#/nodes",
        "node": f"#/nodes/{node}",
        "services": "#/services",
        "service": f"#/services{APP}",
        "create": "#/create",
        "tasks": "#/tasks",
        "task": f"#/tasks/{task}",
        "queue": "#/queue",
        "jobs": "#/jobs",
        "job": f"#/jobs/{JOB}",
    }
    live = len(cluster.http.get("/v2/tasks").json()["tasks"])
    go(browser, "#/")
    page.wait_for_function(
        "(n) => document.querySelector('[data-card=tasks] .big')?.textContent === `${n} live`",
        arg=live,
    )  # the event stream has brought the page up to date
    for device, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for name, route in views.items():
            go(browser, route)
            page.evaluate("document.getElementById('announce').textContent = ''")
            page.wait_for_timeout(300)  # let the first render after the route settle
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} on a {device} scrolls sideways by {overflow}px"
            browser.shot(f"{name}-{device}")
    page.set_viewport_size(DESKTOP)


# A synthetic cluster of 500 nodes and thousands of tasks, rendered by the real views.
SYNTHETIC = """async (n) => {
  const { nodesView } = await import('./ui/js/views/nodes.js');
  const apps = Array.from({length: 24}, (_, i) => ({id: `/svc-${i}`, cpus: 0.5 + (i % 4) * 0.5,
    mem: 512 * (1 + i % 5), disk: 1024, gpus: i % 6 === 0 ? 0.5 : 0, instances: 10}));
  const nodes = [], tasks = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < n; i++) {
    const id = `node-${i}`, host = `10.0.${i >> 8}.${i & 255}`;
    const capacity = {cpus: 16, mem: 65536, disk: 500000, gpus: i % 8 === 0 ? 4 : 0};
    const allocated = {cpus: 0, mem: 0, disk: 0, gpus: 0}, ids = [];
    for (let j = 0, want = rnd() * 30; j < want; j++) {
      const app = apps[Math.floor(rnd() * apps.length)];
      if (['cpus', 'mem', 'gpus'].some((r) => allocated[r] + app[r] > capacity[r])) continue;
      for (const r of ['cpus', 'mem', 'disk', 'gpus']) allocated[r] += app[r];
      const tid = `${app.id.slice(1)}.${i}-${j}`;
      ids.push(tid);
      tasks.push({id: tid, appId: app.id, slaveId: id, host, state: 'TASK_RUNNING', ports: []});
    }
    nodes.push({id, hostname: host, state: 'ACTIVE', attributes: {}, capacity, allocated,
      used: {cpus: allocated.cpus / 3, mem: allocated.mem / 2}, tasks: ids});
  }
  const state = {nodes, apps, tasks, deployments: [], queue: [], ended: [],
    loaded: new Set(['nodes', 'apps', 'tasks']), errors: {}};
  const view = nodesView();
  document.getElementById('main').replaceChildren(view.root);
  view.render(state);
  const first = [...document.querySelectorAll('.tile-item')];
  state.nodes = nodes.map((x, i) => (i === 0 ? {...x, used: {cpus: 1, mem: 1}} : x));
  view.render(state);
  const again = [...document.querySelectorAll('.tile-item')];
  const kept = again.filter((el, i) => el === first[i]).length;
  // The CPU bin of each node: its task segments must add up to what the node has allocated.
  const off = nodes.filter((node) => {
    const tile = document.querySelector(`.tile[data-node='${node.id}']`);
    const inner = tile.querySelector('rect.bin-bg').height.baseVal.value - 1;
    const segs = [...tile.querySelectorAll('rect.seg')].filter((r) => r.x.baseVal.value < 5);
    const drawn = segs.reduce((a, r) => a + r.height.baseVal.value, 0);
    return Math.abs(drawn - (inner * node.allocated.cpus) / 16) > 0.01;
  }).length;
  return {tiles: again.length, tasks: tasks.length, kept, off};
}"""


def test_hundreds_of_nodes_render_as_a_grid_of_bins(browser: Browser) -> None:
    page = browser.page
    page.set_viewport_size(DESKTOP)
    go(browser, "#/queue")  # a view that leaves #main alone while the synthetic one is shown
    got = page.evaluate(SYNTHETIC, 500)
    assert got["tiles"] == 500
    assert got["tasks"] > 2000
    assert got["kept"] == 499  # only the node that changed was drawn again
    assert got["off"] == 0
    browser.shot("nodes-500-desktop")
    go(browser, "#/")  # back to the live views


def test_keyboard_reaches_the_sections(browser: Browser) -> None:
    page = browser.page
    go(browser, "#/")
    page.reload()  # focus starts from the top of a freshly loaded page
    page.locator("#live[data-state='live']").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(4):  # skip link, brand, Dashboard, Nodes
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Services"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/services$"))
    # the view renders after the URL changes, then moves focus to its title
    page.wait_for_function(
        "document.activeElement && document.activeElement.classList.contains('view-title')",
        timeout=10_000,
    )
    current = page.get_by_role("navigation").locator("[aria-current='page']")
    assert current.inner_text() == "Services"


def test_destroying_asks_first_and_removes_the_app(browser: Browser, cluster: Cluster) -> None:
    page = browser.page
    go(browser, "#/services")
    for app in (WAITING, APP):
        page.get_by_role("button", name=f"Destroy {app}").click()
        dialog = page.get_by_role("dialog")
        assert app in dialog.inner_text()
        dialog.get_by_role("button", name="Cancel").click()
        assert cluster.app(app) is not None
        page.get_by_role("button", name=f"Destroy {app}").click()
        submit_dialog(browser, "Destroy")
        page.locator(f"tr[data-app='{app}']").wait_for(state="detached", timeout=30_000)
        eventually(lambda a=app: cluster.app(a) is None, 30, f"{app} gone")


def test_a_deployment_held_at_its_canary_is_promoted_from_the_ui(
    browser: Browser, cluster: Cluster
) -> None:
    app_id = "/ui-canary"
    strategy = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1, "canaryInstances": 1}
    body = {"id": app_id, "cmd": "sleep 600", "cpus": 0.01, "mem": 8, "instances": 2}
    cluster.http.post("/v2/apps", json={**body, "upgradeStrategy": strategy}).raise_for_status()
    eventually(lambda: cluster.running(app_id, 2), 60, "2 running")
    cluster.http.put(f"/v2/apps{app_id}", json={"env": {"V": "2"}}).raise_for_status()
    page = browser.page
    go(browser, "#/services")
    row = page.locator(f"tr[data-app='{app_id}']")
    row.locator("[data-canary]").wait_for(timeout=60_000)
    assert "1 canary ready" in row.inner_text()
    browser.shot("canary-waiting-desktop")
    row.get_by_role("button", name=f"Promote deployment of {app_id}").click()
    submit_dialog(browser, "Promote")
    eventually(lambda: not cluster.http.get("/v2/deployments").json(), 60, "deployment done")
    tasks = eventually(lambda: cluster.running(app_id, 2), 60, "2 running the new version")
    version = cluster.app(app_id)["version"]  # type: ignore[index]
    assert all(t["version"] == version for t in tasks)
    row.locator("[data-canary]").wait_for(state="detached", timeout=30_000)
    cluster.http.delete(f"/v2/apps{app_id}", params={"force": "true"})


def test_services_show_health_check_results(browser: Browser, cluster: Cluster) -> None:
    # One instance whose check always fails (never killed: maxConsecutiveFailures is
    # high), one whose check passes: the services view shows each app's verdicts.
    checks = {"protocol": "COMMAND", "gracePeriodSeconds": 0, "intervalSeconds": 1}
    apps = {
        "/ui-sick": {**checks, "command": {"value": "false"}, "maxConsecutiveFailures": 1000},
        "/ui-well": {**checks, "command": {"value": "true"}},
    }
    for app_id, check in apps.items():
        body = {"id": app_id, "cmd": "sleep 600", "cpus": 0.01, "mem": 8, "healthChecks": [check]}
        assert cluster.http.post("/v2/apps", json=body).status_code == 201
    page = browser.page
    go(browser, "#/services")
    sick = page.locator("tr[data-app='/ui-sick'] .instances")
    well = page.locator("tr[data-app='/ui-well'] .instances")
    page.wait_for_function(
        "() => document.querySelector(`tr[data-app='/ui-sick'] .instances`)"
        "?.textContent.includes('1 unhealthy')",
        timeout=30_000,
    )
    page.wait_for_function(
        "() => document.querySelector(`tr[data-app='/ui-well'] .instances`)"
        "?.textContent.includes('1 healthy')",
        timeout=30_000,
    )
    assert "0 healthy" in sick.inner_text() and "unhealthy" not in well.inner_text()
    browser.shot("services-health-desktop")
    for app_id in apps:
        assert cluster.http.delete(f"/v2/apps{app_id}?force=true").status_code == 200
        eventually(lambda a=app_id: cluster.app(a) is None, 30, f"{app_id} gone")


def test_no_script_errors(browser: Browser) -> None:
    assert browser.errors == []


def test_an_app_page_says_how_clients_reach_it(browser: Browser, cluster: Cluster) -> None:
    # DNS names from the app id, the VIP from its port label; no edge LB runs here.
    body = {
        "id": "/ui/reach",
        "cmd": "sleep 600",
        "cpus": 0.01,
        "mem": 8,
        "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/ui-reach:8080"}}],
    }
    assert cluster.http.post("/v2/apps", json=body).status_code == 201
    page = browser.page
    load(browser, cluster, "#/services/ui/reach")
    card = page.locator("section[aria-labelledby='reach-title']")
    card.get_by_text("reach-ui.marathon.mesos").wait_for(timeout=30_000)
    text = card.inner_text()
    assert "_reach-ui._tcp.marathon.mesos" in text and "reach-ui.pallet" in text
    assert "ui-reach.marathon.l4lb.thisdcos.directory:8080" in text
    assert "none serves this app" in text
    browser.shot("service-reachable-desktop")
    assert cluster.http.delete("/v2/apps/ui/reach?force=true").status_code == 200
    eventually(lambda: cluster.app("/ui/reach") is None, 30, "/ui/reach gone")


def test_a_node_page_shows_its_maintenance_window(browser: Browser, cluster: Cluster) -> None:
    node = sorted(cluster.nodes(), key=lambda n: n["id"])[0]
    start_ns = 1_900_000_000 * 10**9  # 2030-03-17T17:46:40Z
    window = {
        "machine_ids": [{"hostname": node["hostname"]}],
        "unavailability": {"start": {"nanoseconds": start_ns}, "duration": {"nanoseconds": 2 * 3600 * 10**9}},
    }  # fmt: skip
    assert cluster.http.post("/maintenance/schedule", json={"windows": [window]}).status_code == 200
    try:
        load(browser, cluster, f"#/nodes/{node['id']}")
        fact = browser.page.locator("dd.maintenance")
        fact.wait_for(timeout=15_000)
        assert fact.inner_text() == "DRAINING, from 2030-03-17T17:46:40Z for 2 h (pending)"
        badge = browser.page.locator(".badge.node-draining")
        assert badge.inner_text() == "DRAINING"
        load(browser, cluster, "#/nodes")  # the tile says so too
        flag = browser.page.locator(f".tile[data-node='{node['id']}'] .tile-flag.maint")
        flag.wait_for(timeout=15_000)
        assert flag.inner_text() == "draining: window pending"
        # A DOWN node's resources leave the totals, as a GONE one's do.
        got = js(browser, "packing.js", 'm.totals([{state: "DOWN", capacity: {cpus: 4}}]).cpus')
        assert got["capacity"] == 0
    finally:
        assert cluster.http.post("/maintenance/schedule", json={}).status_code == 200
    eventually(lambda: cluster.nodes()[0]["maintenance"] is None, 10, "the window gone")


def test_a_crash_looping_agent_is_flagged_on_its_tile_and_page(
    browser: Browser, cluster: Cluster
) -> None:
    import time

    node = sorted(cluster.nodes(), key=lambda n: n["id"])[-1]
    report = {
        "supervisor": "pallet up",
        "restarts": 6,
        "exits_last_minute": 5,
        "backing_off_until": time.time() + 600,
        "last_exit": time.time(),
        "last_line": "error: the disk is full",
    }
    r = cluster.http.put(f"/v1/nodes/{node['id']}/supervisor", json=report)
    assert r.status_code == 200, r.text
    load(browser, cluster, "#/nodes")
    tile = browser.page.locator(f".tile[data-node='{node['id']}']")
    tile.locator(".tile-flag").wait_for(timeout=15_000)
    assert "looping" in (tile.get_attribute("class") or "")
    assert "agent crash-looping" in (tile.get_attribute("aria-label") or "")
    load(browser, cluster, f"#/nodes/{node['id']}")
    fact = browser.page.locator("dd.supervisor")
    fact.wait_for(timeout=15_000)
    text = fact.inner_text()
    assert text.startswith("pallet up restarted its agent 6 times, 5 in the last minute;")
    assert "backing off: next start in" in text and "it said: error: the disk is full" in text
