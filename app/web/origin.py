"""The `origin` parameter SAS appends to our booking link (`&origin=sas`): the only thing
that opens regulator rights in a session (SAS interfacing rules). Its allowed values are
configuration (SAS_ORIGINS: `sas`, `sas-preprod`…)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app.state import current_state

PARAMETER = "origin"


def allowed(value: str | None) -> str | None:
    """The origin if it is one SAS sends, else None (unknown values open nothing)."""
    return value if value and value in current_state().settings.sas_origins else None


def origin_of(url: str | None) -> str | None:
    """The allowed origin carried by a same-site URL (a `next` page), if any."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get(PARAMETER) or []
    return allowed(values[-1]) if values else None
