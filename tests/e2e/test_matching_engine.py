"""The matching engine end to end: criteria, hard rules, bulk and stable runs with their
reports, self-matching with expiry, coordinator overrides, capacity under load, rematching."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import (
    analytics_pb2,
    common_pb2,
    engagement_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.config import Settings
from services.common.events import new_event, partition_key
from services.common.kafka import EventPublisher
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, hr_record, produce, publish_hr, read_topic

K = matching_pb2
SKILLS = K.Criterion(kind=K.CRITERION_KIND_SKILLS, weight=5)


def test_config_is_validated_named_and_stored(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    for criteria, field in (
        ([K.Criterion(kind=K.CRITERION_KIND_SKILLS, weight=11)], "config.criteria[0].weight"),
        ([SKILLS, K.Criterion(kind=K.CRITERION_KIND_SKILLS, weight=1)], "config.criteria[1].kind"),
        (
            [K.Criterion(kind=K.CRITERION_KIND_TIMEZONE, weight=1, max_timezone_hours=13)],
            "config.criteria[0].max_timezone_hours",
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            program.configure(criteria=criteria)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith(f"{field}:")
    stored = program.configure(criteria=[SKILLS], mode=K.MATCHING_MODE_BULK, min_score=0.3)
    fetched = clients.matching.GetMatchingConfig(
        K.GetMatchingConfigRequest(organization_id=program.org, program_id=program.pid)
    )
    assert fetched == stored
    assert (fetched.candidates_per_mentee, fetched.request_expiry_seconds) == (20, 72 * 3600)
    assert fetched.reporting_line == K.REPORTING_LINE_RULE_MANAGER_CHAIN

    for fields in (
        {"max_gap": 0.5},
        {"max_gap": -0.01},
        {"max_gap": float("nan")},
        {"max_gap": 0.01, "algorithm": events_pb2.MATCHING_ALGORITHM_STABLE},
    ):
        with pytest.raises(grpc.RpcError) as caught:
            program.run(**fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("max_gap:")


def test_bulk_run_keeps_hard_rules_and_reports_why_and_how_fair(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    clients.matching.SetSkillTaxonomy(
        K.SetSkillTaxonomyRequest(
            taxonomy=K.SkillTaxonomy(
                organization_id=program.org,
                skills=[
                    K.SkillNode(name="programming"),
                    K.SkillNode(name="python", parent="programming", synonyms=["py"]),
                    K.SkillNode(name="java", parent="programming"),
                ],
            )
        )
    )
    program.configure(
        mode=K.MATCHING_MODE_BULK,
        min_score=0.1,
        criteria=[
            SKILLS,
            K.Criterion(kind=K.CRITERION_KIND_TIMEZONE, weight=1, hard=True, max_timezone_hours=3),
            K.Criterion(
                kind=K.CRITERION_KIND_SENIORITY, weight=2, min_level_gap=1, max_level_gap=4
            ),
        ],
    )
    mara = program.register(
        "Mara",
        MENTOR,
        ["py"],
        2,
        timezone="Europe/London",
        job_level=6,
        department="Engineering",
        hr_person_id="h-mara",
    )
    program.register(
        "Noah",
        MENTOR,
        ["java"],
        1,
        timezone="Asia/Tokyo",
        job_level=7,
        department="Sales",
        hr_person_id="h-noah",
    )
    olga = program.register(
        "Olga",
        MENTOR,
        ["python"],
        1,
        timezone="Europe/Paris",
        job_level=8,
        department="Engineering",
        hr_person_id="h-olga",
    )
    ines = program.register(
        "Ines",
        MENTEE,
        ["python"],
        timezone="Europe/Paris",
        job_level=3,
        department="Engineering",
        hr_person_id="h-ines",
        manager_id="h-olga",
    )
    jon = program.register(
        "Jon",
        MENTEE,
        ["programming"],
        timezone="Europe/Berlin",
        job_level=2,
        department="Support",
        hr_person_id="h-jon",
    )
    kai = program.register(
        "Kai",
        MENTEE,
        ["java"],
        timezone="America/New_York",
        job_level=4,
        department="Sales",
        hr_person_id="h-kai",
    )
    program.wait_pool()
    assert program.proposals() == []  # bulk mode: nothing until a coordinator runs it

    run = program.run(max_gap=0.01)
    assert run.status == K.RUN_STATUS_COMPLETED, run.result.error
    result = run.result
    assert (result.mentees_considered, result.mentors_considered, result.matched) == (3, 3, 2)
    # what is proved: here the optimum itself (the gap allowed stopping earlier)
    assert result.proved_optimal
    assert result.score_bound == pytest.approx(result.total_score, abs=1e-5)
    assert [(u.mentee_id, u.reason) for u in result.unmatched] == [
        (kai, "no mentor with free capacity passes the hard criteria and the minimum score")
    ]
    proposals = {p.mentee_id: p for p in program.proposals()}
    assert proposals[ines].mentor_id == mara  # Olga is Ines's manager: never her mentor
    assert proposals[jon].mentor_id in (mara, olga)
    assert all(p.run_id == run.run_id for p in proposals.values())
    skills = next(c for c in proposals[ines].breakdown if c.criterion == "skills")
    assert skills.score == 1.0 and "python" in skills.detail
    assert result.total_score == pytest.approx(sum(p.score for p in proposals.values()))
    overall = next(g for g in result.fairness if g.dimension == "overall")
    assert (overall.mentees, overall.matched) == (3, 2)
    assert {g.dimension for g in result.fairness} >= {"overall", "department", "location"}

    completed = [
        events_pb2.Event.FromString(r.value)
        for r in read_topic(stack.ports.bootstrap, "matching-run-completed")
        if r.key == partition_key(program.org, program.pid)
    ]
    assert [e.matching_run_completed.run_id for e in completed] == [run.run_id]
    requested = [
        events_pb2.Event.FromString(r.value).matching_run_requested
        for r in read_topic(stack.ports.bootstrap, "matching-run-requested")
        if r.key == partition_key(program.org, program.pid)
    ]
    assert [(r.run_id, r.max_gap) for r in requested] == [(run.run_id, 0.01)]


def test_stable_run_honours_both_sides_rankings(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    ana = program.register("Ana", MENTOR, ["sql", "python"], 1)
    bo = program.register("Bo", MENTOR, ["sql"], 1)
    # Both mentees want Ana first; Ana scores Cy higher (Cy seeks what she offers, by priority).
    cy = program.register("Cy", MENTEE, ["python", "sql"], preferred_mentor_ids=[ana, bo])
    di = program.register("Di", MENTEE, ["sql", "cooking"], preferred_mentor_ids=[ana, bo])
    program.wait_pool()
    run = program.run(algorithm=events_pb2.MATCHING_ALGORITHM_STABLE)
    assert run.result.algorithm == events_pb2.MATCHING_ALGORITHM_STABLE
    assert {p.mentee_id: p.mentor_id for p in program.proposals()} == {cy: ana, di: bo}


def test_self_matching_recommends_requests_moves_on_and_expires(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_SELF, criteria=[SKILLS], request_expiry_seconds=2)
    ada = program.register("Ada", MENTOR, ["negotiation", "finance"], 1)
    bea = program.register("Bea", MENTOR, ["negotiation"], 1)
    program.register("Cid", MENTOR, ["pottery"], 1)
    eve = program.register("Eve", MENTEE, ["negotiation", "finance"])
    program.wait_pool()
    assert program.proposals() == []  # self mode: the mentee chooses

    recommended = clients.matching.RecommendMentors(
        K.RecommendMentorsRequest(
            organization_id=program.org, program_id=program.pid, mentee_id=eve, limit=5
        )
    ).recommendations
    assert [r.mentor_id for r in recommended] == [ada, bea]  # Cid offers nothing Eve seeks
    assert recommended[0].display_name == "Ada" and recommended[0].free_slots == 1
    assert "finance" in recommended[0].breakdown[0].detail

    first = clients.matching.RequestMentor(
        K.RequestMentorRequest(
            organization_id=program.org,
            program_id=program.pid,
            mentee_id=eve,
            mentor_ids=[ada, bea],
        )
    )
    assert (first.mentor_id, first.origin) == (ada, common_pb2.MATCH_ORIGIN_MENTEE_REQUEST)
    assert first.expires_at.seconds > 0
    asked = eventually("engagement to see the request", lambda: program.known(first.match_id))
    assert asked.mentee_decision == common_pb2.MATCH_DECISION_ACCEPT  # asking is accepting
    assert (
        program.respond(first.match_id, ada, accept=False).status
        == common_pb2.MATCH_STATUS_DECLINED
    )

    second = eventually(
        "the next choice to be asked",
        lambda: next((p for p in program.proposals(eve) if p.mentor_id == bea), None),
    )
    assert second.origin == common_pb2.MATCH_ORIGIN_MENTEE_REQUEST
    # Bea never answers: the request expires, in matching and in engagement.
    eventually(
        "the request to expire",
        lambda: (
            next(p for p in program.proposals(eve) if p.match_id == second.match_id).status
            == common_pb2.MATCH_STATUS_EXPIRED
        ),
        timeout=20,
    )
    eventually(
        "engagement to mark it expired",
        lambda: (
            (m := program.known(second.match_id)) is not None
            and m.status == common_pb2.MATCH_STATUS_EXPIRED
        ),
    )
    again = clients.matching.RecommendMentors(
        K.RecommendMentorsRequest(
            organization_id=program.org, program_id=program.pid, mentee_id=eve
        )
    ).recommendations
    assert [r.mentor_id for r in again] == [bea]  # Ada declined: never proposed again


def test_capacity_holds_when_many_mentees_ask_at_once(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_SELF, criteria=[SKILLS])
    star = program.register("Star", MENTOR, ["strategy"], 2)
    mentees = [program.register(f"Fan{i}", MENTEE, ["strategy"]) for i in range(12)]
    program.wait_pool()

    def ask(mentee: str) -> grpc.StatusCode:
        try:
            clients.matching.RequestMentor(
                K.RequestMentorRequest(
                    organization_id=program.org,
                    program_id=program.pid,
                    mentee_id=mentee,
                    mentor_ids=[star],
                )
            )
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(ask, mentees))
    assert codes.count(grpc.StatusCode.OK) == 2
    assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 10
    assert len([p for p in program.proposals() if p.mentor_id == star]) == 2


def test_coordinator_pairs_by_hand_with_warnings_and_recorded_overrides(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    boss = program.register("Boss", MENTOR, ["budgeting"], 2, hr_person_id="h-boss")
    report = program.register(
        "Report", MENTEE, ["budgeting"], hr_person_id="h-rep", manager_id="h-boss"
    )
    stranger = program.register("Stranger", MENTEE, ["welding"])
    program.wait_pool()
    request = program.proposal_request(boss, report, requested_by="coordinator-1")
    with pytest.raises(grpc.RpcError) as refused:
        clients.matching.ProposeMatch(request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "manager" in refused.value.details()
    request.override = True
    with pytest.raises(grpc.RpcError) as unexplained:
        clients.matching.ProposeMatch(request)
    assert unexplained.value.details().startswith("override_reason:")
    request.override_reason = "Cross-team pairing approved by HR"
    overridden = clients.matching.ProposeMatch(request)
    assert overridden.proposal.origin == common_pb2.MATCH_ORIGIN_COORDINATOR
    # Without authentication the request names who proposed it (with it, the token does).
    assert overridden.proposal.proposed_by == "coordinator-1"
    assert overridden.proposal.override_reason == "Cross-team pairing approved by HR"
    assert any(w.startswith("overridden:") for w in overridden.warnings)

    weak = clients.matching.ProposeMatch(program.proposal_request(boss, stranger))
    assert any(w.startswith("weak skills") for w in weak.warnings)

    def override_event() -> events_pb2.MatchProposed | None:
        for record in read_topic(stack.ports.bootstrap, "match-proposed", settle=2):
            if record.key != partition_key(program.org, program.pid):
                continue  # other tests' events, dead-letter tests' garbage among them
            event = events_pb2.Event.FromString(record.value)
            if event.match_proposed.match_id == overridden.proposal.match_id:
                return event.match_proposed
        return None

    event = eventually("the overridden proposal's event", override_event)
    assert event.override_reason == "Cross-team pairing approved by HR"
    assert event.proposed_by == "coordinator-1"


def test_not_a_good_fit_excludes_the_pair_and_rematches(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    mentors = {
        program.register("Una", MENTOR, ["design"], 1): "Una",
        program.register("Vic", MENTOR, ["design"], 1): "Vic",
    }
    eva = program.register("Eva", MENTEE, ["design"])
    first = eventually("a first proposal", lambda: next(iter(program.proposals(eva)), None))
    # Matching stores a proposal before engagement has read it from match-proposed.
    eventually("engagement to store the proposal", lambda: program.known(first.match_id))
    program.respond(first.match_id, first.mentor_id, accept=True)
    started = program.respond(first.match_id, eva, accept=True)
    ended = clients.engagement.EndRelationship(
        engagement_pb2.EndRelationshipRequest(
            organization_id=program.org,
            relationship_id=started.relationship_id,
            participant_id=eva,
            reason="Our schedules never lined up",
            not_a_good_fit=True,
        )
    )
    assert ended.status == engagement_pb2.RELATIONSHIP_STATUS_CLOSED_EARLY
    second = eventually(
        "a rematch",
        lambda: next((p for p in program.proposals(eva) if p.match_id != first.match_id), None),
    )
    assert {first.mentor_id, second.mentor_id} == set(mentors)
    request = analytics_pb2.GetProgramKpisRequest(
        organization_id=program.org, program_id=program.pid
    )
    eventually(
        "KPIs to count the early close",
        lambda: (
            (k := clients.analytics.GetProgramKpis(request)).relationships_closed_early == 1
            and k.active_relationships == 0
            and k.matches_proposed == 2
        ),
    )


def test_a_manager_change_from_hr_blocks_the_pair(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_SELF, criteria=[SKILLS])
    lead = program.register("Lead", MENTOR, ["hiring"], 1, hr_person_id="h-lead")
    newbie = program.register("Newbie", MENTEE, ["hiring"], hr_person_id="h-newbie")
    other = program.register("Other", MENTEE, ["hiring"], hr_person_id="h-other")
    program.wait_pool()

    def recommended(mentee_id: str) -> list[str]:
        return [
            r.mentor_id
            for r in clients.matching.RecommendMentors(
                K.RecommendMentorsRequest(
                    organization_id=program.org, program_id=program.pid, mentee_id=mentee_id
                )
            ).recommendations
        ]

    assert recommended(newbie) == recommended(other) == [lead]
    # Another organisation's HR system says Other reports to Lead, with its own key: it does
    # not speak for this organisation, so every matching worker skips it.
    forged = new_event(
        producer="hris",
        organization_id=program.org,
        program_id="",
        payload=events_pb2.HrEvent(
            hr_person_id="h-other", manager_changed=events_pb2.ManagerChanged(manager_id="h-lead")
        ),
    )
    intruder = stack.hr_producer(f"other-{program.org}")
    produce(stack.ports.bootstrap, [hr_record(forged)], signed_with=intruder)
    # The HR system says Newbie now reports to Lead: from then on they are never paired.
    publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id="h-newbie", manager_changed=events_pb2.ManagerChanged(manager_id="h-lead")
        ),
    )
    eventually("matching to apply the manager change", lambda: recommended(newbie) == [])
    # Both went to the organisation's partition, the forged one first: it was read, not applied.
    assert recommended(other) == [lead]
    with pytest.raises(grpc.RpcError) as refused:
        clients.matching.RequestMentor(
            K.RequestMentorRequest(
                organization_id=program.org,
                program_id=program.pid,
                mentee_id=newbie,
                mentor_ids=[lead],
            )
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_run_whose_report_passes_a_megabyte_is_published_and_read_back(
    stack: Stack, clients: Clients
) -> None:
    # A bulk run of a large program leaves up to 100,000 mentees unmatched (the contract's
    # bound), each with its reason: its completion event is ten times Kafka's default 1 MB limit
    # and its reply more than twice gRPC clients' default 4 MB.
    program = Program(clients, stack)
    unmatched = [
        events_pb2.UnmatchedMentee(
            mentee_id=f"mentee-{n:05d}-{'x' * 24}",
            reason="no mentor with free capacity passes the hard criteria",
        )
        for n in range(100_000)
    ]
    run_id = f"run-{program.pid}"
    event = new_event(
        producer="matching",
        organization_id=program.org,
        program_id=program.pid,
        payload=events_pb2.MatchingRunCompleted(
            run_id=run_id, mentees_considered=100_000, unmatched=unmatched
        ),
    )
    assert event.ByteSize() > 8 * 1024 * 1024
    asyncio.run(publish_as_a_service(stack, [event]))

    def recorded() -> matching_pb2.MatchingRun | None:
        try:
            return clients.matching.GetMatchingRun(
                matching_pb2.GetMatchingRunRequest(organization_id=program.org, run_id=run_id)
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    run = eventually("matching to record the run", recorded)
    assert [u.mentee_id for u in run.result.unmatched] == [u.mentee_id for u in unmatched]


async def publish_as_a_service(stack: Stack, events: list[events_pb2.Event]) -> None:
    """Publish with the producer the services use, configured as they are."""
    settings = Settings.from_env("matching", {"KAFKA_BOOTSTRAP_SERVERS": stack.ports.bootstrap})
    publisher = EventPublisher(settings)
    await publisher.start()
    try:
        await publisher.publish(events)
    finally:
        await publisher.stop()
