"""What the notifications service stores in its own database."""

from __future__ import annotations

from typing import Any

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    StringField,
)

DELIVERY_STATUSES = ("pending", "delivered", "dead_lettered", "cancelled")


class DeliveryRow(Document):
    """What every channel's delivery log row keeps of its attempts (webhook deliveries,
    messages, chat posts): delivery_log.DeliveryLog claims and records them."""

    # Creation time then the row's id: a log lists newest first by it.
    order_key = StringField(required=True)
    attempts = IntField(default=0)
    last_status_code = IntField(default=0)
    last_error = StringField(default="")
    created_at = DateTimeField(required=True)
    last_attempt_at = DateTimeField()
    # Due time while pending; a sender that claims it moves it past its attempt (a lease), so
    # another process does not send it too, and a crash mid-attempt retries after the lease.
    next_attempt_at = DateTimeField()
    delivered_at = DateTimeField()
    # The event as consumed, while it may still be sent; removed once the row is final (or its
    # dead letter sent), so the log keeps no personal data the event carried.
    event = BinaryField()
    # Where the event was consumed, for its dead letter.
    partition = IntField(default=0)
    offset = IntField(default=0)
    key = BinaryField()
    # Abstract: each channel names its own collection and indexes.
    meta: dict[str, Any] = {"abstract": True}


class WebhookEndpoint(Document):
    """An organisation's endpoint and the event types (topics) it receives."""

    organization_id = StringField(required=True)
    # Sorts by creation time (domain.new_webhook_id), so listing by id lists oldest first.
    webhook_id = StringField(required=True)
    url = StringField(required=True)
    event_types = ListField(StringField(), required=True)
    description = StringField(default="")
    # The HMAC key of its signatures, "whsec_<base64>". Kept as given: signing needs it whole.
    secret = StringField(required=True)
    created_at = DateTimeField(required=True)
    deleted_at = DateTimeField()
    meta = {
        "collection": "webhook_endpoints",
        "indexes": [
            {"fields": ["organization_id", "webhook_id"], "unique": True},
            # Who receives an event: the organisation's endpoints for its type.
            ["organization_id", "event_types"],
            # The sender's look-up of the endpoints its due deliveries go to.
            "webhook_id",
        ],
    }


class WebhookDelivery(DeliveryRow):
    """One event for one endpoint, its attempts and outcome: the delivery log's row. Its
    event is a serialised mentoring.v1.Event."""

    organization_id = StringField(required=True)
    webhook_id = StringField(required=True)
    # Derived from the endpoint and the event (domain.delivery_id): a redelivered event finds
    # its delivery there and adds none. The webhook-id header of every attempt.
    delivery_id = StringField(required=True)
    event_id = StringField(required=True)
    event_type = StringField(required=True)
    program_id = StringField(default="")
    status = StringField(required=True, choices=DELIVERY_STATUSES)
    meta = {
        "collection": "webhook_deliveries",
        "indexes": [
            {"fields": ["delivery_id"], "unique": True},
            ["organization_id", "webhook_id", "order_key"],
            # The sender's query for due deliveries.
            ["status", "next_attempt_at"],
            ["webhook_id", "status"],
        ],
    }


# --- messages to people (e-mail) ----------------------------------------------------------

MESSAGE_STATUSES = (
    "pending",
    "delivered",
    "dead_lettered",
    "suppressed",
    "digest",
    "digested",
    "cancelled",
)


class Contact(Document):
    """What the service needs to write to a participant, from participant-registered and
    participant-updated; pseudonymised (name and address gone, ids kept) on participant-erased."""

    organization_id = StringField(required=True)
    participant_id = StringField(required=True)
    program_id = StringField(default="")
    role = StringField(default="")
    name = StringField(default="")
    email = StringField(default="")
    cohort_id = StringField(default="")
    # The profile's first language and its IANA time zone; en and UTC when it has none.
    language = StringField(default="en")
    time_zone = StringField(default="UTC")
    erased = BooleanField(default=False)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "contacts",
        "indexes": [{"fields": ["organization_id", "participant_id"], "unique": True}],
    }


