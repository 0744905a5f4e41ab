"""CPU the master's control spends per app write, in process (no HTTP, a memory store).

``--apps`` apps of no instance (as ``pallet bench api --mixed`` holds them), then
``--writes`` writes, creates, updates and deletes in turn, with an app controller pass
after every ``--pass-every`` writes (a kicked pass; the controller's own pacing runs
them about that often under the mixed load). Prints the CPU seconds per write: the
writes and the passes that finish their deployments.

    PYTHONPATH=src python bench/control_writes.py [--apps 3000] [--writes 1500] [--pass-every 16]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from pallet.control import Control, ControlConfig
from pallet.model.app import AppSpec
from pallet.model.app_run import run_spec
from pallet.model.clock import FakeClock
from pallet.store import open_store


def _spec(app_id: str, cmd: str = "sleep 600") -> AppSpec:
    return AppSpec(id=app_id, cmd=cmd, instances=0, cpus=0.1, mem=32)


async def _write(ctl: Control, apps: list[str], w: int, rng: random.Random) -> None:
    if w % 3 == 0:
        app_id = f"/w/new-{w:06d}"
        spec = _spec(app_id)
        await ctl.apps.create(app_id, spec, run_spec(spec))
        apps.append(app_id)
    elif w % 3 == 1:
        app_id = rng.choice(apps)
        spec = _spec(app_id, f"sleep {w}")
        await ctl.apps.update(app_id, spec, run_spec(spec), force=True)
    else:
        await ctl.apps.delete(apps.pop(rng.randrange(len(apps))), force=True)


async def run(apps: int, writes: int, pass_every: int) -> float:
    clock = FakeClock(1_700_000_000.0)
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    ctl = Control(store, ControlConfig(), clock=clock)
    await ctl.load()
    try:
        ids = [f"/w/app-{i:05d}" for i in range(apps)]
        for i, app_id in enumerate(ids):
            spec = _spec(app_id)
            await ctl.apps.create(app_id, spec, run_spec(spec))
            if i % 500 == 499:
                await ctl.controller.reconcile()
        await ctl.controller.reconcile()
        await ctl.controller.reconcile()
        rng = random.Random(16)
        start = time.process_time()
        for w in range(writes):
            clock.advance(0.01)
            await _write(ctl, ids, w, rng)
            if w % pass_every == pass_every - 1:
                await ctl.controller.reconcile()
        return (time.process_time() - start) / writes
    finally:
        await ctl.stop()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--apps", type=int, default=3000)
    parser.add_argument("--writes", type=int, default=1500)
    parser.add_argument("--pass-every", type=int, default=16)
    args = parser.parse_args()
    per_write = asyncio.run(run(args.apps, args.writes, args.pass_every))
    print(
        f"{args.apps} apps, a pass every {args.pass_every} writes: "
        f"{per_write * 1000:.2f} ms CPU per write"
    )


if __name__ == "__main__":
    main()
