"""A person's personal data in enrollment: export it, and erase it (pseudonymise it) on request.

A *person* is every registration in the organisation that shares their e-mail address or HR
person id (a person may be in several programs, or mentor in one and mentee in another).

Erasing keeps each registration's ids, role, status, dates, cohort and campaign, so counts and
the other services' references stay whole, and removes everything that names or describes the
person: name, e-mail, HR and manager ids, the profile, application answers, reasons and leave
dates. A registration still in its program is withdrawn (participant-withdrawn, reason
"erased"); every registration is published on participant-erased so that matching and
engagement erase their copies. A minimal record of the erasure stays: who asked, when, why,
and the (pseudonymous) participant ids.

The person may apply again later: their old registrations no longer hold their e-mail or HR
id, so a new application is a new registration, unlinked to the erased ones.

The erasure's record, the erased registrations and the events commit together (the outbox,
services/common/outbox.py), under ids derived from the registrations: repeating the request by
one of the returned participant ids returns the same erasure and republishes the same events,
which consumers drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grpc import aio
from mongoengine import (
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    ListField,
    StringField,
)
from pymongo.errors import DuplicateKeyError

from services.common import auth, clock, outbox, pagination
from services.common.api import common_pb2, enrollment_pb2, events_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.events import new_event, stable_event_id
from services.common.privacy import (
    ERASED,
    ERASURE_REASON,
    pseudonymous_email,
    pseudonymous_profile,
)
from services.common.storage import Transaction, run_sync
from services.common.validation import require_id, require_text
from services.enrollment import domain
from services.enrollment.convert import ROLE_VALUES, participant_message, profile_of, timestamp
from services.enrollment.documents import Participant
from services.enrollment.servicer import EnrollmentServicer

MAX_REASON = 500
MAX_REQUESTED_BY = 200
MAX_EMAIL = 254


class ErasedRegistration(EmbeddedDocument):
    participant_id = StringField(required=True)
    program_id = StringField(required=True)
    role = StringField(required=True)


class ErasureRecord(Document):
    """What an erasure leaves for accountability: no personal data."""

    organization_id = StringField(required=True)
    erasure_id = StringField(required=True)
    registrations = EmbeddedDocumentListField(ErasedRegistration)
    # The registrations' ids again, flat, to find the erasure of a participant.
    participant_ids = ListField(StringField())
    reason = StringField(required=True)
    requested_by = StringField(required=True)
    requested_at = DateTimeField(required=True)
    meta = {
        "collection": "erasures",
        "indexes": [
            {"fields": ["organization_id", "erasure_id"], "unique": True},
            ["organization_id", "participant_ids"],
        ],
    }


# --- pure: the request and the rules ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonKey:
    """Which registrations a request means: by one participant id, an e-mail or an HR id."""

    kind: str
    value: str


def person_key(ref: enrollment_pb2.PersonRef) -> PersonKey:
    """Check the PersonRef of a request; the error names the field."""
    kind = ref.WhichOneof("key")
    if kind is None:
        raise InvalidArgument("person", "name a participant_id, email or hr_person_id")
    value = getattr(ref, kind).strip()
    if kind == "email":
        value = value.lower()
        if not value:
            raise InvalidArgument("person.email", "is required")
        if len(value) > MAX_EMAIL or "@" not in value:
            raise InvalidArgument("person.email", "is not an e-mail address")
        return PersonKey(kind, value)
    return PersonKey(kind, require_id(f"person.{kind}", value))


def erased_status(status: str) -> str:
    """An erased person leaves: applications and registrations end as withdrawn; a rejection
    or an earlier withdrawal stays what it was."""
    if status in (domain.APPLIED, domain.WAITLISTED, domain.REGISTERED):
        return domain.WITHDRAWN
    return status


def erasure_id_for(organization_id: str, participant_ids: list[str]) -> str:
    # Derived from the registrations: a retry before the erasure was stored finds the same id.
    return stable_event_id("erasure", organization_id, *sorted(participant_ids))


def withdrawal_event_id(organization_id: str, participant_id: str) -> str:
    return stable_event_id("participant-withdrawn", organization_id, participant_id, "erased")


def erased_event_id(organization_id: str, participant_id: str) -> str:
    return stable_event_id("participant-erased", organization_id, participant_id)


def pseudonymised(participant_id: str, status: str, profile: common_pb2.Profile) -> dict[str, Any]:
    """The fields of an erased registration: what names or describes the person is replaced
    or emptied; ids, role, capacity, dates, cohort and campaign stay."""
    return {
        "display_name": ERASED,
        "email": pseudonymous_email(participant_id),
        "skills": [],
        "profile": pseudonymous_profile(profile).SerializeToString(deterministic=True),
        "answers": {},
        "hr_person_id": "",
        "status": erased_status(status),
        "status_reason": ERASURE_REASON,
    }


# --- storage (blocking: call through run_sync) ---------------------------------------------


def _erasure_of(organization_id: str, participant_id: str) -> ErasureRecord | None:
    return ErasureRecord.objects(
        organization_id=organization_id, participant_ids=participant_id
    ).first()


def find_person(
    organization_id: str, key: PersonKey
) -> tuple[list[Participant], ErasureRecord | None]:
    """The person's registrations, in program order, and their erasure if they were erased.
    NOT_FOUND when nobody in the organisation matches."""
    registrations = Participant.objects(organization_id=organization_id)
    if key.kind == "participant_id":
        seed = registrations.filter(participant_id=key.value).first()
        if seed is None:
            raise NotFound(f"person.participant_id: no participant {key.value!r}")
        erasure = _erasure_of(organization_id, key.value)
        if erasure is not None:
            erased = registrations.filter(participant_id__in=list(erasure.participant_ids))
            return sorted(erased, key=_order), erasure
        found = {seed.participant_id: seed}
    else:
        found = {d.participant_id: d for d in registrations.filter(**{key.kind: key.value})}
        if not found:
            raise NotFound(f"person.{key.kind}: nobody with this {key.kind} in the organization")
    # Everyone sharing an e-mail or HR id with what was found, until nothing new turns up.
    while True:
        emails = sorted({d.email for d in found.values()})
        hr_ids = sorted({d.hr_person_id for d in found.values() if d.hr_person_id})
        linked = registrations.filter(
            __raw__={"$or": [{"email": {"$in": emails}}, {"hr_person_id": {"$in": hr_ids}}]}
        )
        more = {d.participant_id: d for d in linked if d.participant_id not in found}
        if not more:
            return sorted(found.values(), key=_order), None
        found.update(more)


def _order(doc: Participant) -> tuple[str, str]:
    return (doc.program_id, doc.participant_id)


def export(organization_id: str, key: PersonKey) -> enrollment_pb2.EnrollmentPersonalData:
    docs, _ = find_person(organization_id, key)
    erasures = list(
        ErasureRecord.objects(
            organization_id=organization_id,
            participant_ids__in=[d.participant_id for d in docs],
        ).order_by("erasure_id")
    )
    erasure_of = {pid: e.erasure_id for e in erasures for pid in e.participant_ids}
    out = enrollment_pb2.EnrollmentPersonalData(
        organization_id=organization_id, erasures=[erasure_message(e) for e in erasures]
    )
    for doc in docs:
        out.registrations.add(
            participant=participant_message(doc),
            leave_starts_on=timestamp(doc.leave_starts_on),
            leave_ends_on=timestamp(doc.leave_ends_on),
            erasure_id=erasure_of.get(doc.participant_id, ""),
        )
    return out


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    organization_id: str
    erasure_id: str
    registrations: list[Participant]
    # The events the erasure commits with (again, on a retry).
    events: list[events_pb2.Event]
    # The stored erasure when this is a repeat.
    existing: ErasureRecord | None


def _withdrawn(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=withdrawal_event_id(doc.organization_id, doc.participant_id),
        payload=events_pb2.ParticipantWithdrawn(
            participant_id=doc.participant_id, role=ROLE_VALUES[doc.role], reason=ERASURE_REASON
        ),
    )


def _erased(doc: Participant, erasure_id: str) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=erased_event_id(doc.organization_id, doc.participant_id),
        payload=events_pb2.ParticipantErased(
            participant_id=doc.participant_id, role=ROLE_VALUES[doc.role], erasure_id=erasure_id
        ),
    )


def plan_erasure(organization_id: str, key: PersonKey) -> ErasurePlan:
    docs, existing = find_person(organization_id, key)
    ids = [d.participant_id for d in docs]
    erasure_id = existing.erasure_id if existing else erasure_id_for(organization_id, ids)
    events: list[events_pb2.Event] = []
    for doc in docs:
        # Only an announced registration's withdrawal concerns the other services; on a repeat,
        # the one this erasure made.
        if existing is None:
            withdraws = (doc.status or domain.REGISTERED) == domain.REGISTERED
        else:
            withdraws = doc.withdraw_event_id == withdrawal_event_id(
                organization_id, doc.participant_id
            )
        if withdraws:
            events.append(_withdrawn(doc))
        events.append(_erased(doc, erasure_id))
    return ErasurePlan(organization_id, erasure_id, docs, events, existing)


def apply_erasure(
    plan: ErasurePlan, reason: str, requested_by: str
) -> tuple[ErasureRecord, list[events_pb2.Event]]:
    """Store the erasure's record and erase each registration, in one transaction with the
    plan's events (outbox); returns the record and the events to deliver. Safe to repeat: the
    first request's reason stands and erased fields are erased again to the same values."""
    org = plan.organization_id
    now = clock.now()

    def erase(tx: Transaction) -> tuple[None, list[events_pb2.Event]]:
        tx.update(
            ErasureRecord,
            {"organization_id": org, "erasure_id": plan.erasure_id},
            upsert=True,
            set_on_insert__registrations=[
                ErasedRegistration(
                    participant_id=d.participant_id, program_id=d.program_id, role=d.role
                )
                for d in plan.registrations
            ],
            set_on_insert__participant_ids=[d.participant_id for d in plan.registrations],
            set_on_insert__reason=reason,
            set_on_insert__requested_by=requested_by,
            set_on_insert__requested_at=now,
        )
        for doc in plan.registrations:
            status = doc.status or domain.REGISTERED
            changes = pseudonymised(doc.participant_id, status, profile_of(doc))
            if changes["status"] != status:
                changes["status_changed_at"] = now
            if status == domain.REGISTERED:
                changes["withdraw_event_id"] = withdrawal_event_id(org, doc.participant_id)
            # Unconditional: an erasure wins over any change made at the same moment. A rewrite,
            # since the e-mail is in a unique index: the person may register again with it.
            tx.rewrite(
                Participant,
                {"organization_id": org, "participant_id": doc.participant_id},
                unset__leave_starts_on=True,
                unset__leave_ends_on=True,
                set__updated_at=now,
                **{f"set__{name}": value for name, value in changes.items()},
            )
        return None, plan.events

    try:
        _, events = outbox.commit(erase)
    except DuplicateKeyError:  # a concurrent identical request stored the record first
        events = plan.events
    record = ErasureRecord.objects(organization_id=org, erasure_id=plan.erasure_id).get()
    return record, events


