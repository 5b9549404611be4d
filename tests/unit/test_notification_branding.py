"""An organisation's branding: checking what SetOrganizationBranding is given, the fallback
until it is set, storing it (mongomock), and the mail that shows it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.notifications import branding, branding_store, compose, convert
from services.notifications.chat_servicer import ChatServicer
from services.notifications.documents import OrganizationBranding
from services.notifications.mail import DEFAULT_COLOUR, Notification, Recipient, Renderer
from tests.unit import memory_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = "acme"
PORTAL = "https://mentoring.example"


@pytest.fixture
def db() -> Iterator[None]:
    memory_db.connect_fresh("notifications", "branding")
    yield


# --- checks ---------------------------------------------------------------------------------


def test_a_good_branding_is_trimmed_and_its_colour_lower_cased() -> None:
    given = branding.checked("  Acme Mentoring  ", "#0B6E4F", "https://portal.acme.example/m")
    assert given == branding.Branding("Acme Mentoring", "#0b6e4f", "https://portal.acme.example/m")
    assert branding.checked("A", "#000000", "").portal_url == ""


@pytest.mark.parametrize(
    ("name", "colour", "url", "field"),
    [
        ("", "#0b6e4f", "", "display_name"),
        ("   ", "#0b6e4f", "", "display_name"),
        ("x" * 101, "#0b6e4f", "", "display_name"),
        ("Acme\r\nBcc: x@evil.example", "#0b6e4f", "", "display_name"),
        ("Acme", "", "", "brand_colour"),
        ("Acme", "red", "", "brand_colour"),
        ("Acme", "#0b6e4", "", "brand_colour"),
        ("Acme", '#0b6e4f;" onmouseover="x', "", "brand_colour"),
        ("Acme", "#0b6e4f", "http://portal.acme.example", "portal_url"),
        ("Acme", "#0b6e4f", "javascript:alert(1)", "portal_url"),
        ("Acme", "#0b6e4f", "https://", "portal_url"),
        ("Acme", "#0b6e4f", "https://me:pw@portal.acme.example", "portal_url"),
        ("Acme", "#0b6e4f", 'https://portal.acme.example/"><b>', "portal_url"),
        ("Acme", "#0b6e4f", "https://portal.acme.example:x/", "portal_url"),
        ("Acme", "#0b6e4f", "https://a.example/" + "x" * 2000, "portal_url"),
    ],
)
def test_a_bad_field_is_named(name: str, colour: str, url: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        branding.checked(name, colour, url)
    assert refused.value.field == field


def test_a_name_of_exactly_100_characters_is_kept() -> None:
    assert branding.display_name("é" * 100) == "é" * 100


# --- fallback -------------------------------------------------------------------------------


def test_without_branding_mails_show_the_id_the_default_colour_and_the_deployments_portal() -> None:
    brand = compose.brand_of(ORG, PORTAL)
    assert (brand.name, brand.colour, brand.portal_url) == (ORG, DEFAULT_COLOUR, PORTAL)


def test_a_set_branding_replaces_the_fallback_and_its_portal_the_deployments() -> None:
    doc = OrganizationBranding(
        organization_id=ORG, display_name="Acme", brand_colour="#0b6e4f", updated_at=NOW
    )
    brand = compose.brand_of(ORG, PORTAL, doc)
    assert (brand.name, brand.colour, brand.portal_url) == ("Acme", "#0b6e4f", PORTAL)
    doc.portal_url = "https://portal.acme.example"
    assert compose.brand_of(ORG, PORTAL, doc).portal_url == "https://portal.acme.example"


# --- store ----------------------------------------------------------------------------------


def test_branding_is_stored_per_organisation_and_replaced_whole(db: None) -> None:
    assert branding_store.get(ORG) is None
    first = branding.Branding("Acme", "#0b6e4f", "https://portal.acme.example")
    stored = branding_store.put(ORG, first, NOW)
    assert (stored.display_name, stored.brand_colour, stored.portal_url) == (
        "Acme",
        "#0b6e4f",
        "https://portal.acme.example",
    )
    branding_store.put(ORG, branding.Branding("Acme Corp", "#ffcc00"), NOW + timedelta(hours=1))
    again = branding_store.get(ORG)
    assert again is not None
    assert (again.display_name, again.brand_colour, again.portal_url) == (
        "Acme Corp",
        "#ffcc00",
        "",
    )
    assert convert.stamp(again.updated_at) == convert.stamp(NOW + timedelta(hours=1))
    assert OrganizationBranding.objects(organization_id=ORG).count() == 1
    assert branding_store.get("globex") is None


def test_a_mail_shows_the_stored_name_and_colour(db: None) -> None:
    branding_store.put(ORG, branding.Branding("Acme Mentoring", "#0b6e4f"), NOW)
    brand = compose.brand_of(ORG, PORTAL, branding_store.get(ORG))
    notification = Notification(
        key="m-1",
        template="announcement",
        recipient=Recipient("Ana", "ana@acme.example"),
        brand=brand,
        data={"message": "Welcome"},
    )
    email = Renderer().render(notification, sender="no-reply@acme.example", now=NOW)
    html = email.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "Acme Mentoring" in content and "background:#0b6e4f" in content
    assert str(email["From"]) == "Acme Mentoring <no-reply@acme.example>"


# --- RPCs -----------------------------------------------------------------------------------


class Context:
    """Nothing the branding RPCs read."""


def servicer() -> ChatServicer:
    return ChatServicer(WebhookSettings(), wake=lambda: None)


async def test_get_before_set_shows_the_fallback_and_after_it_what_was_set(db: None) -> None:
    get = pb.GetOrganizationBrandingRequest(organization_id=ORG)
    before = await servicer().GetOrganizationBranding(get, Context())
    assert (before.display_name, before.brand_colour, before.portal_url) == (
        ORG,
        DEFAULT_COLOUR,
        "",
    )
    assert not before.HasField("updated_at")
    request = pb.SetOrganizationBrandingRequest(
        organization_id=ORG, display_name=" Acme ", brand_colour="#FFCC00"
    )
    set_ = await servicer().SetOrganizationBranding(request, Context())
    after = await servicer().GetOrganizationBranding(get, Context())
    assert set_ == after
    assert (after.organization_id, after.display_name, after.brand_colour) == (
        ORG,
        "Acme",
        "#ffcc00",
    )
    assert after.HasField("updated_at")


async def test_set_refuses_a_bad_colour_naming_it_and_stores_nothing(db: None) -> None:
    request = pb.SetOrganizationBrandingRequest(
        organization_id=ORG, display_name="Acme", brand_colour="blue"
    )
    with pytest.raises(InvalidArgument) as refused:
        await servicer().SetOrganizationBranding(request, Context())
    assert refused.value.field == "brand_colour"
    assert branding_store.get(ORG) is None
