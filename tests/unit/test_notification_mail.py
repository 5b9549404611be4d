"""E-mail rendering: both parts from the templates, language fallback, the headers a mailbox
and a retry rely on, escaping of people's names, and the invitation attached."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from icalendar import Calendar

from services.notifications import invitations, mail

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SENDER = "Mentoring <no-reply@acme.example>"
BRAND = mail.Brand("Acme & Co", "#ffcc00", "https://portal.acme.example")
UNSUBSCRIBE = "https://portal.acme.example/unsubscribe?token=t0k3n"
RENDERER = mail.Renderer()


def notification(
    template: str = "no-session",
    language: str = "en",
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> mail.Notification:
    fields: dict[str, Any] = {
        "key": "notif-1",
        "template": template,
        "recipient": mail.Recipient("Ana", "ana@example.org", language, "Europe/Paris"),
        "brand": BRAND,
        "data": {"other_name": "Ben", "days": "21"} if data is None else data,
        "unsubscribe_url": UNSUBSCRIBE,
    }
    fields.update(changes)
    return mail.Notification(**fields)


def render(n: mail.Notification) -> EmailMessage:
    message = RENDERER.render(n, sender=SENDER, now=NOW)
    # As a receiver gets it: serialised and parsed back.
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_a_nudge_has_a_text_and_an_html_part_in_the_organisations_name_and_colour() -> None:
    message = render(notification())
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Ben and you: time for your next mentoring session"
    assert message["From"].addresses[0].display_name == "Acme & Co"
    assert message["From"].addresses[0].addr_spec == "no-reply@acme.example"
    assert message["To"].addresses[0].addr_spec == "ana@example.org"
    assert "Hello Ana," in text(message)
    assert "not had a mentoring session for 21 days" in text(message)
    assert "<" not in text(message).replace(f"<{UNSUBSCRIBE}>", "")
    body = html(message)
    assert "background:#ffcc00" in body
    # Dark text on a light brand colour.
    assert "color:#000000" in body
    assert "Acme &amp; Co" in body


def test_one_click_unsubscribe_headers_follow_rfc_8058() -> None:
    message = render(notification())
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert UNSUBSCRIBE in text(message)
    assert 'href="https://portal.acme.example/unsubscribe?token=t0k3n"' in html(message)


def test_without_an_unsubscribe_url_there_are_no_unsubscribe_headers() -> None:
    message = render(notification(unsubscribe_url=""))
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


def test_an_unsubscribe_url_cannot_inject_into_the_header() -> None:
    with pytest.raises(ValueError, match="unsubscribe_url"):
        RENDERER.render(
            notification(unsubscribe_url="https://x.example/u> , <mailto:evil@x.example"),
            sender=SENDER,
            now=NOW,
        )


def test_the_message_id_is_stable_per_key_so_a_retry_is_recognisable() -> None:
    first = render(notification())["Message-ID"]
    again = render(notification())["Message-ID"]
    other = render(notification(key="notif-2"))["Message-ID"]
    assert first == again != other
    assert first.startswith("<") and first.endswith("@acme.example>")


def test_headers_mark_the_mail_automatic() -> None:
    message = render(notification())
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == NOW


def test_french_is_used_when_asked_for_and_its_region_falls_back_to_it() -> None:
    message = render(notification(language="fr-CA"))
    assert message["Content-Language"] == "fr"
    assert message["Subject"] == "Ben et vous : place à votre prochaine séance de mentorat"
    assert "Bonjour Ana," in text(message)
    assert 'lang="fr"' in html(message)


def test_a_language_without_templates_falls_back_to_english() -> None:
    message = render(notification(language="de"))
    assert message["Content-Language"] == "en"
    assert "Hello Ana," in text(message)


def test_a_malformed_language_tag_falls_back_to_english_without_touching_the_file_system() -> None:
    assert mail.languages("../../etc") == ["en"]
    assert mail.languages("pt_BR") == ["pt-br", "pt", "en"]


def test_names_and_messages_are_escaped_in_html_and_kept_in_text() -> None:
    hostile = '<script>alert("x")</script>'
    n = notification(
        "announcement",
        data={"message": f"Hi {hostile}\nsecond line"},
        recipient=mail.Recipient(f"Eve {hostile}", "eve@example.org"),
    )
    message = render(n)
    body = html(message)
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert f"Hello Eve {hostile}," in text(message)
    assert f"Hi {hostile}\nsecond line" in text(message)


def test_a_brand_colour_that_is_not_a_colour_is_replaced() -> None:
    brand = mail.Brand("Acme", 'red;" onmouseover="alert(1)')
    body = html(render(notification(brand=brand)))
    assert "onmouseover" not in body
    assert f"background:{mail.DEFAULT_COLOUR}" in body


def test_a_header_never_gets_a_line_break_from_the_data() -> None:
    message = render(notification(data={"other_name": "Ben\r\nBcc: evil@example.org", "days": "3"}))
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"])


def test_missing_data_and_unknown_templates_are_refused_by_name() -> None:
    with pytest.raises(mail.MissingData, match="days"):
        RENDERER.render(notification(data={"other_name": "Ben"}), sender=SENDER, now=NOW)
    with pytest.raises(mail.UnknownTemplate, match="no-such"):
        RENDERER.render(notification("no-such"), sender=SENDER, now=NOW)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("template", list(mail.TEMPLATES))
def test_every_template_renders_in_every_language(template: str, language: str) -> None:
    data: dict[str, Any] = {
        key: "2026-12-10T13:00:00+00:00" if key.endswith("_at") else f"<{key}>"
        for key in mail.TEMPLATES[template]
    }
    if template == "daily-digest":
        data["items"] = [mail.DigestItem("<first>", "detail", "https://portal.example/x")]
    message = render(notification(template, language, data))
    assert message["Subject"]
    assert "&lt;" in html(message)
    assert "Hello" in text(message) or "Bonjour" in text(message)


def test_times_are_shown_in_the_recipients_time_zone() -> None:
    data = {"other_name": "Ben", "starts_at": "2026-12-10T13:00:00+00:00", "minutes": "45"}
    message = render(notification("session-scheduled", data=data))
    assert "2026-12-10 14:00 (Europe/Paris)" in message["Subject"]
    assert "2026-12-10 14:00 (Europe/Paris), 45 minutes" in text(message)


def test_the_digest_lists_its_items() -> None:
    items = [mail.DigestItem("Session with Ben moved"), mail.DigestItem("A <new> match", "Cy")]
    message = render(notification("daily-digest", data={"items": items}))
    assert message["Subject"] == "Your mentoring digest: 2 updates"
    assert "* Session with Ben moved" in text(message)
    assert "A &lt;new&gt; match" in html(message)


def test_a_session_invitation_travels_as_text_calendar_with_its_method() -> None:
    session = invitations.SessionDetails(
        "org", "s-1", datetime(2026, 12, 10, 13, tzinfo=UTC), 45, "Mentoring: Ana and Ben"
    )
    people = [invitations.Person("Ana", "ana@example.org"), invitations.Person("Ben", "b@x.org")]
    invitation = invitations.cancel(
        session,
        organizer=invitations.Person("Acme", "no-reply@acme.example"),
        attendees=people,
        time_zone="Europe/Paris",
        sequence=1,
        stamp=NOW,
    )
    data = {"other_name": "Ben", "starts_at": "2026-12-10T13:00:00+00:00"}
    message = render(notification("session-cancelled", data=data, invitation=invitation))
    assert message.get_content_type() == "multipart/mixed"
    calendars = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendars) == 1
    assert calendars[0].get_param("method") == "CANCEL"
    parsed = Calendar.from_ical(calendars[0].get_content())  # type: ignore[attr-defined]
    assert str(parsed["METHOD"]) == "CANCEL"
    attached = [p for p in message.iter_attachments() if p.get_filename() == "invite.ics"]
    assert len(attached) == 1
    assert attached[0].get_content() == invitation.ics  # type: ignore[attr-defined]
    # The text and HTML are still what a reader without a calendar sees.
    assert "is cancelled" in text(message)
