"""Organisations' branding in the notifications database. Blocking: call through
storage.run_sync."""

from __future__ import annotations

from datetime import datetime

from services.notifications.branding import Branding
from services.notifications.documents import OrganizationBranding


def get(organization_id: str) -> OrganizationBranding | None:
    """None until the organisation sets its branding."""
    found: OrganizationBranding | None = OrganizationBranding.objects(
        organization_id=organization_id
    ).first()
    return found


def put(organization_id: str, branding: Branding, now: datetime) -> OrganizationBranding:
    """Replaces it whole (one document per organisation: an upsert, so two setters race to
    the last write, never to two documents)."""
    OrganizationBranding.objects(organization_id=organization_id).update_one(
        upsert=True,
        set__display_name=branding.display_name,
        set__brand_colour=branding.brand_colour,
        set__portal_url=branding.portal_url,
        set__updated_at=now,
    )
    stored = get(organization_id)
    assert stored is not None, "an upsert leaves the document"
    return stored
