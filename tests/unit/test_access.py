"""The access policy (services/common/access.py): every RPC classified, and what each rule
allows, checked directly on requests."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import services.common.pb.mentoring.v1 as contract
from services.common import access
from services.common.access import (
    COORDINATORS,
    MEMBERS,
    PAIR,
    POLICY,
    Principal,
    authorize,
    only_participant,
    participant,
    require_pair_member,
)
from services.common.api import common_pb2, engagement_pb2, enrollment_pb2, matching_pb2
from services.common.errors import InvalidArgument, PermissionDenied

ORG = "acme"
ENROLLMENT = "mentoring.v1.EnrollmentService"
ENGAGEMENT = "mentoring.v1.EngagementService"
MATCHING = "mentoring.v1.MatchingService"


def every_rpc() -> Iterator[tuple[str, MethodDescriptor]]:
    """Every RPC of every service in the generated contract, new proto files included."""
    for info in pkgutil.iter_modules(contract.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{contract.__name__}.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield service.full_name, method


def test_every_rpc_of_every_service_is_classified() -> None:
    missing = [
        f"{service}/{method.name}"
        for service, method in every_rpc()
        if access.rule_for(service, method.name) is None
    ]
    assert not missing, (
        "RPCs without an access rule (refused to everyone while authentication is on): "
        f"{', '.join(missing)}. Add each to POLICY in services/common/access.py as "
        "COORDINATORS (staff only), MEMBERS (anyone in the organisation), "
        'participant("<field naming who acts>"), only_participant("<field>") (private to '
        "that person), or PAIR (the servicer then calls auth.require_pair_member)."
    )


def test_the_policy_names_no_rpc_that_does_not_exist() -> None:
    known = {(service, method.name) for service, method in every_rpc()}
    listed = {(service, method) for service, methods in POLICY.items() for method in methods}
    assert listed - known == set()


def test_every_request_names_its_organisation_and_every_actor_field_exists() -> None:
    problems = []
    for service, method in every_rpc():
        request = method.input_type
        if access.organization_path(request) is None:
            problems.append(f"{service}/{method.name}: no organization_id in {request.name}")
        rule = access.rule_for(service, method.name)
        if rule is not None and rule.acts_as:
            found = request.fields_by_name.get(rule.acts_as)
            if found is None or found.type != FieldDescriptor.TYPE_STRING or found.is_repeated:
                problems.append(f"{service}/{method.name}: no string field {rule.acts_as}")
        if method.client_streaming or method.server_streaming:
            problems.append(f"{service}/{method.name}: streaming; the interceptor authorises unary")
    assert not problems


def test_nested_organisations_are_found() -> None:
    assert access.organization_path(engagement_pb2.SetNudgePolicyRequest.DESCRIPTOR) == (
        "policy",
        "organization_id",
    )
    assert access.organization_path(matching_pb2.SetMatchingConfigRequest.DESCRIPTOR) == (
        "config",
        "organization_id",
    )


def principal(*roles: str, sub: str = "p-1", org: str = ORG, also: str = "") -> Principal:
    ids = {sub} | ({also} if also else set())
    return Principal(org, sub, frozenset(roles), frozenset(ids))


COORDINATOR = principal("coordinator", sub="coord")
SERVICE = principal("service", sub="hris-sync")
MENTEE = principal("participant", sub="p-1", also="p-1b")


def denied(who: Principal, service: str, method: str, request: Message) -> str:
    with pytest.raises(PermissionDenied) as caught:
        authorize(who, service, method, request)
    return str(caught.value)


def request_of(service: str, method: str, **fields: object) -> Message:
    descriptor = next(m for s, m in every_rpc() if s == service and m.name == method)
    return GetMessageClass(descriptor.input_type)(**fields)


def test_coordinators_and_service_accounts_may_call_every_rpc_in_their_organisation() -> None:
    for service, method in every_rpc():
        rule = access.rule_for(service, method.name)
        if rule is None:
            continue  # test_every_rpc_of_every_service_is_classified says so
        request = request_of(service, method.name)
        path = access.organization_path(method.input_type)
        assert path is not None
        target: Message = request
        for name in path[:-1]:
            target = getattr(target, name)
        setattr(target, path[-1], ORG)
        for staff in (COORDINATOR, SERVICE):
            if rule.staff:
                authorize(staff, service, method.name, request)
            else:
                denied(staff, service, method.name, request)


def test_another_organisation_is_permission_denied_naming_the_field() -> None:
    request = enrollment_pb2.ListProgramsRequest(organization_id="globex")
    message = denied(COORDINATOR, ENROLLMENT, "ListPrograms", request)
    assert message.startswith("organization_id:")
    nested = engagement_pb2.SetNudgePolicyRequest(
        policy=engagement_pb2.NudgePolicy(organization_id="globex", program_id="p")
    )
    assert denied(COORDINATOR, ENGAGEMENT, "SetNudgePolicy", nested).startswith(
        "policy.organization_id:"
    )


def test_a_missing_organisation_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        authorize(COORDINATOR, ENROLLMENT, "ListPrograms", enrollment_pb2.ListProgramsRequest())
    assert caught.value.field == "organization_id"


@pytest.mark.parametrize(
    ("service", "method"),
    [
        (ENROLLMENT, "CreateProgram"),
        (ENROLLMENT, "ApproveParticipant"),
        (ENROLLMENT, "ListParticipants"),
        (MATCHING, "StartMatchingRun"),
        (MATCHING, "ProposeMatch"),
        (MATCHING, "SetMatchingConfig"),
        (ENGAGEMENT, "Announce"),
        ("mentoring.v1.AnalyticsService", "GetProgramKpis"),
    ],
)
def test_participants_cannot_call_coordinator_rpcs(service: str, method: str) -> None:
    request = request_of(service, method)
    path = access.organization_path(request.DESCRIPTOR)
    assert path is not None
    target: Message = request
    for name in path[:-1]:
        target = getattr(target, name)
    setattr(target, path[-1], ORG)
    assert denied(MENTEE, service, method, request) == f"{method} is for coordinators only"


def test_participants_act_only_as_themselves() -> None:
    def pause(pid: str) -> Message:
        return engagement_pb2.PauseRelationshipRequest(
            organization_id=ORG, relationship_id="r-1", participant_id=pid
        )

    authorize(MENTEE, ENGAGEMENT, "PauseRelationship", pause("p-1"))
    authorize(MENTEE, ENGAGEMENT, "PauseRelationship", pause("p-1b"))  # participant_ids claim
    for other in ("p-2", ""):
        message = denied(MENTEE, ENGAGEMENT, "PauseRelationship", pause(other))
        assert message.startswith("participant_id: a participant may act only as themselves")
    recommend = matching_pb2.RecommendMentorsRequest(organization_id=ORG, mentee_id="p-2")
    assert denied(MENTEE, MATCHING, "RecommendMentors", recommend).startswith("mentee_id:")
    # Listing everyone's matches needs the filter on oneself.
    everyone = engagement_pb2.ListMatchesRequest(organization_id=ORG, program_id="x")
    denied(MENTEE, ENGAGEMENT, "ListMatches", everyone)


def test_private_notes_are_written_by_their_author_only() -> None:
    note = engagement_pb2.AddSessionNoteRequest(
        organization_id=ORG, session_id="s", participant_id="p-1", text="hm"
    )
    authorize(MENTEE, ENGAGEMENT, "AddSessionNote", note)
    message = denied(COORDINATOR, ENGAGEMENT, "AddSessionNote", note)
    assert message == "participant_id: AddSessionNote is private to that participant"
    # A coordinator who is also in the program writes their own.
    both = principal("coordinator", "participant", sub="p-1")
    authorize(both, ENGAGEMENT, "AddSessionNote", note)


def test_members_and_pair_rules_let_participants_through_to_the_servicer() -> None:
    authorize(
        MENTEE, ENROLLMENT, "ListPrograms", enrollment_pb2.ListProgramsRequest(organization_id=ORG)
    )
    get = engagement_pb2.GetRelationshipRequest(organization_id=ORG, relationship_id="r")
    authorize(MENTEE, ENGAGEMENT, "GetRelationship", get)
    nobody = principal("auditor")
    assert "needs the role participant" in denied(nobody, ENGAGEMENT, "GetRelationship", get)


def test_pair_members_and_staff_pass_the_pair_check_and_nobody_else() -> None:
    require_pair_member(None, "m", "e", "relationship_id")  # authentication off
    require_pair_member(COORDINATOR, "m", "e", "relationship_id")
    require_pair_member(principal("participant", sub="e"), "m", "e", "relationship_id")
    require_pair_member(principal("participant", sub="m"), "m", "e", "relationship_id")
    with pytest.raises(PermissionDenied, match="relationship_id: the caller is neither"):
        require_pair_member(MENTEE, "m", "e", "relationship_id")


def test_an_unclassified_rpc_is_refused_to_everyone() -> None:
    request = enrollment_pb2.ListProgramsRequest(organization_id=ORG)
    assert "not in the access policy" in denied(COORDINATOR, ENROLLMENT, "DropAll", request)


def test_the_rules_describe_themselves() -> None:
    assert COORDINATORS.describe() == "coordinators"
    assert MEMBERS.describe() == "anyone in the organisation"
    assert PAIR.describe() == "coordinators, or the mentor or mentee of the pair"
    assert (
        participant("mentee_id").describe() == "coordinators, or the participant named by mentee_id"
    )
    assert (
        only_participant("participant_id").describe() == "the participant named by participant_id"
    )


def test_a_participant_registers_only_as_themself_without_hr_identifiers() -> None:
    applicant = Principal(ORG, "u-1", frozenset({"participant"}), frozenset({"u-1"}), "Ada@X.org")

    def register(email: str, **profile: str) -> Message:
        return enrollment_pb2.RegisterParticipantRequest(
            organization_id=ORG, program_id="p", email=email, profile=common_pb2.Profile(**profile)
        )

    authorize(applicant, ENROLLMENT, "RegisterParticipant", register("ada@x.org"))
    message = denied(applicant, ENROLLMENT, "RegisterParticipant", register("eve@x.org"))
    assert message == "email: a participant registers only under their token's e-mail"
    no_email = principal("participant", sub="u-2")
    assert denied(no_email, ENROLLMENT, "RegisterParticipant", register("")).startswith(
        "email: the caller's token carries no e-mail"
    )
    for field in ("hr_person_id", "manager_id"):
        message = denied(
            applicant, ENROLLMENT, "RegisterParticipant", register("ada@x.org", **{field: "h-9"})
        )
        assert (
            message == f"profile.{field}: set by HR imports and coordinators, not by participants"
        )
        # Staff register others, with their HR identifiers.
        authorize(
            COORDINATOR, ENROLLMENT, "RegisterParticipant", register("eve@x.org", **{field: "h"})
        )


def test_a_participant_never_sets_their_own_hr_identifiers() -> None:
    def update(**profile: str) -> Message:
        return enrollment_pb2.UpdateParticipantProfileRequest(
            organization_id=ORG, participant_id="p-1", profile=common_pb2.Profile(**profile)
        )

    authorize(MENTEE, ENROLLMENT, "UpdateParticipantProfile", update(department="R&D"))
    message = denied(MENTEE, ENROLLMENT, "UpdateParticipantProfile", update(manager_id="boss"))
    assert message.startswith("profile.manager_id: set by HR imports and coordinators")
    authorize(COORDINATOR, ENROLLMENT, "UpdateParticipantProfile", update(manager_id="boss"))
