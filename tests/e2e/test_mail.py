"""E-mail to people on the real stack: the notifications service sends through the stack's
mail catcher (mentoring/mailcatcher.py, a real SMTP server), and each test reads the .eml files
it kept, parsing invitations with icalendar."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import icalendar
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mentoring import mailcatcher
from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, enrollment_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, metric

pytestmark = pytest.mark.e2e
E = engagement_pb2
EMAIL = pb.NOTIFICATION_CHANNEL_EMAIL


def mails(stack: Stack, to: str) -> list[EmailMessage]:
    found = []
    for path in mailcatcher.messages(stack.mail_dir):
        with path.open("rb") as source:
            message = BytesParser(policy=policy.default).parse(source)
        assert isinstance(message, EmailMessage)
        if any(a.addr_spec == to for a in message["To"].addresses):
            found.append(message)
    return found


def text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html(mail: EmailMessage) -> str:
    body = mail.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def registrations(stack: Stack, service: str, group: str = "") -> float:
    """participant-registered events a service's consumer group has consumed."""
    return metric(
        stack.ports.metrics[service],
        "mentoring_events_consumed_total",
        topic="participant-registered",
        group=group or service,
    )


def address(program: Program, name: str) -> str:
    return f"{name.lower()}@{program.org}.example"


def templates(
    clients: Clients, program: Program, participant_id: str
) -> dict[str, pb.NotificationDelivery]:
    page = clients.notifications.ListDeliveries(
        pb.ListDeliveriesRequest(organization_id=program.org, participant_id=participant_id)
    )
    return {d.template: d for d in page.deliveries}


def delivered(
    clients: Clients, program: Program, participant_id: str, template: str
) -> pb.NotificationDelivery | None:
    found = templates(clients, program, participant_id).get(template)
    ok = found is not None and found.status == pb.NOTIFICATION_DELIVERY_STATUS_DELIVERED
    return found if ok else None


def pair(program: Program, mentor: str, mentee: str, skill: str) -> tuple[str, str, str]:
    """A mentor and a mentee who accept the engine's proposal: their ids and relationship."""
    mentor_id = program.register(mentor, MENTOR, [skill], capacity=1)
    mentee_id = program.register(mentee, MENTEE, [skill])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee_id)), None))
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    return mentor_id, mentee_id, proposal.match_id


def accept(program: Program, mentor_id: str, mentee_id: str, match_id: str) -> str:
    program.respond(match_id, mentor_id, accept=True)
    return program.respond(match_id, mentee_id, accept=True).relationship_id


def test_a_nudge_reaches_both_members_unless_they_turned_nudges_off(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    mia, leo, first = pair(program, "Mia", "Leo", "coaching")
    ada, bo, second = pair(program, "Ada", "Bo", "sales")
    # Bo wants no reminders by e-mail; everything else still comes.
    clients.notifications.SetNotificationPreferences(
        pb.SetNotificationPreferencesRequest(
            organization_id=program.org,
            participant_id=bo,
            categories=[
                pb.CategoryPreference(
                    category=pb.NOTIFICATION_CATEGORY_NUDGES, channel=EMAIL, enabled=False
                )
            ],
        )
    )
    program.clients.engagement.SetNudgePolicy(
        E.SetNudgePolicyRequest(
            policy=E.NudgePolicy(
                organization_id=program.org, program_id=program.pid, no_session_seconds=1
            )
        )
    )
    accept(program, mia, leo, first)
    accept(program, ada, bo, second)

    for person in (mia, leo, ada):
        eventually(
            f"the no-session nudge to {person}",
            lambda p=person: delivered(clients, program, p, "no-session"),  # type: ignore[misc]
        )
    for name, other in (("Mia", "Leo"), ("Leo", "Mia"), ("Ada", "Bo")):
        subjects = [str(m["Subject"]) for m in mails(stack, address(program, name))]
        nudges = [
            s for s in subjects if s == f"{other} and you: time for your next mentoring session"
        ]
        assert len(nudges) == 1, subjects
    # Bo's nudge was suppressed, logged as such; his proposal and start mails went.
    eventually("Bo's start mail", lambda: delivered(clients, program, bo, "relationship-started"))
    log = eventually(
        "Bo's suppressed nudge",
        lambda: (t := templates(clients, program, bo)).get("no-session") and t,
    )
    assert log["no-session"].status == pb.NOTIFICATION_DELIVERY_STATUS_SUPPRESSED
    assert log["match-proposed"].status == pb.NOTIFICATION_DELIVERY_STATUS_DELIVERED
    bo_mail = mails(stack, address(program, "Bo"))
    assert len(bo_mail) == 2
    assert {str(m["Subject"]) for m in bo_mail} == {
        "You have a new mentoring match: Ada",
        "Your mentoring with Ada has started",
    }
    suppressed = metric(
        stack.ports.metrics["notifications"],
        "mentoring_notifications_total",
        channel="email",
        outcome="suppressed",
    )
    assert suppressed >= 1
    prefs = clients.notifications.GetNotificationPreferences(
        pb.GetNotificationPreferencesRequest(organization_id=program.org, participant_id=bo)
    )
    off = [c.category for c in prefs.categories if not c.enabled]
    assert off == [pb.NOTIFICATION_CATEGORY_NUDGES]


def test_an_announcement_to_a_cohort_reaches_exactly_the_cohort(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)

    def consumed() -> float:
        return registrations(stack, "engagement")

    for cohort_id in ("c-a", "c-b"):
        clients.enrollment.CreateCohort(
            enrollment_pb2.CreateCohortRequest(
                organization_id=program.org,
                program_id=program.pid,
                cohort_id=cohort_id,
                name=cohort_id,
            )
        )
    before = consumed()
    cohort = {
        program.register("Cy", MENTEE, ["design"], cohort_id="c-a"),
        program.register("Di", MENTEE, ["design"], cohort_id="c-a"),
    }
    program.register("Ed", MENTEE, ["design"], cohort_id="c-b")
    eventually("engagement to know all three", lambda: consumed() >= before + 3)
    clients.notifications.SetOrganizationBranding(
        pb.SetOrganizationBrandingRequest(
            organization_id=program.org, display_name="Acme Mentoring", brand_colour="#0B6E4F"
        )
    )
    sent = clients.engagement.Announce(
        E.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id=f"kickoff-{uuid.uuid4().hex[:6]}",
            cohort_id="c-a",
            template="kick-off",
            message="Kick-off call on Friday at 10:00",
        )
    )
    assert set(sent.recipient_ids) == cohort
    for name in ("Cy", "Di"):
        (mail,) = eventually(
            f"the announcement to {name}",
            lambda n=name: mails(stack, address(program, n)) or None,  # type: ignore[misc]
        )
        assert "Kick-off call on Friday at 10:00" in text(mail)
        # The organisation's branding, as set before the announcement.
        assert "Acme Mentoring" in html(mail) and "background:#0b6e4f" in html(mail)
    # Ed gets nothing: nothing was even queued for him.
    assert mails(stack, address(program, "Ed")) == []
    assert templates(clients, program, next(iter(cohort))).keys() == {"announcement"}


