"""Webhooks on the real stack: an organisation's events reach its HTTPS endpoints signed by the
Standard Webhooks scheme, a failing endpoint's delivery is retried then dead-lettered, and no
endpoint ever gets another organisation's events or a type it did not ask for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from standardwebhooks.webhooks import Webhook

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import enrollment_pb2, events_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from tests.e2e.receivers import Receiver
from tests.e2e.support import DeadLetters, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    started = {
        "ok": Receiver(204).start(),
        "failing": Receiver(500).start(),
        "sessions": Receiver(204).start(),
        "other-org": Receiver(204).start(),
    }
    yield started
    for receiver in started.values():
        receiver.stop()


def program_request(org: str, name: str) -> enrollment_pb2.CreateProgramRequest:
    # Open from the start: a program created with the defaults is not announced.
    return enrollment_pb2.CreateProgramRequest(
        organization_id=org, name=name, initial_status=events_pb2.PROGRAM_STATUS_OPEN
    )


def create(clients: Clients, org: str, url: str, *types: str) -> pb.CreateWebhookResponse:
    created: pb.CreateWebhookResponse = clients.notifications.CreateWebhook(
        pb.CreateWebhookRequest(organization_id=org, url=url, event_types=types)
    )
    return created


def program_events(receiver: Receiver) -> list[events_pb2.Event]:
    return [
        json_format.Parse(r.body, events_pb2.Event(), ignore_unknown_fields=True)
        for r in receiver.received
    ]


def deliveries(clients: Clients, org: str, webhook_id: str) -> list[pb.WebhookDelivery]:
    found: list[pb.WebhookDelivery] = clients.notifications.ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(organization_id=org, webhook_id=webhook_id)
    ).deliveries
    return found


def test_events_reach_subscribed_endpoints_of_their_organisation_only(
    stack: Stack, clients: Clients, receivers: dict[str, Receiver]
) -> None:
    org, other_org = (f"org-{uuid.uuid4().hex[:8]}" for _ in range(2))
    ok = create(clients, org, receivers["ok"].url, "program-changed")
    failing = create(clients, org, receivers["failing"].url, "program-changed")
    sessions = create(clients, org, receivers["sessions"].url, "session-logged")
    other = create(clients, other_org, receivers["other-org"].url, "program-changed")
    listed = clients.notifications.ListWebhooks(pb.ListWebhooksRequest(organization_id=org))
    assert {w.webhook_id for w in listed.webhooks} == {
        ok.webhook.webhook_id,
        failing.webhook.webhook_id,
        sessions.webhook.webhook_id,
    }
    assert "whsec_" not in str(listed)
    dead_letters = DeadLetters(stack.ports.bootstrap)

    program = clients.enrollment.CreateProgram(program_request(org, "Webhooks"))
    other_program = clients.enrollment.CreateProgram(program_request(other_org, "Elsewhere"))

    # Delivered, and verifiable with the secret shown at creation.
    eventually("the program-changed delivery", lambda: receivers["ok"].received or None, timeout=30)
    (received,) = receivers["ok"].received
    payload = Webhook(ok.secret).verify(received.body, received.headers)
    assert payload["envelope"]["organizationId"] == org
    assert payload["envelope"]["eventType"] == "program_changed"
    (event,) = program_events(receivers["ok"])
    assert event.envelope.program_id == program.program_id
    assert event.program_changed.name == "Webhooks"
    (logged,) = deliveries(clients, org, ok.webhook.webhook_id)
    assert logged.status == pb.WEBHOOK_DELIVERY_STATUS_DELIVERED
    assert (logged.attempts, logged.last_status_code) == (1, 204)
    assert logged.delivery_id == received.headers["webhook-id"]
    assert logged.event_id == event.envelope.event_id

    # The other organisation's endpoint gets its own event, never this one.
    eventually("the other organisation's delivery", lambda: receivers["other-org"].received or None)
    assert [e.envelope.organization_id for e in program_events(receivers["other-org"])] == [
        other_org
    ]
    assert [e.envelope.program_id for e in program_events(receivers["other-org"])] == [
        other_program.program_id
    ]
    assert [d.event_id for d in deliveries(clients, other_org, other.webhook.webhook_id)] == [
        e.envelope.event_id for e in program_events(receivers["other-org"])
    ]

    # The failing endpoint: every attempt, then the dead letter with the reason.
    def dead() -> pb.WebhookDelivery | None:
        found = deliveries(clients, org, failing.webhook.webhook_id)
        done = [d for d in found if d.status == pb.WEBHOOK_DELIVERY_STATUS_DEAD_LETTERED]
        return done[0] if done else None

    gave_up = eventually("the failing delivery to be dead-lettered", dead, timeout=30)
    assert (gave_up.attempts, gave_up.last_status_code, gave_up.last_error) == (3, 500, "HTTP 500")
    assert len(receivers["failing"].received) == 3
    assert len({r.headers["webhook-id"] for r in receivers["failing"].received}) == 1
    letter = eventually(
        "the webhook's dead letter",
        lambda: next(
            (d for d in dead_letters() if gave_up.delivery_id in d.reason),
            None,
        ),
    )
    assert letter.consumer_group == "notifications-webhooks"
    assert letter.source_topic == "program-changed"
    assert "HTTP 500" in letter.reason
    assert events_pb2.Event.FromString(letter.value).envelope.event_id == event.envelope.event_id

    # A type nobody asked for is not delivered (the same event reached the others by now).
    assert receivers["sessions"].received == []
    assert deliveries(clients, org, sessions.webhook.webhook_id) == []

    # Another organisation cannot read or delete this one's endpoints.
    with pytest.raises(grpc.RpcError) as hidden:
        deliveries(clients, other_org, ok.webhook.webhook_id)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    # Deleted: nothing more is delivered to it.
    clients.notifications.DeleteWebhook(
        pb.DeleteWebhookRequest(organization_id=org, webhook_id=ok.webhook.webhook_id)
    )
    clients.enrollment.CreateProgram(program_request(org, "After deletion"))
    eventually(
        "the second program's delivery to the failing endpoint",
        lambda: len(receivers["failing"].received) > 3,
    )
    assert len(receivers["ok"].received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/hooks",
        "http://127.0.0.1:9/hooks",
    ],
)
def test_a_url_on_a_private_address_or_plain_http_is_refused_naming_url(
    clients: Clients, url: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        create(clients, f"org-{uuid.uuid4().hex[:8]}", url, "program-changed")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("url: ")


def test_an_unknown_event_type_is_refused_naming_its_index(clients: Clients) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        create(clients, "org-x", "https://127.0.0.1:9/hooks", "program-changed", "no-such-type")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("event_types[1]: ")
