"""Who may start another relationship: a mentor holds at most their capacity of ongoing
relationships, a mentee one. Blocking, inside a storage transaction (storage.atomic).

Each participant's directory entry lists the ongoing relationships they hold. Starting one adds
it there and ending one removes it, in the transaction that starts or ends the relationship:
two accepts racing for a participant's last seat both write that entry, so the server lets one
commit and runs the other again, which then finds the seat taken. No count over relationships
could do that: two transactions counting at once would both see a free seat.
"""

from __future__ import annotations

from services.common import clock
from services.common.errors import FailedPrecondition
from services.common.storage import Transaction
from services.engagement import domain
from services.engagement.documents import Match, ProgramParticipant, Relationship


def take(tx: Transaction, match: Match) -> None:
    """Seat the match's relationship with both members, or raise FAILED_PRECONDITION naming the
    member who has no seat left (and nothing changes)."""
    for participant_id, role in (
        (match.mentee_id, domain.MENTEE),
        (match.mentor_id, domain.MENTOR),
    ):
        entry = _entry(tx, match, participant_id, role)
        held = _held(tx, entry)
        if match.relationship_id in held:
            continue
        limit = domain.seat_limit(entry.role, entry.capacity)
        if len(held) >= limit:
            field = "mentor_id" if entry.role == domain.MENTOR else "mentee_id"
            raise FailedPrecondition(
                f"{field}: {participant_id} already has {len(held)} ongoing relationship"
                f"{'s' if len(held) != 1 else ''} of {limit}"
            )
        tx.update(
            ProgramParticipant,
            {"pk": entry.pk},
            set__relationships=[*held, match.relationship_id],
            set__relationships_listed=True,
        )


def release(tx: Transaction, relationship: Relationship) -> None:
    """Free both members' seats of a relationship that ends."""
    for participant_id in (relationship.mentor_id, relationship.mentee_id):
        tx.update(
            ProgramParticipant,
            {"organization_id": relationship.organization_id, "participant_id": participant_id},
            pull__relationships=relationship.relationship_id,
        )


def _entry(tx: Transaction, match: Match, participant_id: str, role: str) -> ProgramParticipant:
    """The member's directory entry; made now if their registration has not come yet."""
    keys = {"organization_id": match.organization_id, "participant_id": participant_id}
    tx.update(
        ProgramParticipant,
        keys,
        upsert=True,
        set_on_insert__program_id=match.program_id,
        set_on_insert__role=role,
        set_on_insert__updated_at=clock.now(),
    )
    entry: ProgramParticipant = tx.find(ProgramParticipant, **keys)
    return entry


def _held(tx: Transaction, entry: ProgramParticipant) -> list[str]:
    """The ongoing relationships the entry lists; for an entry from before the list was kept,
    those the relationships say."""
    if entry.relationships_listed:
        return list(entry.relationships)
    side = "mentor_id" if entry.role == domain.MENTOR else "mentee_id"
    ongoing = tx.find_all(
        Relationship,
        organization_id=entry.organization_id,
        status__in=domain.ONGOING,
        **{side: entry.participant_id},
    )
    return sorted(r.relationship_id for r in ongoing)