def test_a_temporary_refusal_is_retried_and_one_message_arrives(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)

    def contacts() -> float:
        return registrations(stack, "notifications")

    before = contacts()
    fay = program.register("Fay", MENTEE, ["law"])
    # Her contact first: the one attempt that fails is then the catcher's refusal.
    eventually("the notifications service to know Fay", lambda: contacts() >= before + 1)
    mailcatcher.refuse_next(stack.mail_dir, 1)
    clients.engagement.Announce(
        E.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id="only-fay",
            participant_id=fay,
            message="Your profile needs a photo",
        )
    )
    found = eventually(
        "the retried announcement", lambda: delivered(clients, program, fay, "announcement")
    )
    assert found.attempts == 2
    (mail,) = mails(stack, address(program, "Fay"))
    assert "photo" in text(mail)
    assert not (stack.mail_dir / mailcatcher.REFUSE_FILE).exists()


def test_an_erased_persons_delivery_log_is_pseudonymised(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    gus, hal, _ = pair(program, "Gus", "Hal", "finance")
    eventually("Hal's proposal mail", lambda: delivered(clients, program, hal, "match-proposed"))
    assert templates(clients, program, hal)["match-proposed"].address == address(program, "Hal")
    clients.enrollment.ErasePerson(
        enrollment_pb2.ErasePersonRequest(
            organization_id=program.org,
            person=enrollment_pb2.PersonRef(participant_id=hal),
            reason="request 1",
            requested_by="dpo",
        )
    )

    def erased() -> pb.NotificationDelivery | None:
        entry = templates(clients, program, hal)["match-proposed"]
        return entry if entry.address == "" else None

    entry = eventually("Hal's log to be pseudonymised", erased)
    assert entry.participant_id == hal and entry.delivery_id
    assert entry.status == pb.NOTIFICATION_DELIVERY_STATUS_DELIVERED
    # Gus's log keeps his own address.
    assert templates(clients, program, gus)["match-proposed"].address == address(program, "Gus")


def test_a_scheduled_moved_and_cancelled_session_send_invitations(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    ivy, jo, match_id = pair(program, "Ivy", "Jo", "ops")
    relationship_id = accept(program, ivy, jo, match_id)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    at = Timestamp()
    at.FromDatetime(start)
    session = clients.engagement.ScheduleSession(
        E.ScheduleSessionRequest(
            organization_id=program.org,
            relationship_id=relationship_id,
            participant_id=ivy,
            scheduled_at=at,
            minutes=45,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
        )
    )
    moved = start + timedelta(days=1)
    at.FromDatetime(moved)
    clients.engagement.RescheduleSession(
        E.RescheduleSessionRequest(
            organization_id=program.org,
            session_id=session.session_id,
            participant_id=ivy,
            scheduled_at=at,
        )
    )
    clients.engagement.CancelSession(
        E.CancelSessionRequest(
            organization_id=program.org,
            session_id=session.session_id,
            participant_id=jo,
            reason="ill",
        )
    )
    for name in ("Ivy", "Jo"):

        def three(n: str = name) -> list[icalendar.Calendar] | None:
            found = []
            for mail in mails(stack, address(program, n)):
                for part in mail.walk():
                    if part.get_content_type() == "text/calendar":
                        found.append(icalendar.Calendar.from_ical(part.get_content()))
            return found if len(found) == 3 else None

        calendars = eventually(f"three invitations for {name}", three)
        by_sequence = {}
        for calendar in calendars:
            (entry,) = calendar.walk("VEVENT")
            assert isinstance(entry, icalendar.Event)
            by_sequence[entry.sequence] = (str(calendar["METHOD"]), entry)
        assert {s: m for s, (m, _) in by_sequence.items()} == {
            0: "REQUEST",
            1: "REQUEST",
            2: "CANCEL",
        }
        assert by_sequence[0][1].start == start and by_sequence[1][1].start == moved
        attendees = sorted(str(a) for a in by_sequence[0][1].attendees)
        assert attendees == sorted(f"mailto:{address(program, n)}" for n in ("Ivy", "Jo"))
        assert len({e.uid for _, e in by_sequence.values()}) == 1
