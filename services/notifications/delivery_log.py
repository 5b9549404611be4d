"""The delivery log every channel keeps (webhook deliveries, messages, chat posts): claiming the
rows that came due under a lease, recording an attempt by the one retry policy
(domain.after_attempt), and the dead letters still to publish. Blocking: call through
storage.run_sync. Each channel's store says what its rows point at and let go of."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.notifications import domain
from services.notifications.outcomes import Outcome


class RetryPolicy(Protocol):
    """WebhookSettings' and MailSettings' retry fields."""

    @property
    def max_attempts(self) -> int: ...

    @property
    def retry_base_seconds(self) -> float: ...

    @property
    def retry_max_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """One channel's log: its document class (a documents.Attempted), and the changes that let
    a row go of what it was sent from once it is final (delivered, or its dead letter sent)."""

    model: Any
    released: Mapping[str, Any] = field(default_factory=dict)

    def claim_due(
        self,
        now: datetime,
        limit: int,
        lease: timedelta,
        claims: Callable[[list[Any]], Sequence[Any]] = list,
        cancel: Callable[[Any], int] | None = None,
    ) -> list[Any]:
        """Up to `limit` rows due by now, each moved to `now + lease` so that no other process
        claims it meanwhile. `claims` gives each due row's claim (by default the row itself),
        or None where the row cannot go any more (its endpoint or channel deleted): `cancel`
        gets that row's query instead."""
        due = list(
            self.model.objects(status=domain.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .limit(limit)
        )
        if not due:
            return []
        claimed = []
        for row, claim in zip(due, claims(due), strict=True):
            if claim is None:
                if cancel is not None:
                    cancel(self.model.objects(pk=row.pk, status=domain.PENDING))
                continue
            taken = self.model.objects(
                pk=row.pk, status=domain.PENDING, next_attempt_at=row.next_attempt_at
            ).update_one(set__next_attempt_at=now + lease)
            if taken:
                claimed.append(claim)
        return claimed

    def record_attempt(
        self,
        row: Any,
        outcome: Outcome,
        now: datetime,
        policy: RetryPolicy,
        also_logged: Mapping[str, Any] | None = None,
        log_if_cancelled: bool = False,
    ) -> domain.Next | None:
        """Store an attempt of a claimed row, and where the row goes next; None when it was
        cancelled meanwhile: it stays cancelled (with the attempt logged if
        `log_if_cancelled`). A dead-lettered row keeps its event until its dead letter is sent
        (dead_letters_unsent)."""
        attempts = row.attempts + 1
        following = domain.after_attempt(
            outcome,
            attempts,
            now,
            max_attempts=policy.max_attempts,
            base_seconds=policy.retry_base_seconds,
            max_seconds=policy.retry_max_seconds,
        )
        logged = {
            "set__attempts": attempts,
            "set__last_status_code": outcome.code,
            "set__last_error": domain.failure_text(outcome),
            "set__last_attempt_at": now,
            **(also_logged or {}),
        }
        if following.status == domain.PENDING:
            changes = {**logged, "set__next_attempt_at": following.due}
        elif following.status == domain.DELIVERED:
            changes = {
                **logged,
                "set__status": domain.DELIVERED,
                "set__delivered_at": now,
                "unset__next_attempt_at": True,
                **self.released,
            }
        else:
            changes = {**logged, "set__status": following.status, "unset__next_attempt_at": True}
        # The attempt count as claimed: a row claimed again after its lease ran out is the
        # other attempt's to record.
        mine = self.model.objects(pk=row.pk, attempts=row.attempts)
        if mine.filter(status=domain.PENDING).update_one(**changes):
            return following
        if log_if_cancelled:
            mine.update_one(**logged)
        return None

    def dead_letters_unsent(self, limit: int) -> list[Any]:
        """Dead-lettered rows whose dead letter is not yet published (they keep the event)."""
        return list(
            self.model.objects(status=domain.DEAD_LETTERED, event__exists=True).limit(limit)
        )

    def dead_letter_sent(self, row: Any) -> None:
        self.model.objects(pk=row.pk).update_one(**self.released)
