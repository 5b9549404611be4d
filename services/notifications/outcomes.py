"""What one attempt on a delivery channel (SMTP, a chat webhook) came to, in the one shape the
caller's retry policy needs: delivered, worth retrying, or not."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The most of a server's answer an outcome keeps (a delivery log line, not a transcript).
MAX_REASON = 500


class Verdict(StrEnum):
    DELIVERED = "delivered"
    # The same message may succeed later: retry it with backoff.
    TEMPORARY = "temporary"
    # Retrying the same message cannot help: dead-letter it with the reason.
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    # The server's reply code (SMTP or HTTP); 0 when none came (connection error, timeout).
    code: int = 0
    reason: str = ""
    # Seconds the server asked us to wait before retrying (HTTP Retry-After), if it said.
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.verdict is Verdict.DELIVERED

    @property
    def temporary(self) -> bool:
        return self.verdict is Verdict.TEMPORARY

    @property
    def permanent(self) -> bool:
        return self.verdict is Verdict.PERMANENT


def delivered(code: int = 0) -> Outcome:
    return Outcome(Verdict.DELIVERED, code)


def temporary(reason: str, code: int = 0, retry_after: float | None = None) -> Outcome:
    return Outcome(Verdict.TEMPORARY, code, reason[:MAX_REASON], retry_after)


def permanent(reason: str, code: int = 0) -> Outcome:
    return Outcome(Verdict.PERMANENT, code, reason[:MAX_REASON])
