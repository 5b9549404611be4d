"""Webhooks (services/notifications): which URLs are called, signatures, the retry schedule,
and the delivery log's store (idempotency, organisations kept apart, claims, cancellation)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from google.protobuf import json_format
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument, NotFound
from services.common.events import new_event
from services.common.pb.mentoring.v1 import events_pb2
from services.notifications import addresses, domain, egress, outcomes, sender, signing, store
from services.notifications.addresses import NetworkPolicy
from services.notifications.documents import WebhookDelivery
from services.notifications.outcomes import Outcome
from tests.unit import memory_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = WebhookSettings(max_attempts=3, retry_base_seconds=10.0, retry_max_seconds=25.0)

# --- URLs and addresses -------------------------------------------------------------------

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.20", "private"),
    ("[fd12:3456::1]", "private"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("224.0.0.251", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "non-public"),
]


@pytest.mark.parametrize(("host", "kind"), REFUSED)
def test_a_url_on_a_non_public_address_is_refused_naming_url_and_why(host: str, kind: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        addresses.target(f"https://{host}/hook", NetworkPolicy())
    assert refused.value.field == "url"
    assert f"a {kind} address" in str(refused.value)


@pytest.mark.parametrize(("host", "kind"), REFUSED)
def test_allowing_private_networks_allows_every_address(host: str, kind: str) -> None:
    found = addresses.target(f"https://{host}:8443/hook", NetworkPolicy(allow_private=True))
    assert found.port == 8443 and found.address is not None


def test_an_allowed_network_allows_that_network_only() -> None:
    policy = NetworkPolicy.of(WebhookSettings(allowed_networks=("127.0.0.0/8",)))
    assert addresses.target("https://127.0.0.1:9000/x", policy).port == 9000
    for refused in ("https://10.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/x"):
        with pytest.raises(InvalidArgument, match=r"^url: "):
            addresses.target(refused, policy)


def test_a_public_address_is_taken() -> None:
    found = addresses.target("https://93.184.216.34/events?x=1", NetworkPolicy())
    assert (found.host, found.port) == ("93.184.216.34", 443)
    assert found.address == ipaddress.ip_address("93.184.216.34")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is required"),
        ("http://93.184.216.34/x", "must start with https://"),
        ("ftp://93.184.216.34/x", "must start with https://"),
        ("https://user:pw@93.184.216.34/x", "user name or password"),
        ("https:///x", "has no host"),
        ("https://93.184.216.34:99999/x", "is not a URL"),
        ("https://93.184.216.34/x#frag", "fragment"),
        ("https://93.184.216.34/a b", "spaces"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
    ],
)
def test_malformed_urls_are_refused_naming_url(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        addresses.target(url, NetworkPolicy())
    assert refused.value.field == "url" and problem in str(refused.value)


def test_plain_http_only_when_configured() -> None:
    policy = NetworkPolicy.of(WebhookSettings(allow_http=True))
    assert addresses.target("http://93.184.216.34/x", policy).port == 80


async def test_a_name_that_resolves_to_loopback_is_refused_at_creation() -> None:
    with pytest.raises(InvalidArgument, match=r"^url: localhost \(.*\) is a loopback address"):
        await egress.checked_target("https://localhost:8443/hook", NetworkPolicy())


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^url: no-such-host\.invalid does not resolve"):
        await egress.checked_target("https://no-such-host.invalid/hook", NetworkPolicy())


class FixedResolver(AbstractResolver):
    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0)
            for h in self.hosts
        ]

    async def close(self) -> None:
        pass


async def test_the_delivery_resolver_refuses_a_name_that_now_resolves_inside() -> None:
    """DNS rebinding: one public and one private address is refused as a whole."""
    guarded = egress.GuardedResolver(NetworkPolicy(), FixedResolver("93.184.216.34", "10.0.0.7"))
    with pytest.raises(egress.RefusedAddress, match=r"10\.0\.0\.7"):
        await guarded.resolve("hooks.example.com", 443)
    public = egress.GuardedResolver(NetworkPolicy(), FixedResolver("93.184.216.34"))
    assert [r["host"] for r in await public.resolve("hooks.example.com", 443)] == ["93.184.216.34"]


def test_settings_parse_and_refuse_nonsense() -> None:
    settings = WebhookSettings.from_env(
        {
            "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "WEBHOOKS_ALLOWED_NETWORKS": "10.1.0.0/16, 127.0.0.1",
            "WEBHOOKS_MAX_ATTEMPTS": "4",
        }
    )
    assert settings.allow_private_networks and not settings.allow_http
    assert settings.allowed_networks == ("10.1.0.0/16", "127.0.0.1")
    assert settings.max_attempts == 4
    for bad in (
        {"WEBHOOKS_ALLOW_HTTP": "maybe"},
        {"WEBHOOKS_ALLOWED_NETWORKS": "10.1.0.0/99"},
        {"WEBHOOKS_MAX_ATTEMPTS": "0"},
    ):
        with pytest.raises(SystemExit):
            WebhookSettings.from_env(bad)


# --- Event types, signatures, retries ------------------------------------------------------


def test_event_types_are_topics_and_a_bad_one_is_named_by_its_index() -> None:
    assert domain.event_types(["relationship-started", "session-logged"]) == [
        "relationship-started",
        "session-logged",
    ]
    with pytest.raises(InvalidArgument) as bad:
        domain.event_types(["relationship-started", "relationship_started"])
    assert bad.value.field == "event_types[1]"
    with pytest.raises(InvalidArgument) as twice:
        domain.event_types(["session-logged", "session-logged"])
    assert twice.value.field == "event_types[1]"
    with pytest.raises(InvalidArgument) as none:
        domain.event_types([])
    assert none.value.field == "event_types"
    # The organisation's own HR feed is not offered back to it.
    assert "hr-events" not in domain.EVENT_TYPES


def test_a_signed_delivery_verifies_with_the_standard_webhooks_library() -> None:
    secret = domain.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"envelope":{"eventId":"e1"}}'
    sent_at = datetime.now(UTC)
    headers = signing.headers(secret, "msg_1", sent_at, body)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert Webhook(secret).verify(body, headers) == {"envelope": {"eventId": "e1"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"e1", b"e2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(domain.new_secret()).verify(body, headers)


def test_the_backoff_doubles_from_the_base_up_to_the_maximum() -> None:
    delays = [domain.retry_delay(n, 30.0, 300.0).total_seconds() for n in range(1, 7)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    assert domain.retry_delay(500, 30.0, 300.0).total_seconds() == 300.0


def test_an_attempt_leads_to_delivered_a_retry_or_the_dead_letter() -> None:
    def after(attempt: Outcome, attempts: int) -> domain.Next:
        return domain.after_attempt(
            attempt, attempts, NOW, max_attempts=3, base_seconds=10.0, max_seconds=25.0
        )

    ok = after(outcomes.delivered(204), 1)
    assert ok == domain.Next(domain.DELIVERED, None)
    failed = outcomes.temporary("HTTP 500", 500)
    assert after(failed, 1).due == NOW + timedelta(seconds=10)
    assert after(failed, 2).due == NOW + timedelta(seconds=20)
    assert after(failed, 3).status == domain.DEAD_LETTERED
    redirect = outcomes.temporary("HTTP 302: redirects are not followed", 302)
    assert after(redirect, 1).status == domain.PENDING
    assert domain.failure_text(failed) == "HTTP 500"
    # A permanent refusal is not retried; a server's Retry-After is waited out, within the cap.
    assert after(outcomes.permanent("550 no such user", 550), 1).status == domain.DEAD_LETTERED
    assert after(outcomes.temporary("429", 429, retry_after=20.0), 1).due == NOW + timedelta(
        seconds=20
    )
    assert after(outcomes.temporary("429", 429, retry_after=90.0), 1).due == NOW + timedelta(
        seconds=25
    )


def test_a_delivery_id_is_stable_per_event_and_endpoint() -> None:
    one = domain.delivery_id("wh-1", "acme", "ev-1")
    assert one == domain.delivery_id("wh-1", "acme", "ev-1")
    assert one != domain.delivery_id("wh-2", "acme", "ev-1")
    assert one != domain.delivery_id("wh-1", "globex", "ev-1")


# --- The store ----------------------------------------------------------------------------


@pytest.fixture
def db() -> Iterator[None]:
    memory_db.connect_fresh("notifications", "webhooks")
    yield


def event(org: str, event_id: str, kind: str = "relationship_started") -> store.Consumed:
    payload = {
        "relationship_started": events_pb2.RelationshipStarted(relationship_id="r1"),
        "session_logged": events_pb2.SessionLogged(relationship_id="r1"),
    }[kind]
    made = new_event(
        producer="test", organization_id=org, program_id="p1", payload=payload, event_id=event_id
    )
    return store.Consumed(made, partition=2, offset=40, key=b"k")


def webhook(org: str, *types: str, url: str = "https://93.184.216.34/h") -> str:
    created = store.create_webhook(
        org, url, list(types or ("relationship-started",)), "", domain.new_secret(), NOW
    )
    return str(created.webhook_id)


def test_an_event_is_queued_once_for_each_subscribed_endpoint_of_its_organisation(
    db: None,
) -> None:
    mine = webhook("acme")
    webhook("acme", "session-logged")
    theirs = webhook("globex")
    assert store.enqueue([event("acme", "ev-1")], NOW) == 1
    # Redelivered, alone or with others: nothing more.
    assert store.enqueue([event("acme", "ev-1"), event("acme", "ev-1")], NOW) == 0
    queued = list(WebhookDelivery.objects())
    assert [(d.webhook_id, d.organization_id, d.event_id) for d in queued] == [
        (mine, "acme", "ev-1")
    ]
    assert store.list_deliveries("globex", theirs, 10, None) == []


def test_an_organisation_never_gets_another_organisations_event_even_with_its_id(
    db: None,
) -> None:
    acme, globex = webhook("acme"), webhook("globex")
    assert store.enqueue([event("acme", "same-id"), event("globex", "same-id")], NOW) == 2
    assert [d.organization_id for d in store.list_deliveries("acme", acme, 10, None)] == ["acme"]
    assert [d.organization_id for d in store.list_deliveries("globex", globex, 10, None)] == [
        "globex"
    ]
    with pytest.raises(NotFound):
        store.list_deliveries("globex", acme, 10, None)
    with pytest.raises(NotFound):
        store.delete_webhook("globex", acme, NOW)


def test_unsubscribed_types_and_deleted_endpoints_get_nothing(db: None) -> None:
    sessions = webhook("acme", "session-logged")
    gone = webhook("acme")
    store.delete_webhook("acme", gone, NOW)
    assert store.enqueue([event("acme", "ev-1")], NOW) == 0
    assert store.enqueue([event("acme", "ev-2", "session_logged")], NOW) == 1
    assert [d.event_type for d in store.list_deliveries("acme", sessions, 10, None)] == [
        "session-logged"
    ]


def test_a_due_delivery_is_claimed_by_one_sender_only(db: None) -> None:
    webhook("acme")
    store.enqueue([event("acme", "ev-1")], NOW)
    lease = timedelta(seconds=70)
    (claimed,) = store.claim_due(NOW, 10, lease)
    assert claimed.url == "https://93.184.216.34/h" and claimed.secret.startswith("whsec_")
    assert store.claim_due(NOW, 10, lease) == []
    # Its sender died mid-attempt: after the lease it is due again.
    assert len(store.claim_due(NOW + lease, 10, lease)) == 1


def test_failures_are_retried_on_schedule_then_dead_lettered_keeping_the_reason(
    db: None,
) -> None:
    hook = webhook("acme")
    store.enqueue([event("acme", "ev-1")], NOW)
    lease = timedelta(seconds=70)
    moment = NOW
    statuses = []
    for _ in range(SETTINGS.max_attempts):
        (claimed,) = store.claim_due(moment, 1, lease)
        following = store.record_attempt(
            claimed.delivery, outcomes.temporary("HTTP 503", 503), moment, SETTINGS
        )
        assert following is not None
        statuses.append(following.status)
        moment = following.due or moment
    assert statuses == [domain.PENDING, domain.PENDING, domain.DEAD_LETTERED]
    assert moment == NOW + timedelta(seconds=10 + 20)
    (logged,) = store.list_deliveries("acme", hook, 10, None)
    assert (logged.status, logged.attempts, logged.last_status_code, logged.last_error) == (
        domain.DEAD_LETTERED,
        3,
        503,
        "HTTP 503",
    )
    # Its dead letter still to send: it keeps the event until then, not after.
    (unsent,) = store.dead_letters_unsent(10)
    assert events_pb2.Event.FromString(unsent.event).envelope.event_id == "ev-1"
    store.dead_letter_sent(unsent)
    assert store.dead_letters_unsent(10) == []
    assert store.claim_due(NOW + timedelta(days=1), 10, lease) == []


def test_a_delivered_event_leaves_no_payload_in_the_log(db: None) -> None:
    hook = webhook("acme")
    store.enqueue([event("acme", "ev-1")], NOW)
    (claimed,) = store.claim_due(NOW, 1, timedelta(seconds=70))
    following = store.record_attempt(claimed.delivery, outcomes.delivered(200), NOW, SETTINGS)
    assert following == domain.Next(domain.DELIVERED, None)
    stored = WebhookDelivery.objects(webhook_id=hook).first()
    assert stored.status == domain.DELIVERED and stored.delivered_at is not None
    assert stored.event is None and stored.next_attempt_at is None


def test_deleting_an_endpoint_cancels_its_pending_deliveries(db: None) -> None:
    hook = webhook("acme")
    store.enqueue([event("acme", "ev-1")], NOW)
    (claimed,) = store.claim_due(NOW, 1, timedelta(seconds=70))
    other = webhook("acme")
    store.enqueue([event("acme", "ev-2")], NOW)
    endpoint, cancelled = store.delete_webhook("acme", hook, NOW)
    assert endpoint.deleted_at is not None
    # The claimed one too; its attempt, ending after, is logged but does not revive it.
    assert cancelled == 2
    assert store.record_attempt(claimed.delivery, outcomes.delivered(200), NOW, SETTINGS) is None
    logged = store.list_deliveries("acme", hook, 10, None)
    assert {(d.event_id, d.status, d.attempts) for d in logged} == {
        ("ev-1", domain.CANCELLED, 1),
        ("ev-2", domain.CANCELLED, 0),
    }
    later = store.claim_due(NOW + timedelta(hours=1), 10, timedelta())
    assert [(c.delivery.webhook_id, c.delivery.event_id) for c in later] == [(other, "ev-2")]
    # Deleting again changes nothing.
    assert store.delete_webhook("acme", hook, NOW)[1] == 0


def test_listing_pages_through_endpoints_and_deliveries(db: None) -> None:
    hooks = [webhook("acme") for _ in range(3)]
    first = store.list_webhooks("acme", 2, None, False)
    rest = store.list_webhooks("acme", 2, first[-1].webhook_id, False)
    assert [e.webhook_id for e in first + rest] == sorted(hooks)
    for n in range(3):
        store.enqueue([event("acme", f"ev-{n}")], NOW + timedelta(seconds=n))
    newest = store.list_deliveries("acme", hooks[0], 2, None)
    older = store.list_deliveries("acme", hooks[0], 2, newest[-1].order_key)
    assert [d.event_id for d in newest + older] == ["ev-2", "ev-1", "ev-0"]


# --- One attempt over HTTP ----------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    """A local plain-HTTP receiver: /ok answers 204, /moved redirects."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.Response(status=204)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen, bodies
    await runner.cleanup()


