"""What a regulator account takes from its FrPractitionerRegul resource."""

from __future__ import annotations

from typing import Any

from app.accounts.models import normalise_email


def _name(practitioner: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in practitioner.get("name") or [] if isinstance(n, dict)]
    official = [n for n in names if n.get("use") == "official"]
    return (official or names or [{}])[0]


def email_of(practitioner: dict[str, Any]) -> str | None:
    """The first telecom whose system is email, lower-cased."""
    for telecom in practitioner.get("telecom") or []:
        if isinstance(telecom, dict) and telecom.get("system") == "email":
            return normalise_email(telecom.get("value"))
    return None


def account_fields(practitioner: dict[str, Any]) -> dict[str, Any]:
    name = _name(practitioner)
    given = " ".join(g for g in name.get("given") or [] if isinstance(g, str)).strip()
    return {
        "email": email_of(practitioner),
        "family": (name.get("family") or "").strip() or None,
        "given": given or None,
        # `active` is mandatory in FrPractitionerRegul; absent means nothing was withdrawn.
        "active": practitioner.get("active") is not False,
    }
