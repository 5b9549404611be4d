"""A background component that does due work every SCHEDULER_INTERVAL_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `work` every `interval` seconds until stopped. A failed round is logged and the next
    round tries again: due work stays due, so nothing is lost by waiting."""

    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self._interval = interval
        self._work = work
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._work()
            except Exception:
                log.exception("%s failed; trying again next round", self.name)
