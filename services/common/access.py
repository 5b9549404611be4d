"""Who may call which RPC: the platform's access policy, in one table.

A caller is a `Principal` from a verified token (services/common/auth.py): their organisation,
their subject, their roles and the participant ids they act as. Every RPC of every
`mentoring.v1` service has one row in `POLICY`; tests/unit/test_access.py fails when an RPC
has none. An RPC missing from the table is refused to everyone.

The rules, checked before the servicer runs:
- The request's organisation (its `organization_id`, or that of the message it carries, e.g.
  `policy.organization_id`) must be the token's: nobody reads or writes another tenant's data.
  Every query is scoped by that organisation, so the objects a request names are the caller's.
- Staff (`coordinator`, or `service` for a company's integrations) may call anything in their
  organisation except what is private to one participant.
- A `participant` may call what the row allows, as themselves: the request field the row names
  (e.g. `participant_id`, `mentee_id`) must be one of their ids. Whether that participant
  belongs to the relationship, session or goal is then checked where it is loaded (the store's
  "not the mentor or the mentee" check); rows marked `PAIR` name no actor, and their servicer
  calls `auth.require_pair_member` once it has loaded the pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.common.errors import InvalidArgument, PermissionDenied

COORDINATOR = "coordinator"
PARTICIPANT = "participant"
# A company's own systems (HRIS sync, portal back ends acting for coordinators).
SERVICE = "service"
STAFF = frozenset({COORDINATOR, SERVICE})
ROLES = frozenset({COORDINATOR, PARTICIPANT, SERVICE})

ORGANIZATION_FIELD = "organization_id"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller."""

    organization_id: str
    subject: str
    roles: frozenset[str]
    # The participant ids the caller acts as: the subject, plus the token's participant_ids
    # (a person enrolled in several programs, or as mentor and mentee, has several).
    participant_ids: frozenset[str] = field(default_factory=frozenset)
    # The e-mail the identity provider verified for them; empty when the token carries none.
    email: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF)

    def acts_as(self, participant_id: str) -> bool:
        return bool(participant_id) and participant_id in self.participant_ids


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call one RPC, besides staff of the organisation."""

    # Participants may call it at all.
    participants: bool
    # The request field naming who acts; a participant must be that person.
    acts_as: str = ""
    # Staff may call it for anyone. False: private to the participant named by `acts_as`.
    staff: bool = True
    # The servicer checks that a participant caller is the mentor or mentee of what it loads.
    pair: bool = False
    # Request fields that link a record to a person (HR ids): set by HR events, imports and
    # staff, never by a participant about themself; a participant's request leaves them empty.
    identity: tuple[str, ...] = ()
    # The request field holding an e-mail a participant may only give as the token's own.
    own_email: str = ""

    def describe(self) -> str:
        if not self.participants:
            return "coordinators"
        who = "the participant" if not self.staff else "coordinators, or the participant"
        if self.acts_as:
            return f"{who} named by {self.acts_as}"
        if self.pair:
            return "coordinators, or the mentor or mentee of the pair"
        return "anyone in the organisation"


COORDINATORS = Access(participants=False)
MEMBERS = Access(participants=True)
PAIR = Access(participants=True, pair=True)


def participant(field_name: str) -> Access:
    """Coordinators for anyone; a participant only as the one `field_name` names."""
    return Access(participants=True, acts_as=field_name)


# What ties a participant's record to a person in the organisation's HR system.
IDENTITY_FIELDS = ("profile.hr_person_id", "profile.manager_id")


def only_participant(field_name: str) -> Access:
    """Only the participant `field_name` names, not even coordinators: their private things."""
    return Access(participants=True, acts_as=field_name, staff=False)


# Service full name -> method -> who may call it. New RPCs must be added here.
POLICY: Mapping[str, Mapping[str, Access]] = {
    "mentoring.v1.EnrollmentService": {
        "CreateProgram": COORDINATORS,
        "GetProgram": MEMBERS,
        "UpdateProgram": COORDINATORS,
        "ListPrograms": MEMBERS,
        "ChangeProgramStatus": COORDINATORS,
        "CreateCohort": COORDINATORS,
        "ListCohorts": MEMBERS,
        # People apply themselves through their portal (they have no participant id yet), as
        # themselves: under their token's e-mail, without HR identifiers.
        "RegisterParticipant": Access(
            participants=True, identity=IDENTITY_FIELDS, own_email="email"
        ),
        "GetParticipant": participant("participant_id"),
        "ListParticipants": COORDINATORS,
        "ApproveParticipant": COORDINATORS,
        "RejectParticipant": COORDINATORS,
        "WaitlistParticipant": COORDINATORS,
        "UpdateParticipantProfile": Access(
            participants=True, acts_as="participant_id", identity=IDENTITY_FIELDS
        ),
        "WithdrawParticipant": participant("participant_id"),
        # Rows set HR identifiers, which only HR, imports and staff set: RegisterParticipant's
        # rule for anyone who may give them.
        "ImportParticipants": COORDINATORS,
        # Subject access and erasure requests go through the organisation's staff (a DPO).
        "ExportPersonalData": COORDINATORS,
        "ErasePerson": COORDINATORS,
        "ListErasures": COORDINATORS,
    },
    "mentoring.v1.MatchingService": {
        # A mentee may follow their own proposals (the filter is then required).
        "ListProposals": participant("mentee_id"),
        "GetMatchingConfig": COORDINATORS,
        "SetMatchingConfig": COORDINATORS,
        "GetSkillTaxonomy": COORDINATORS,
        "SetSkillTaxonomy": COORDINATORS,
        "StartMatchingRun": COORDINATORS,
        "GetMatchingRun": COORDINATORS,
        "RecommendMentors": participant("mentee_id"),
        "RequestMentor": participant("mentee_id"),
        "ProposeMatch": COORDINATORS,
        "ExcludePair": COORDINATORS,
        "ExportPersonalData": COORDINATORS,
    },
    "mentoring.v1.EngagementService": {
        "GetMatch": PAIR,
        # A participant lists their own matches (the filter is then required).
        "ListMatches": participant("participant_id"),
        "RespondToMatch": participant("participant_id"),
        "GetRelationship": PAIR,
        "LogSession": PAIR,
        "EndRelationship": participant("participant_id"),
        "PauseRelationship": participant("participant_id"),
        "ResumeRelationship": participant("participant_id"),
        "ExtendRelationship": participant("participant_id"),
        "ScheduleSession": participant("participant_id"),
        # A coordinator acting for a member never sees or writes that member's private note.
        "MarkSessionHeld": participant("participant_id"),
        "RescheduleSession": participant("participant_id"),
        "CancelSession": participant("participant_id"),
        "AddSessionNote": only_participant("participant_id"),
        "ListSessions": participant("participant_id"),
        "GetTranscript": participant("participant_id"),
        "CreateGoal": participant("participant_id"),
        "AddMilestone": participant("participant_id"),
        "UpdateGoalProgress": participant("participant_id"),
        "ListGoals": participant("participant_id"),
        "SubmitFeedback": participant("participant_id"),
        "RecordMessage": participant("participant_id"),
        "AddTrainingResource": COORDINATORS,
        "ListTrainingResources": MEMBERS,
        "CompleteTraining": participant("participant_id"),
        "ListTrainingCompletions": participant("participant_id"),
        "SetNudgePolicy": COORDINATORS,
        "GetNudgePolicy": COORDINATORS,
        "Announce": COORDINATORS,
        "ExportPersonalData": COORDINATORS,
    },
    "mentoring.v1.AnalyticsService": {
        "GetProgramKpis": COORDINATORS,
        "GetSkillBalance": COORDINATORS,
        "ListAtRiskRelationships": COORDINATORS,
        "GetRetention": COORDINATORS,
    },
    # Webhooks carry every event of the organisation they subscribe to: staff only.
    "mentoring.v1.NotificationService": {
        "CreateWebhook": COORDINATORS,
        "ListWebhooks": COORDINATORS,
        "DeleteWebhook": COORDINATORS,
        "ListWebhookDeliveries": COORDINATORS,
        # A participant's own messages and how they want them.
        "GetNotificationPreferences": participant("participant_id"),
        "SetNotificationPreferences": participant("participant_id"),
        "ListDeliveries": participant("participant_id"),
        # Team channels of coordinators; their webhook URLs are secrets: staff only.
        "SetChatChannel": COORDINATORS,
        "ListChatChannels": COORDINATORS,
        "DeleteChatChannel": COORDINATORS,
        "SendChatDigestNow": COORDINATORS,
        "ListChatPosts": COORDINATORS,
        # The feed URL is a credential to the participant's calendar: theirs, or staff's.
        "CreateCalendarFeed": participant("participant_id"),
        "RevokeCalendarFeed": participant("participant_id"),
        # What the organisation's mails look like: staff set it, its members may read it.
        "SetOrganizationBranding": COORDINATORS,
        "GetOrganizationBranding": MEMBERS,
    },
}


def governs(service: str) -> bool:
    """Our APIs need a token; health checks and reflection stay open."""
    return service.startswith("mentoring.")


def rule_for(service: str, method: str) -> Access | None:
    return POLICY.get(service, {}).get(method)


@cache
def organization_path(descriptor: Descriptor) -> tuple[str, ...] | None:
    """Where a request names its organisation: its own `organization_id`, or that of the one
    message field that has one (`SetNudgePolicyRequest.policy.organization_id`)."""
    if ORGANIZATION_FIELD in descriptor.fields_by_name:
        return (ORGANIZATION_FIELD,)
    nested = [
        f.name
        for f in descriptor.fields
        if f.type == FieldDescriptor.TYPE_MESSAGE
        and f.message_type is not None
        and not f.is_repeated
        and ORGANIZATION_FIELD in f.message_type.fields_by_name
    ]
    return (nested[0], ORGANIZATION_FIELD) if len(nested) == 1 else None


def _organization_of(request: Message) -> tuple[str, str]:
    path = organization_path(request.DESCRIPTOR)
    if path is None:
        # Fails closed; the policy test keeps every request naming one.
        raise PermissionDenied("the request names no organization_id")
    value: object = request
    for name in path:
        value = getattr(value, name)
    return ".".join(path), str(value)


def authorize(principal: Principal, service: str, method: str, request: Message) -> None:
    """Raise PermissionDenied (or InvalidArgument for a missing organisation) unless the
    principal may make this call."""
    rule = rule_for(service, method)
    if rule is None:
        raise PermissionDenied(
            f"{method} is not in the access policy (services/common/access.py): refused"
        )
    path, organization = _organization_of(request)
    if not organization:
        raise InvalidArgument(path, "is required")
    if organization != principal.organization_id:
        raise PermissionDenied(f"{path}: the caller's token is for another organisation")
    if principal.is_staff and rule.staff:
        return
    if not rule.participants:
        raise PermissionDenied(f"{method} is for coordinators only")
    if PARTICIPANT not in principal.roles and not principal.is_staff:
        raise PermissionDenied(f"{method} needs the role {PARTICIPANT} or {COORDINATOR}")
    _check_identity(principal, rule, request)
    if rule.acts_as:
        named = str(getattr(request, rule.acts_as))
        if principal.acts_as(named):
            return
        if not rule.staff:
            raise PermissionDenied(f"{rule.acts_as}: {method} is private to that participant")
        raise PermissionDenied(
            f"{rule.acts_as}: a participant may act only as themselves (their token's ids)"
        )


def _check_identity(principal: Principal, rule: Access, request: Message) -> None:
    """A participant says who they are only through their token: they set no HR identifier and
    give no e-mail but the token's."""
    for path in rule.identity:
        value: object = request
        for name in path.split("."):
            value = getattr(value, name)
        if value:
            raise PermissionDenied(
                f"{path}: set by HR imports and coordinators, not by participants"
            )
    if rule.own_email:
        given = str(getattr(request, rule.own_email)).strip().lower()
        if not principal.email:
            raise PermissionDenied(
                f"{rule.own_email}: the caller's token carries no e-mail; a participant "
                "registers only under their own"
            )
        if given != principal.email.lower():
            raise PermissionDenied(
                f"{rule.own_email}: a participant registers only under their token's e-mail"
            )


def require_pair_member(
    principal: Principal | None, mentor_id: str, mentee_id: str, field_name: str
) -> None:
    """For PAIR rows: a participant caller must be the mentor or the mentee."""
    if principal is None or principal.is_staff:
        return
    if principal.acts_as(mentor_id) or principal.acts_as(mentee_id):
        return
    raise PermissionDenied(f"{field_name}: the caller is neither its mentor nor its mentee")