def claimed_for(url: str, secret: str) -> store.Claimed:
    consumed = event("acme", "ev-9")
    delivery = WebhookDelivery(
        organization_id="acme",
        webhook_id="wh-1",
        delivery_id="msg_abc",
        event_id="ev-9",
        event_type="relationship-started",
        event=consumed.event.SerializeToString(),
    )
    return store.Claimed(delivery, url, secret)


async def test_one_attempt_posts_the_event_json_signed(
    receiver: tuple[str, list[web.Request], list[bytes]],
) -> None:
    base, seen, bodies = receiver
    settings = WebhookSettings(allow_http=True, allowed_networks=("127.0.0.0/8",))
    secret = domain.new_secret()
    async with egress.session(settings) as session:
        policy = NetworkPolicy.of(settings)
        attempt = await sender.post(session, policy, 5.0, claimed_for(f"{base}/ok", secret))
        assert attempt == outcomes.delivered(204)
        (request,) = seen
        payload = Webhook(secret).verify(bodies[0], dict(request.headers))
        assert request.headers["webhook-id"] == "msg_abc"
        parsed = json_format.Parse(json.dumps(payload), events_pb2.Event())
        assert parsed.envelope.event_id == "ev-9"
        assert parsed.relationship_started.relationship_id == "r1"
        moved = await sender.post(session, policy, 5.0, claimed_for(f"{base}/moved", secret))
        assert moved.code == 302 and "redirects are not followed" in moved.reason
        assert len(seen) == 1
        # At delivery time the policy is checked again: loopback by name, and by address
        # once the deployment stopped allowing it.
        port = base.rsplit(":", 1)[1]
        strict = replace(settings, allowed_networks=())
        async with egress.session(strict) as checked:
            by_name = await sender.post(
                checked,
                NetworkPolicy.of(strict),
                5.0,
                claimed_for(f"http://localhost:{port}/ok", secret),
            )
            by_address = await sender.post(
                checked, NetworkPolicy.of(strict), 5.0, claimed_for(f"{base}/ok", secret)
            )
    assert by_name.code == 0 and "loopback" in by_name.reason
    assert by_address.code == 0 and "loopback" in by_address.reason
    assert len(seen) == 1
