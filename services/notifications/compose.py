"""A queued message as the e-mail it becomes (mail.Notification): its recipient and the names
it mentions from the contacts, and for a session its calendar invitation in the recipient's
time zone. Pure: the caller loads the contacts and gives the clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from services.notifications import invitations, notices
from services.notifications.documents import Contact, Message, OrganizationBranding
from services.notifications.mail import Brand, DigestItem, Notification, Recipient, Renderer

# Shown in place of someone erased or not (yet) known.
SOMEONE = "your mentoring partner"


class Undeliverable(ValueError):
    """The message cannot be made for this recipient (no address); retrying may help, since
    their contact may still arrive."""


def brand_of(
    organization_id: str, portal_url: str, branding: OrganizationBranding | None = None
) -> Brand:
    """The organisation as it set its branding (`portal_url`, the deployment's portal, where it
    gave none); until it does, its id and the default colour."""
    if branding is None:
        return Brand(name=organization_id, portal_url=portal_url)
    return Brand(
        name=branding.display_name,
        colour=branding.brand_colour,
        portal_url=branding.portal_url or portal_url,
    )


def recipient_of(contact: Contact | None) -> Recipient:
    if contact is None or contact.erased or not contact.email:
        raise Undeliverable("no e-mail address known for the participant")
    return Recipient(
        name=contact.name or contact.email,
        email=contact.email,
        language=contact.language or "en",
        time_zone=contact.time_zone or "UTC",
    )


def _name(contacts: Mapping[str, Contact], participant_id: str) -> str:
    contact = contacts.get(participant_id)
    if contact is None or contact.erased or not contact.name:
        return SOMEONE
    return str(contact.name)


def people(message: Message) -> list[str]:
    """The participants whose contacts the message needs."""
    data = dict(message.data or {})
    ids = [message.participant_id]
    ids += [data[k] for k in ("other_participant_id", "mentor_id", "mentee_id") if data.get(k)]
    return ids


def _person(contact: Contact | None) -> invitations.Person | None:
    if contact is None or contact.erased or not contact.email:
        return None
    return invitations.Person(contact.name or contact.email, contact.email)


def session_details(
    organization_id: str, data: Mapping[str, Any], contacts: Mapping[str, Contact], brand: Brand
) -> invitations.SessionDetails:
    """A session as invitations and feeds show it, from a session message's values (ids,
    starts_at, minutes, mode, topics)."""
    names = [_name(contacts, data.get("mentor_id", "")), _name(contacts, data.get("mentee_id", ""))]
    return invitations.SessionDetails(
        organization_id=organization_id,
        session_id=data["session_id"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        minutes=int(data["minutes"]),
        summary=f"Mentoring session: {names[0]} and {names[1]}",
        description=(f"Topics: {data['topics']}" if data.get("topics") else ""),
        location=data.get("mode", ""),
        url=brand.portal_url,
    )


def organizer(brand: Brand, sender: str) -> invitations.Person:
    return invitations.Person(brand.name, parseaddr(sender)[1])


def invitation(
    message: Message,
    contacts: Mapping[str, Contact],
    recipient: Recipient,
    sender: str,
    brand: Brand,
    now: datetime,
) -> invitations.Invitation | None:
    data = dict(message.data or {})
    if message.template not in notices.SESSION_TEMPLATES.values():
        return None
    session = session_details(message.organization_id, data, contacts, brand)
    attendees = [
        p
        for p in (_person(contacts.get(data.get(k, ""))) for k in ("mentor_id", "mentee_id"))
        if p is not None
    ]
    build = invitations.cancel if message.template == "session-cancelled" else invitations.request
    return build(
        session,
        organizer=organizer(brand, sender),
        attendees=attendees,
        time_zone=recipient.time_zone,
        sequence=int(data.get("sequence") or 0),
        stamp=now,
    )


def notification(
    message: Message,
    contacts: Mapping[str, Contact],
    brand: Brand,
    sender: str,
    now: datetime,
    digest: Sequence[DigestItem] = (),
) -> Notification:
    recipient = recipient_of(contacts.get(message.participant_id))
    data: dict[str, Any] = dict(message.data or {})
    if other := data.get("other_participant_id"):
        data["other_name"] = _name(contacts, other)
    if message.template == notices.DIGEST:
        data["items"] = list(digest)
    return Notification(
        key=message.message_id,
        template=message.template,
        recipient=recipient,
        brand=brand,
        data=data,
        invitation=invitation(message, contacts, recipient, sender, brand, now),
    )


def digest_item(
    renderer: Renderer, item: Message, contacts: Mapping[str, Contact], brand: Brand
) -> DigestItem:
    """One line of a digest: the message's own subject, and an announcement's text."""
    single = Notification(
        key=item.message_id,
        template=item.template,
        recipient=recipient_of(contacts.get(item.participant_id)),
        brand=brand,
        data={
            **dict(item.data or {}),
            "other_name": _name(contacts, (item.data or {}).get("other_participant_id", "")),
        },
    )
    text = str((item.data or {}).get("message", ""))
    return DigestItem(subject=renderer.subject(single), text=text)
