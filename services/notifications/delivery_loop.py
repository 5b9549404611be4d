"""The background loop every delivery channel runs (webhooks, e-mail, chat): each round claims
due items for the free slots and attempts each in its own task, then publishes the dead letters
not yet sent. It wakes when work is queued or a slot frees, and every `interval` seconds for
retries that came due (its own or another process's). Network I/O stays on the event loop; the
database calls run off it (run_sync). A channel says how it attempts one item
(DeliveryLoop._deliver) and names what it logs; its store (delivery_log.py) keeps the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ClassVar, Generic, Protocol, TypeVar

import aiohttp

from services.common import clock
from services.common.config import WebhookSettings
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.notifications import addresses, dead_letters, domain, egress
from services.notifications.outcomes import Outcome

# A claimed item is another process's to retry once its attempt could not still be running.
LEASE_MARGIN_SECONDS = 60.0
DEAD_LETTERS_PER_ROUND = 100


class LogRow(Protocol):
    """A row of a channel's delivery log (documents.DeliveryRow): what its dead letter and
    its log line are made of."""

    attempts: int
    event_type: str
    partition: int
    offset: int
    key: bytes | None
    event: bytes | None


Claim = TypeVar("Claim")
Row = TypeVar("Row", bound=LogRow)


class Queue(Protocol[Claim, Row]):
    """What the loop needs of a channel's store (store, mail_store, chat_store). Blocking."""

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Claim]: ...

    def dead_letters_unsent(self, limit: int) -> list[Row]: ...

    def dead_letter_sent(self, row: Row) -> None: ...


class DeliveryLoop(ABC, Generic[Claim, Row]):
    """A background component (start, stop) that `wake` tells of newly queued work."""

    # Names its task and its log lines: "webhook", "mail", "chat".
    name: ClassVar[str]
    # What its log calls one item.
    noun: ClassVar[str] = "delivery"
    # The consumer group its dead letters name, beside the platform's others.
    dead_letter_group: ClassVar[str]

    def __init__(
        self,
        queue: Queue[Claim, Row],
        publisher: EventPublisher,
        *,
        concurrency: int,
        timeout_seconds: float,
        interval: float,
        grace_seconds: float,
    ) -> None:
        self._queue = queue
        self._publisher = publisher
        self._concurrency = concurrency
        self._lease = timedelta(seconds=timeout_seconds + LEASE_MARGIN_SECONDS)
        self._interval = interval
        self._grace = grace_seconds
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        # The channel module's logger: its lines keep their logger name.
        self._log = logging.getLogger(type(self).__module__)

    @abstractmethod
    def _task_name(self, claimed: Claim) -> str: ...

    @abstractmethod
    async def _deliver(self, claimed: Claim) -> None:
        """One attempt, recorded by the channel's store; then `_settle`."""

    @abstractmethod
    def _describe(self, row: Row) -> str:
        """The row as its dead-lettering's log line names it."""

    @abstractmethod
    def _dead_letter_reason(self, row: Row) -> str: ...

    async def _prepare_round(self) -> None:
        """Work due before each round's claims (digests)."""

    async def _delivered(self, row: Row) -> None:
        """After a delivered attempt is recorded."""

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Attempts under way get the grace period; one cut short is retried after its lease.
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._grace)
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._prepare_round()
                full = await self.send_due()
                await self._send_dead_letters()
            except Exception:
                # The database or the broker away: the work stays due for the next round.
                self._log.exception(
                    "%s round failed; trying again in %.1fs", self.name, self._interval
                )
                full = False
            if not full:
                # asyncio.timeout, not wait_for: on 3.11, wait_for returns the result of a wake
                # that lands beside stop's cancel, losing the cancel, and stop waits forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()

    async def send_due(self) -> bool:
        """Start attempts for as many due items as there are free slots; whether every slot
        was taken (more may be due)."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return True
        claimed = await run_sync(self._queue.claim_due, clock.now(), free, self._lease)
        for item in claimed:
            task = asyncio.create_task(self._deliver(item), name=self._task_name(item))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed) == free

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error(
                "%s %s failed unexpectedly", self.name, self.noun, exc_info=task.exception()
            )
        # A free slot: due items may be waiting for it.
        self._wake.set()

    async def _settle(
        self,
        row: Row,
        outcome: Outcome,
        following: domain.Next | None,
        count: Callable[[str], None],
    ) -> None:
        """Counts (and logs) where a recorded attempt left its row. `following` None: the row
        was cancelled meanwhile."""
        if following is None:
            return
        if following.status == domain.DELIVERED:
            await self._delivered(row)
        elif following.status == domain.PENDING:
            count("retried")
        else:
            count("dead_lettered")
            self._log.warning(
                "%s dead-lettered after %d attempts: %s",
                self._describe(row),
                # The row as claimed: this attempt is not counted in it.
                row.attempts + 1,
                domain.failure_text(outcome),
            )
            # Its dead letter goes out in the round this task's end wakes
            # (_send_dead_letters): one path, also for those a broker outage held back.

    async def _send_dead_letters(self) -> None:
        """Dead letters not yet sent: of rows dead-lettered since the last round, or whose
        sending failed then (the broker was away). Each goes to the platform's dead-letter
        topic as a consumer's would: the event whole and why; then the row lets go of it."""
        for row in await run_sync(self._queue.dead_letters_unsent, DEAD_LETTERS_PER_ROUND):
            record = dead_letters.record(
                row.event_type, row.partition, row.offset, row.key, row.event or b""
            )
            reason = self._dead_letter_reason(row)
            await self._publisher.dead_letter(record, reason, self.dead_letter_group)
            await run_sync(self._queue.dead_letter_sent, row)


class PostingLoop(DeliveryLoop[Claim, Row]):
    """A loop that POSTs (webhooks, chat): through the checked egress (egress.session), under
    the webhooks' address policy, timeout and concurrency."""

    def __init__(
        self,
        queue: Queue[Claim, Row],
        settings: WebhookSettings,
        publisher: EventPublisher,
        interval: float,
        grace_seconds: float,
    ) -> None:
        super().__init__(
            queue,
            publisher,
            concurrency=settings.concurrency,
            timeout_seconds=settings.timeout_seconds,
            interval=interval,
            grace_seconds=grace_seconds,
        )
        self._settings = settings
        self._policy = addresses.NetworkPolicy.of(settings)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "started"
        return self._session

    async def start(self) -> None:
        self._session = egress.session(self._settings)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()