class Preferences(Document):
    """A participant's choices (preferences.Rules); none stored means the defaults."""

    organization_id = StringField(required=True)
    participant_id = StringField(required=True)
    # "category:channel" pairs turned off, e.g. "nudges:email".
    disabled = ListField(StringField(), default=list)
    daily_digest = BooleanField(default=False)
    # Minutes after local midnight; equal: no quiet hours.
    quiet_start = IntField(default=0)
    quiet_end = IntField(default=0)
    # Empty: the contact's.
    time_zone = StringField(default="")
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "preferences",
        "indexes": [{"fields": ["organization_id", "participant_id"], "unique": True}],
    }


class Message(DeliveryRow):
    """One message to one participant on one channel: the delivery log's row, and while it may
    still be sent, what it is made from."""

    organization_id = StringField(required=True)
    program_id = StringField(default="")
    participant_id = StringField(required=True)
    channel = StringField(required=True)
    category = StringField(required=True)
    template = StringField(required=True)
    # From the event, the recipient and the channel (notices.message_id): a redelivered event
    # adds nothing.
    message_id = StringField(required=True)
    event_id = StringField(default="")
    event_type = StringField(default="")
    status = StringField(required=True, choices=MESSAGE_STATUSES)
    # The address it went to; emptied on erasure.
    address = StringField(default="")
    # For a message waiting for its recipient's digest: when the digest goes.
    digest_due = DateTimeField()
    # The digest that carries it; for a digest, the messages it carries.
    digest_id = StringField(default="")
    items = ListField(StringField(), default=list)
    # The template's values (ids, dates, an announcement's text): names and addresses are read
    # from the contacts when it is sent. Removed once it is final.
    data = DictField()
    meta = {
        "collection": "messages",
        "indexes": [
            {"fields": ["message_id"], "unique": True},
            ["organization_id", "participant_id", "order_key"],
            ["status", "next_attempt_at"],
            ["status", "digest_due"],
        ],
    }


class PlannedSession(Document):
    """The latest plan of a session the service wrote about: a move's message shows the time
    it had before (session-planned carries only the new one)."""

    organization_id = StringField(required=True)
    session_id = StringField(required=True)
    starts_at = DateTimeField(required=True)
    sequence = IntField(default=0)
    # The start before the latest change (ISO), for a replayed move's message.
    previous = StringField(default="")
    # The rest of the latest plan, for the members' calendar feeds: ids and values only (names
    # come from the contacts when a feed is read).
    mentor_id = StringField(default="")
    mentee_id = StringField(default="")
    participant_ids = ListField(StringField(), default=list)
    minutes = IntField(default=0)
    mode = StringField(default="")
    topics = StringField(default="")
    cancelled = BooleanField(default=False)
    meta = {
        "collection": "planned_sessions",
        "indexes": [
            {"fields": ["organization_id", "session_id"], "unique": True},
            # A member's feed.
            ["organization_id", "participant_ids", "starts_at"],
        ],
    }


class CalendarFeed(Document):
    """A participant's calendar feed: only a hash of its URL's token (links.token_hash), so the
    database does not hold what reads the calendar. One per participant; a new one replaces it."""

    organization_id = StringField(required=True)
    participant_id = StringField(required=True)
    token_hash = StringField(required=True)
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "calendar_feeds",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            {"fields": ["token_hash"], "unique": True},
        ],
    }


class UnsubscribeLink(Document):
    """The one-click unsubscribe link (RFC 8058) of one e-mail: whose, and the categories it
    turns off. Only a hash of its token, as for feeds."""

    organization_id = StringField(required=True)
    participant_id = StringField(required=True)
    categories = ListField(StringField(), required=True)
    token_hash = StringField(required=True)
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "unsubscribe_links",
        "indexes": [
            {"fields": ["token_hash"], "unique": True},
            # Erasure removes a person's links.
            ["organization_id", "participant_id"],
        ],
    }