def list_erasures(organization_id: str, size: int, after: str | None) -> list[ErasureRecord]:
    query = ErasureRecord.objects(organization_id=organization_id)
    if after:
        query = query.filter(erasure_id__gt=after)
    return list(query.order_by("erasure_id").limit(size))


def erasure_message(record: ErasureRecord) -> enrollment_pb2.Erasure:
    msg = enrollment_pb2.Erasure(
        organization_id=record.organization_id,
        erasure_id=record.erasure_id,
        reason=record.reason,
        requested_by=record.requested_by,
        registrations=[
            enrollment_pb2.ErasedRegistration(
                participant_id=r.participant_id,
                program_id=r.program_id,
                role=ROLE_VALUES.get(r.role, common_pb2.ROLE_UNSPECIFIED),
            )
            for r in record.registrations
        ],
    )
    msg.requested_at.FromDatetime(record.requested_at)
    return msg


# --- gRPC ----------------------------------------------------------------------------------


class PersonalDataServicer(EnrollmentServicer):
    """EnrollmentService whole: the program and participant RPCs of EnrollmentServicer, and the
    personal-data RPCs, kept here beside the rules they apply."""

    async def ExportPersonalData(
        self, request: enrollment_pb2.ExportPersonalDataRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.EnrollmentPersonalData:
        org = require_id("organization_id", request.organization_id)
        key = person_key(request.person)
        return await run_sync(export, org, key)

    async def ErasePerson(
        self, request: enrollment_pb2.ErasePersonRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Erasure:
        org = require_id("organization_id", request.organization_id)
        key = person_key(request.person)
        reason = require_text("reason", request.reason, MAX_REASON)
        requested_by = auth.actor(
            "requested_by", request.requested_by, required=True, max_len=MAX_REQUESTED_BY
        )
        plan = await run_sync(plan_erasure, org, key)
        record, events = await run_sync(apply_erasure, plan, reason, requested_by)
        await self._outbox.deliver(events)
        return erasure_message(record)

    async def ListErasures(
        self, request: enrollment_pb2.ListErasuresRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ListErasuresResponse:
        org = require_id("organization_id", request.organization_id)
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(list_erasures, org, size, after)
        return enrollment_pb2.ListErasuresResponse(
            erasures=[erasure_message(d) for d in docs],
            next_page_token=pagination.next_token(docs, size, lambda d: d.erasure_id),
        )
