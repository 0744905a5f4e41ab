"""Terms of leadership of one master among several on one store: campaign, lead with a
fresh ``Control`` until deposed or abdicating, follow otherwise; asyncio.

    follow (redirect to the leader) ─▶ campaign ─▶ won: Control.start(reconcile_first)
        ▲                                              │ every write fenced
        └──────── deposed (fence refused a write, lease lost) or abdicated ◀┘

A term's ``Control`` is built from the store when it begins (the new leader rebuilds its
state there, resumes deployments as recorded, and reconciles with the agents before it
launches or kills anything) and thrown away when it ends, so a deposed master never acts
on what it believed while it led.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pallet.api.context import ApiContext
from pallet.control import Control
from pallet.control.leader import Election

__all__ = ["Terms"]

log = logging.getLogger(__name__)


class Terms:
    """``await Terms(...)(ctx)`` for the API's life."""

    def __init__(
        self,
        election: Election,
        new_control: Callable[[], Control],
        cooldown: float = 3.0,
        watch_every: float = 0.5,
    ) -> None:
        self.election = election
        self.new_control = new_control
        self.cooldown = cooldown
        self.watch_every = watch_every
        self.terms = 0
        self._abdicated = False

    async def __call__(self, ctx: ApiContext) -> None:
        ctx.abdicate = self._abdicate
        ctx.led_by(None, leading=False)
        try:
            await self._terms(ctx)
        finally:  # stopping: hand over at once rather than after the lease runs out
            with contextlib.suppress(Exception):
                await asyncio.shield(self.election.resign())

    async def _terms(self, ctx: ApiContext) -> None:
        while True:
            watcher = asyncio.create_task(self._follow(ctx))
            try:
                await self.election.campaign()
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self._lead(ctx)
            if self._abdicated:
                self._abdicated = False
                await asyncio.sleep(self.cooldown)  # let another member win

    async def _lead(self, ctx: ApiContext) -> None:
        self.terms += 1
        control = self.new_control()
        control.applier.fence = self.election.fence
        control.applier.on_deposed = self.election.step_down
        ctx.use(control)
        # Not served until the store is loaded: an empty view answered meanwhile would tell
        # a client there are no apps. Until then 503 (no leader yet), then led by this one.
        ctx.led_by(None, leading=False)
        log.info("term %d: elected as %s, loading the store", self.terms, self.election.me.address)
        lost = asyncio.create_task(self.election.lost.wait())
        loading = asyncio.create_task(control.load())
        starting: asyncio.Task[None] | None = None
        try:
            await asyncio.wait({loading, lost}, return_when=asyncio.FIRST_COMPLETED)
            if not lost.done() and loading.exception() is None:
                ctx.led_by(self.election.me.address, leading=True)
                log.info("term %d: leading as %s", self.terms, self.election.me.address)
                starting = asyncio.create_task(control.start(reconcile_first=True, loaded=True))
                await asyncio.wait({starting, lost}, return_when=asyncio.FIRST_COMPLETED)
            elif not lost.done():
                log.error(
                    "term %d: the store could not be loaded: %s", self.terms, loading.exception()
                )
            if not lost.done():
                await lost
        finally:
            for task in (loading, starting, lost):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            ctx.led_by(None, leading=False)
            control.state.release_waiters()  # agents' long-polls end: they ask again
            await control.stop()
            ctx.use(self.new_control())  # an idle one: nothing is served from it
            log.info("term %d over", self.terms)

    async def _follow(self, ctx: ApiContext) -> None:
        """Keep the leader's address current while this master does not lead."""
        while True:
            with contextlib.suppress(Exception):
                leader = await self.election.observe()
                ctx.led_by(leader.address if leader else None, leading=False)
            await asyncio.sleep(self.watch_every)

    async def _abdicate(self) -> None:
        self._abdicated = True
        await self.election.resign()
