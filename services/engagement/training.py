"""The program's training library and who completed what: storage operations. Blocking: call
through storage.run_sync."""

from __future__ import annotations

from mongoengine.errors import NotUniqueError

from services.common import clock, outbox
from services.common.errors import AlreadyExists, NotFound
from services.common.events import stable_event_id
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.engagement import convert, domain
from services.engagement.documents import Match, TrainingCompletion, TrainingResource


def add_resource(
    organization_id: str,
    program_id: str,
    title: str,
    kind: str,
    url: str,
    audience: str,
    minutes: int,
) -> TrainingResource:
    """One resource per URL in a program: adding the same one again (a retry) returns it."""
    resource_id = stable_event_id("training-resource", organization_id, program_id, url)
    doc = TrainingResource(
        organization_id=organization_id,
        program_id=program_id,
        resource_id=resource_id,
        title=title,
        kind=kind,
        url=url,
        audience=audience,
        minutes=minutes,
        created_at=clock.now(),
    )
    try:
        doc.save(force_insert=True)
    except NotUniqueError:
        existing: TrainingResource = TrainingResource.objects(
            organization_id=organization_id, resource_id=resource_id
        ).get()
        if (existing.title, existing.kind, existing.audience, existing.minutes) != (
            title,
            kind,
            audience,
            minutes,
        ):
            raise AlreadyExists(f"url: the library already has {url}") from None
        return existing
    return doc


def list_resources(
    organization_id: str, program_id: str, audience: str, size: int, after: str | None
) -> list[TrainingResource]:
    query = TrainingResource.objects(organization_id=organization_id, program_id=program_id)
    if audience:
        query = query.filter(audience__in=domain.audiences_for(audience))
    if after:
        query = query.filter(resource_id__gt=after)
    return list(query.order_by("resource_id").limit(size))


def get_resource(organization_id: str, resource_id: str) -> TrainingResource:
    doc: TrainingResource | None = TrainingResource.objects(
        organization_id=organization_id, resource_id=resource_id
    ).first()
    if doc is None:
        raise NotFound(f"resource_id: no training resource {resource_id!r}")
    return doc


def roles_in_program(organization_id: str, program_id: str, participant_id: str) -> set[str]:
    """The sides the participant is known on in the program, from their matches."""
    roles = set()
    base = Match.objects(organization_id=organization_id, program_id=program_id)
    if base.filter(mentor_id=participant_id).first() is not None:
        roles.add(domain.MENTOR)
    if base.filter(mentee_id=participant_id).first() is not None:
        roles.add(domain.MENTEE)
    return roles


def complete(
    organization_id: str, resource_id: str, participant_id: str
) -> tuple[TrainingCompletion, TrainingResource, list[Event]]:
    """Record a completion once, with training-completed (outbox); a repeat returns the first
    one. Returns the completion, its resource and its event."""
    resource = get_resource(organization_id, resource_id)
    domain.check_audience(
        audience=resource.audience,
        roles=roles_in_program(organization_id, resource.program_id, participant_id),
    )
    doc = TrainingCompletion(
        organization_id=organization_id,
        program_id=resource.program_id,
        resource_id=resource_id,
        participant_id=participant_id,
        completed_at=clock.now(),
    )
    if not outbox.insert(doc, [convert.training_completed(doc, resource)]):
        doc = TrainingCompletion.objects(
            organization_id=organization_id, participant_id=participant_id, resource_id=resource_id
        ).get()
    return doc, resource, [convert.training_completed(doc, resource)]


def list_completions(
    organization_id: str, participant_id: str, program_id: str, size: int, after: str | None
) -> list[tuple[TrainingCompletion, TrainingResource]]:
    """A page of the participant's completions in resource-id order, with their resources."""
    query = TrainingCompletion.objects(
        organization_id=organization_id, participant_id=participant_id
    )
    if program_id:
        query = query.filter(program_id=program_id)
    if after:
        query = query.filter(resource_id__gt=after)
    completions = list(query.order_by("resource_id").limit(size))
    resources = {
        r.resource_id: r
        for r in TrainingResource.objects(
            organization_id=organization_id,
            resource_id__in=[c.resource_id for c in completions],
        )
    }
    return [(c, resources[c.resource_id]) for c in completions if c.resource_id in resources]
