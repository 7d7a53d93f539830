"""The SAS search of the SOS Médecins offer, as a registered search variant.

A Schedule search with reverse chaining (`_has:Slot:schedule:…`), `_revinclude` of the
Slots and the associations' SIRETs through `actor:Location.organization.identifier`; the
same question as an ordinary FHIR search means the same (app/search), but SAS gets it in
the sas-sos-* profiles from the projections (app/sas/sos_answer.py).
"""

from __future__ import annotations

from app.sas.offer_search import SasOfferSearch
from app.sas.sos_answer import SosAnswer
from app.sas.sos_request import is_sos_search, parse_sos_search
from app.storage.repository import Repository


class SasSosSearch(SasOfferSearch):
    name = "sas-sos"

    def asks(self, resource_type: str, params: list[tuple[str, str]], from_sas: bool) -> bool:
        return is_sos_search(resource_type, params, from_sas)

    def respond(self, repo: Repository, params: list[tuple[str, str]], strict: bool,
                self_url: str) -> bytes:
        search = parse_sos_search(params, repo.settings, strict)
        return SosAnswer(repo).bundle(search, self_url, repo.settings.public_web_url)
