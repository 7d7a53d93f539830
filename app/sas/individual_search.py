"""The SAS slot search of the individual offer (INT_R01), as a registered search variant.

`GET Slot?_include=Slot:schedule&_include:iterate=Schedule:actor&start=ge…&start=le…
&schedule.actor:Practitioner.identifier=…&status=free`, answered from the SAS projections
in the SAS aggregator profiles (app/sas/aggregator.py); its rules in app/sas/request.py.
"""

from __future__ import annotations

from app.sas.aggregator import SasAggregator
from app.sas.offer_search import SasOfferSearch
from app.sas.request import is_sas_search, parse_sas_search
from app.storage.repository import Repository


class SasIndividualSearch(SasOfferSearch):
    name = "sas-individual"

    def asks(self, resource_type: str, params: list[tuple[str, str]], from_sas: bool) -> bool:
        return is_sas_search(resource_type, params, from_sas)

    def respond(self, repo: Repository, params: list[tuple[str, str]], strict: bool,
                self_url: str) -> bytes:
        search = parse_sas_search(params, repo.settings, strict)
        return SasAggregator(repo).bundle(search, self_url, repo.settings.public_web_url)