# --- chat channels (Slack, Teams) ---------------------------------------------------------
# No personal data: posts carry an announcement's text or a digest's counts; ticks and
# proposals only ids.

CHAT_POST_STATUSES = ("pending", "delivered", "dead_lettered", "cancelled")


class ChatChannel(Document):
    """A Slack or Teams incoming webhook of an organisation (program_id empty) or a program."""

    organization_id = StringField(required=True)
    # From the organisation, program and kind (chat_domain.channel_id).
    channel_id = StringField(required=True)
    program_id = StringField(default="")
    kind = StringField(required=True, choices=("slack", "teams"))
    # A secret (Slack's holds a token): never returned whole (chat_domain.mask).
    webhook_url = StringField(required=True)
    announcements = BooleanField(default=False)
    daily_digest = BooleanField(default=False)
    created_at = DateTimeField(required=True)
    updated_at = DateTimeField(required=True)
    deleted_at = DateTimeField()
    meta = {
        "collection": "chat_channels",
        "indexes": [
            {"fields": ["organization_id", "channel_id"], "unique": True},
            # The sender's look-up of where its claimed posts go.
            "channel_id",
        ],
    }


class ChatPost(DeliveryRow):
    """One announcement or digest for one channel: its delivery log row. Its event, for its
    dead letter: the announcement's event as consumed (the first recipient's), or for a digest
    its body under the DIGEST_TOPIC name (event_type)."""

    organization_id = StringField(required=True)
    program_id = StringField(default="")
    channel_id = StringField(required=True)
    kind = StringField(required=True)
    # chat_domain.announcement_post_id or digest_post_id: an announcement's every recipient
    # event, or a digest made again, finds it and adds nothing.
    post_id = StringField(required=True)
    # "announcement" or "digest".
    purpose = StringField(required=True)
    status = StringField(required=True, choices=CHAT_POST_STATUSES)
    # The JSON posted (chat.ChatMessage.body), as text: a Teams card's "$schema" key is not a
    # field name MongoDB stores. Removed once it is delivered or its dead letter sent.
    body = StringField(default="")
    event_type = StringField(default="")
    meta = {
        "collection": "chat_posts",
        "indexes": [
            {"fields": ["post_id"], "unique": True},
            ["status", "next_attempt_at"],
            ["organization_id", "channel_id", "order_key"],
        ],
    }


class ChatTick(Document):
    """One consumed event that counts in its program's digest (chat_domain.tick), kept for the
    organisations that have a digest channel. Keyed by the event: a redelivered event counts
    once. Old ones are removed (chat_store.forget_old)."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    event_id = StringField(required=True)
    tick = StringField(required=True)
    occurred_at = DateTimeField(required=True)
    meta = {
        "collection": "chat_ticks",
        "indexes": [
            {"fields": ["event_id"], "unique": True},
            ["organization_id", "program_id", "occurred_at"],
            "occurred_at",
        ],
    }


class ChatProposal(Document):
    """A proposal and whether it still waits for an answer. Closed ones stay a while: its
    answer may be consumed before the proposal itself (other topics), and must win."""

    organization_id = StringField(required=True)
    program_id = StringField(default="")
    match_id = StringField(required=True)
    open = BooleanField(default=True)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "chat_proposals",
        "indexes": [
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "program_id", "open"],
            "updated_at",
        ],
    }


class ChatProgram(Document):
    """A program's name, from program-changed, for the posts' headings."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    name = StringField(default="")
    meta = {
        "collection": "chat_programs",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class OrganizationBranding(Document):
    """The name, colour and portal an organisation's mails show (SetOrganizationBranding);
    none stored: its id, the default colour, the deployment's portal."""

    organization_id = StringField(required=True)
    display_name = StringField(required=True)
    # Lower-case #rrggbb.
    brand_colour = StringField(required=True)
    # Empty: the deployment's portal.
    portal_url = StringField(default="")
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "organization_branding",
        "indexes": [{"fields": ["organization_id"], "unique": True}],
    }
