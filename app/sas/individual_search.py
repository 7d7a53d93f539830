"""The SAS slot search of the individual offer (INT_R01), as a registered search variant.

`GET Slot?_include=Slot:schedule&_include:iterate=Schedule:actor&start=ge…&start=le…
&schedule.actor:Practitioner.identifier=…&status=free`, answered from the SAS projections
in the SAS aggregator profiles (app/sas/aggregator.py); its rules in app/sas/request.py.
"""

from __future__ import annotations

from app.auth import access
from app.auth.context import current_principal
from app.sas.aggregator import SasAggregator
from app.sas.request import is_sas_search, parse_sas_search
from app.storage.repository import Repository


class SasIndividualSearch:
    name = "sas-individual"
    single_statement = True

    def recognises(self, resource_type: str, params: list[tuple[str, str]]) -> bool:
        principal = current_principal.get()
        return is_sas_search(resource_type, params, principal is not None and principal.is_sas)

    def answer(self, repo: Repository, resource_type: str, params: list[tuple[str, str]], *,
               strict: bool, self_url: str) -> bytes:
        access.sas_search()
        search = parse_sas_search(params, repo.settings, strict)
        return SasAggregator(repo).bundle(search, self_url, repo.settings.public_web_url)
