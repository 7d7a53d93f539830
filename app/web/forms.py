"""The booking form (the patient's minimal data), checked with marshmallow; every message
in French, shown next to its field."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from app.identifiers import phone

NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '’\-]+[^\W\d_]+)*\.?$")
PHONE_RE = re.compile(r"^\+\d{9,14}$")
OLDEST_YEARS = 130


def _name(what: str) -> fields.String:
    return fields.String(required=True, validate=[
        validate.Length(max=100, error=f"{what} est limité à 100 caractères."),
        validate.Regexp(NAME_RE, error=f"{what} ne peut contenir que des lettres, espaces, "
                                       "tirets et apostrophes.")],
        error_messages={"required": f"{what} est obligatoire."})


class FrenchDate(fields.Date):
    """A date typed as JJ/MM/AAAA, or as the date picker sends it (AAAA-MM-JJ)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        text = str(value).strip()
        for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        raise self.make_error("invalid")


def _plausible_birth(value: date) -> None:
    today = date.today()
    if value > today:
        raise ValidationError("La date de naissance ne peut pas être dans le futur.")
    if today.year - value.year > OLDEST_YEARS:
        raise ValidationError("La date de naissance n'est pas plausible.")


def _phone(value: str) -> None:
    if not PHONE_RE.match(phone(value)):
        raise ValidationError("Numéro de téléphone invalide (par exemple 06 12 34 56 78).")


class BookingForm(Schema):
    class Meta:
        unknown = EXCLUDE  # the CSRF token and the button travel with the form

    creneau = fields.String(required=True,
                            error_messages={"required": "Choisissez un créneau."})
    nom = _name("Le nom")
    prenom = _name("Le prénom")
    naissance = FrenchDate(required=True, validate=_plausible_birth, error_messages={
        "required": "La date de naissance est obligatoire.",
        "invalid": "Date de naissance invalide (format attendu : JJ/MM/AAAA)."})
    telephone = fields.String(required=True, validate=_phone, error_messages={
        "required": "Le numéro de téléphone est obligatoire."})
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254),
                         error_messages={"invalid": "Adresse électronique invalide."})

    @pre_load
    def _blank_is_missing(self, data: Any, **_: Any) -> dict[str, Any]:
        # An empty field is a missing one: "required" for the mandatory ones, None for email.
        return {k: v.strip() for k, v in dict(data).items()
                if isinstance(v, str) and v.strip()}

    @post_load
    def _normalised(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["telephone"] = phone(data["telephone"])
        if data.get("email"):
            data["email"] = data["email"].lower()
        return data


def read_booking(form: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(the patient's data, {}) or (None, {field: the first French message})."""
    try:
        return BookingForm().load(form), {}
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        return None, {field: (found[0] if isinstance(found, list) else str(found))
                      for field, found in messages.items()}
